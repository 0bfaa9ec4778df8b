import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpaHttpClient, OpaHttpEvaluator } from '../../apps/authz/src/infra/opa-http-evaluator.js';
import { OpaWasmEvaluator } from '../../apps/authz/src/infra/opa-wasm-evaluator.js';
import { toolInputJson } from '../../apps/authz/src/domain/policy-input.js';
import type { PolicyOutcome } from '../../apps/authz/src/domain/ports.js';
import { OPA_URL, REPO_ROOT } from '../support/infra.js';
import { startAuthz, type RunningAuthz } from './helpers.js';

const run = promisify(execFile);
const WASM = join(REPO_ROOT, '.local/policy/policy.wasm');
const CORPUS = 12_000;

/** Tools and tenants near the policy's edges (exact names, case and whitespace variants) plus arbitrary strings. */
const tool = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('web_search', 'code_execution') },
  { weight: 2, arbitrary: fc.constantFrom('WEB_SEARCH', 'code_execution ', 'web-search', 'file_delete', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const tenant = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('trusted', 'acme') },
  { weight: 2, arbitrary: fc.constantFrom('Trusted', 'trusted ', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
);
const principal = fc.record({ sub: fc.string({ maxLength: 12 }), tenant, persona_id: fc.oneof(fc.constant(''), fc.uuid()) });
/** CheckTool inputs, and free-form inputs with odd shapes (missing fields, wrong types, nesting). */
const input = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(tool, principal).map(([t, p]) => toolInputJson(t, p)) },
  {
    weight: 1,
    arbitrary: fc
      .record(
        {
          tool: fc.oneof(tool, fc.integer(), fc.boolean(), fc.constant(null), fc.array(tool, { maxLength: 2 })),
          tenant: fc.oneof(tenant, fc.integer(), fc.constant(null), fc.dictionary(fc.string({ maxLength: 4 }), tenant, { maxKeys: 2 })),
          extra: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  },
);

function same(o: PolicyOutcome): string {
  return o.kind === 'result' ? `result:${JSON.stringify(o.value)}` : o.kind;
}

describe('WASM policy gives the same decisions as the OPA server', () => {
  let server: OpaHttpEvaluator;
  let client: OpaHttpClient;
  const wasm = new OpaWasmEvaluator(WASM);
  let wasmService: RunningAuthz | undefined;

  beforeAll(async () => {
    await run(join(REPO_ROOT, 'infra/policy/build-wasm.sh'), [], { cwd: REPO_ROOT, timeout: 120_000 });
    await wasm.load();
    client = new OpaHttpClient(OPA_URL, 5000);
    server = new OpaHttpEvaluator(client);
  });

  afterAll(async () => {
    client?.close();
    await wasmService?.stop();
  });

  it(`on a generated corpus of ${CORPUS} inputs`, async () => {
    const corpus = fc.sample(input, { numRuns: CORPUS, seed: 20261204 });
    expect(corpus.length).toBe(CORPUS);
    const mismatches: string[] = [];
    let allowed = 0;
    // Bounded concurrency on the keep-alive agent keeps the shared OPA server comfortable.
    for (let i = 0; i < corpus.length; i += 64) {
      const chunk = corpus.slice(i, i + 64);
      const results = await Promise.all(chunk.map(async (json) => [json, await server.evaluate('tool_policy/allow', json), await wasm.evaluate('tool_policy/allow', json)] as const));
      for (const [json, s, w] of results) {
        if (s.kind === 'unavailable') throw new Error(`OPA server unavailable during the comparison: ${s.detail}`);
        if (same(s) !== same(w)) mismatches.push(`${json}: server ${same(s)} wasm ${same(w)}`);
        if (s.kind === 'result' && s.value === true) allowed++;
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // The corpus exercises both outcomes, not only the default deny.
    expect(allowed).toBeGreaterThan(CORPUS / 10);
    expect(allowed).toBeLessThan(CORPUS - CORPUS / 10);
  });

  it('serves CheckTool in wasm mode with the seed decisions', async () => {
    wasmService = await startAuthz({ AUTHZ_POLICY_MODE: 'wasm', OPA_WASM_PATH: WASM, OPA_URL: 'http://127.0.0.1:9' });
    const c = wasmService.client;
    expect(await c.checkTool('code_execution', { sub: 'u', tenant: 'acme' })).toMatchObject({ allowed: false, reason: 'policy_violation' });
    expect(await c.checkTool('code_execution', { sub: 'u', tenant: 'trusted' })).toMatchObject({ allowed: true });
    expect(await c.checkTool('web_search', { sub: 'u', tenant: 'acme' })).toMatchObject({ allowed: true });
    // A path not compiled into the wasm fails closed.
    expect((await c.evaluate('secrets_policy/allow', {})).decision).toMatchObject({ allowed: false, reason: 'policy_unavailable' });
    const view = (await (await fetch(`${wasmService.httpUrl}/v1/policies`)).json()) as { mode: string; revision: string };
    expect(view.mode).toBe('wasm');
    expect(view.revision).toMatch(/^[0-9a-f]{16}$/);
  });
});
