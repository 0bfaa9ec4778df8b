// Kubernetes OpenAPI (swagger 2.0, api/openapi-spec/swagger.json of the k8s.io/kubernetes Go module at the
// pinned version) -> one standalone, strict JSON schema per kind, named as kubeconform looks them up
// ({kind}-{group}-{version}.json, {kind}-{version}.json for the core group). Same rules as kubeconform's
// openapi2jsonschema: $refs inlined, additionalProperties=false on every object with properties (strict: a
// misspelt field fails), int-or-string as string|integer, Quantity as string|number, null allowed as the API
// server allows it, apiVersion/kind pinned to the kind's own values.
// Usage: node test/deploy/k8s-schemas.mjs <swagger.json> <out-dir>
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [swaggerPath, outDir] = process.argv.slice(2);
if (!swaggerPath || !outDir) {
  process.stderr.write('usage: k8s-schemas.mjs <swagger.json> <out-dir>\n');
  process.exit(64);
}
const definitions = JSON.parse(readFileSync(swaggerPath, 'utf8')).definitions;
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';

function nullable(schema) {
  if (typeof schema.type === 'string') return { ...schema, type: [schema.type, 'null'] };
  return schema;
}

/** Inline every $ref; a recursive reference (only CRD's JSONSchemaProps) becomes an open schema. */
function convert(node, seen) {
  if (Array.isArray(node)) return node.map((n) => convert(n, seen));
  if (node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    const name = node.$ref.replace('#/definitions/', '');
    if (name === QUANTITY) return { oneOf: [{ type: ['string', 'null'] }, { type: 'number' }] };
    if (seen.has(name)) return {};
    const target = definitions[name];
    if (!target) throw new Error(`unresolved $ref ${node.$ref}`);
    return convert(target, new Set(seen).add(name));
  }
  if (node.format === 'int-or-string') return { oneOf: [{ type: ['string', 'null'] }, { type: 'integer' }] };
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    // Descriptions and vendor extensions only weigh; formats such as int32/byte are not JSON-schema formats.
    if (key === 'description' || key === 'format' || key.startsWith('x-kubernetes-')) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v, seen)]));
    } else {
      out[key] = convert(value, seen);
    }
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return nullable(out);
}

mkdirSync(outDir, { recursive: true });
let count = 0;
for (const [name, definition] of Object.entries(definitions)) {
  for (const gvk of definition['x-kubernetes-group-version-kind'] ?? []) {
    const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
    const schema = convert(definition, new Set([name]));
    // The kind's own schema is an object, never null; apiVersion and kind are fixed.
    schema.type = 'object';
    if (schema.properties?.apiVersion) schema.properties.apiVersion = { type: 'string', enum: [apiVersion] };
    if (schema.properties?.kind) schema.properties.kind = { type: 'string', enum: [gvk.kind] };
    schema.$schema = 'http://json-schema.org/schema#';
    const suffix = gvk.group ? `-${gvk.group.split('.')[0]}-${gvk.version}` : `-${gvk.version}`;
    writeFileSync(join(outDir, `${gvk.kind}${suffix}`.toLowerCase() + '.json'), JSON.stringify(schema));
    count++;
  }
}
if (count < 100) {
  process.stderr.write(`only ${count} kinds found in ${swaggerPath}\n`);
  process.exit(1);
}
process.stdout.write(`${count}\n`);
