import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMetadataStorage } from 'class-validator';
import { secretFieldsOf } from '@soma/config';
import { AuditConfig } from '../../apps/audit/src/audit.config.js';
import { AuthConfig } from '../../apps/auth/src/auth.config.js';
import { AuthzConfig } from '../../apps/authz/src/authz.config.js';
import { RetentionConfig } from '../../apps/retention/src/retention.config.js';
import { SecretsConfig } from '../../apps/secrets/src/secrets.config.js';
import { REPO_ROOT } from '../support/infra.js';

export const SERVICES = ['auth', 'authz', 'secrets', 'audit', 'retention'] as const;
export type Service = (typeof SERVICES)[number];
export const PORTS: Record<Service, { grpc: number; http: number }> = {
  auth: { grpc: 20020, http: 20021 },
  authz: { grpc: 20030, http: 20031 },
  secrets: { grpc: 20040, http: 20041 },
  audit: { grpc: 20050, http: 20051 },
  retention: { grpc: 20060, http: 20061 },
};
/** The public entry points: reachable from outside (the frontend network, the ingress controller). */
export const PUBLIC: ReadonlySet<Service> = new Set(['auth', 'secrets']);
/** Servers that must live on the internal network only. */
export const SERVERS = ['kafka', 'postgres', 'redis', 'opa', 'openfga', 'openfga-migrate'] as const;
export const K8S_TARGETS = ['base', 'staging', 'production'] as const;

const OUT = join(REPO_ROOT, '.local/deploy');
/** The tools and schemas scripts/validate-deploy.sh installs (same pinned Kubernetes version). */
export const KUBECONFORM = join(REPO_ROOT, '.local/bin/kubeconform');
export const K8S_SCHEMA_LOCATION = `file://${join(REPO_ROOT, '.local/k8s-schemas/v1.33.0-standalone-strict')}/{{ .ResourceKind }}{{ .KindSuffix }}.json`;
/** A first render on a fresh machine installs kustomize/kubeconform and fetches the OpenAPI document. */
export const RENDER_TIMEOUT_MS = 600_000;

/**
 * Render docker-compose.yaml and the Kustomize targets (scripts/validate-deploy.sh --render-only: compose-go,
 * kustomize, kubeconform against the Kubernetes schemas). When the script itself runs the tests it has just
 * rendered them (SOMA_DEPLOY_RENDERED=1).
 */
export function renderDeployment(): void {
  if (process.env['SOMA_DEPLOY_RENDERED'] === '1' && existsSync(join(OUT, 'compose.json'))) return;
  execFileSync('bash', [join(REPO_ROOT, 'scripts/validate-deploy.sh'), '--render-only'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: RENDER_TIMEOUT_MS });
}

export interface ComposeService {
  image?: string;
  command?: string[];
  networks?: Record<string, unknown>;
  ports?: { target: number; published?: string; protocol?: string }[];
  environment?: Record<string, string | null>;
  secrets?: { source: string; target?: string }[];
  volumes?: { type: string; source?: string; target: string; read_only?: boolean }[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
  read_only?: boolean;
  user?: string;
  cap_drop?: string[];
  security_opt?: string[];
  deploy?: { resources?: { limits?: { cpus?: string | number; memory?: string | number; pids?: number } } };
}
export interface ComposeProject {
  services: Record<string, ComposeService>;
  networks: Record<string, { driver?: string; internal?: boolean }>;
  secrets: Record<string, { file?: string }>;
}

export function composeProject(): ComposeProject {
  return JSON.parse(readFileSync(join(OUT, 'compose.json'), 'utf8')) as ComposeProject;
}

// Kubernetes objects are read loosely: the schema check (kubeconform) already proved their shape.
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

export function k8sObjects(target: (typeof K8S_TARGETS)[number]): K8sObject[] {
  return JSON.parse(readFileSync(join(OUT, `k8s-${target}.json`), 'utf8')) as K8sObject[];
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in the rendering`);
  return found;
}

type ConfigClass = new () => object;
const CONFIG: Record<Service, ConfigClass> = { auth: AuthConfig, authz: AuthzConfig, secrets: SecretsConfig, audit: AuditConfig, retention: RetentionConfig };

/** The environment variables a service reads: its config properties, and X_FILE for each secret property. */
export function envNamesOf(service: Service): Set<string> {
  const cls = CONFIG[service];
  const names = new Set<string>(getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName));
  for (const key of Object.keys(new cls())) names.add(key);
  for (const key of secretFieldsOf(cls).keys()) {
    names.add(key);
    names.add(`${key}_FILE`);
  }
  return names;
}

export function secretNamesOf(service: Service): Set<string> {
  return new Set(secretFieldsOf(CONFIG[service]).keys());
}

const ADDRESS = /^(AUTH|AUTHZ|SECRETS|AUDIT|RETENTION)_GRPC_ADDRESS$/;

/**
 * Who calls whom, from the config classes: a `<SVC>_GRPC_ADDRESS` property means the service calls that sibling;
 * a secret property named `…CREDENTIAL` is the service's own credential for a sibling (an API key from auth).
 */
export function callsOf(service: Service): { callees: Service[]; credentials: string[] } {
  const names = [...envNamesOf(service)];
  const callees = names.map((n) => ADDRESS.exec(n)?.[1]?.toLowerCase()).filter((s): s is Service => (SERVICES as readonly string[]).includes(s ?? ''));
  // Only properties validated on this class or its parents: @Secret's metadata map is shared with sibling
  // classes of the same base (libs/config mutates the inherited map), so audit would "see" retention's credential.
  const declared = new Set(getMetadataStorage().getTargetValidationMetadatas(CONFIG[service], '', true, false).map((m) => m.propertyName));
  const credentials = [...secretNamesOf(service)].filter((n) => /CREDENTIAL$/.test(n) && declared.has(n));
  return { callees: [...new Set(callees)].sort(), credentials: credentials.sort() };
}

/** A variable whose value would be a credential if written literally (X or X_FILE). */
export const SECRET_LIKE = /(PASSWORD|SECRET|TOKEN|KEK|_KEY|CREDENTIALS?)(_FILE)?$/;
