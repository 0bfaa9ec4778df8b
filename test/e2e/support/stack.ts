/**
 * The whole Soma suite as separate child processes (`node dist/apps/<svc>/src/main.js`) on the real
 * infrastructure, for end-to-end, fault, hostile-input and soak tests.
 *
 *   const stack = await startStack({ name: 'journeys' });      // beforeAll (builds dist/ first if stale)
 *   stack.get('auth').grpcAddress / .httpUrl / .stdoutFile / .stderrFile
 *   const auth = stack.authClient();                          // @soma/auth-client with the stack's admin token
 *   const authz = stack.authzClient();                        // @soma/authz-client
 *   const secrets = stack.grpc('secrets');                    // promise client for any service (@soma/contracts' loader)
 *   await secrets.call('GetSecret', { name }, { bearer: token, traceparent });
 *   const auth2 = await stack.start('auth', { name: 'auth-2' }); // a second instance (same Redis prefix, same keys)
 *   await stack.kill('audit');                                // SIGKILL, waits for the exit
 *   await stack.restart('audit');                             // same ports, same env (plus overrides)
 *   await stack.waitForAuditRows({ tenant: 'acme', eventType: 'authorization_denied' }, 1);
 *   stack.capturedText();                                     // every byte every child wrote (grep for secrets)
 *   stack.secretValues();                                     // every secret the stack generated
 *   await stack.stop();                                       // afterAll: SIGTERM all, drop the database
 *
 * Isolation per stack (so it runs beside `npm start` and other tests):
 *  - free ports for every gRPC/HTTP listener (never the defaults);
 *  - its own PostgreSQL database `soma_e2e_<run>` (audit migrates it on start; the platform tables
 *    from infra/postgres/platform are applied for retention);
 *  - its own audit consumer group, positioned at the current end of security.events (no history);
 *  - its own Redis prefixes for auth and secrets;
 *  - per-run generated secrets (JWT_SECRET, AUTH_PASSWORD, AUDIT_KEK, checkpoint key, FERNET_KEY,
 *    AUDIT_EXPORT_API_KEY), written as `*_FILE` files mode 0600 under the run directory;
 *  - its own EVENT_BUFFER_PATH (and EVENT_BUFFER_DIR) per instance;
 *  - stdout and stderr of every instance in `<dir>/logs/<instance>.{stdout,stderr}.log`.
 * The run directory is removed on stop unless SOMA_E2E_KEEP=1 (useful to read the logs).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { AuthClient } from '@soma/auth-client';
import { AuthzClient } from '@soma/authz-client';
import { GRPC_REASON_KEY, grpcClientConstructor, Topics, type SomaServiceName } from '@soma/contracts';
import { KAFKA_BROKERS, OPA_URL, POSTGRES_URL, REDIS_URL, REPO_ROOT } from '../../support/infra.js';
import { freePort } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';

const run = promisify(execFile);

export type ServiceName = SomaServiceName;
export const SERVICES: readonly ServiceName[] = ['auth', 'authz', 'secrets', 'audit', 'retention'];

export interface StackOptions {
  /** Shows in the run directory and the database name. */
  name?: string;
  /** Which services to start (in this order); default all five. Dependencies are not added for you. */
  services?: ServiceName[];
  /** Extra env per service (wins over the stack's). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** LOG_LEVEL of every child; default `info` (`trace` when grepping every line for secrets). */
  logLevel?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One running (or exited) child process of a service. */
export interface ServiceInstance {
  /** Instance name, e.g. `auth` or `auth-2`. */
  readonly name: string;
  readonly service: ServiceName;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** host:port */
  readonly grpcAddress: string;
  readonly httpUrl: string;
  readonly env: Readonly<Record<string, string>>;
  readonly stdoutFile: string;
  readonly stderrFile: string;
  readonly child: ChildProcess;
  /** Resolves when the process exits (immediately if it already has). */
  readonly exited: Promise<ExitInfo>;
  alive(): boolean;
}

export interface CallMetadata {
  /** Sent as `authorization: Bearer <bearer>`. */
  bearer?: string;
  traceparent?: string;
  requestId?: string;
  deadlineMs?: number;
  /** Any other metadata. */
  extra?: Record<string, string>;
}

/** A gRPC failure as the tests see it. */
export interface CallError extends Error {
  code: grpc.status;
  details: string;
  reason: string | undefined;
}

export interface GrpcCaller {
  call<T = Record<string, unknown>>(method: string, request: unknown, md?: CallMetadata): Promise<T>;
  /** The error of a call that must fail (throws when it succeeds). */
  fails(method: string, request: unknown, md?: CallMetadata): Promise<CallError>;
  close(): void;
}

export interface AuditRowFilter {
  tenant?: string;
  eventType?: string;
  service?: string;
  traceId?: string;
  action?: string;
  resource?: string;
  outcome?: string;
  /** `details->>key = value` for each entry. */
  details?: Record<string, string>;
  /** Rows ingested into this stack's database with event_id in this list. */
  eventIds?: string[];
}

export interface AuditRow {
  id: string;
  event_id: string;
  event_type: string;
  tenant: string;
  service: string;
  action: string;
  resource: string | null;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
  trace_id: string | null;
  chain_partition: number;
  chain_seq: string;
}

export interface Stack {
  readonly runId: string;
  readonly dir: string;
  /** This stack's database and a pool on it. */
  readonly db: { name: string; url: string; pool: pg.Pool };
  readonly auditConsumerGroup: string;
  readonly authRedisPrefix: string;
  readonly secretsKeyPrefix: string;
  /** The UI password of the auth instances (AUTH_PASSWORD). */
  readonly authPassword: string;
  /** Every instance started so far, by instance name. */
  readonly instances: ReadonlyMap<string, ServiceInstance>;
  get(name: string): ServiceInstance;
  /** Start another instance of `service` (name defaults to `<service>-<n>`), on new ports, with its own buffer. */
  start(service: ServiceName, opts?: { name?: string; env?: Record<string, string>; wait?: boolean }): Promise<ServiceInstance>;
  /** Signal an instance (default SIGKILL) and wait for it to exit. */
  kill(name: string, signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** Start a stopped/killed instance again on the same ports and buffer, with `env` overrides merged in. */
  restart(name: string, env?: Record<string, string>): Promise<ServiceInstance>;
  /**
   * Run a service with the stack's env plus `env` (a key set to `undefined` is removed) and wait for it
   * to exit by itself; for start-up refusals. Throws if it is still running after `timeoutMs`.
   */
  runToExit(service: ServiceName, env: Record<string, string | undefined>, timeoutMs?: number): Promise<ExitInfo & { stdout: string; stderr: string }>;
  /** A token with auth:admin for every tenant (tenant `*`), from the UI login of the first auth instance. */
  adminToken(): string;
  authClient(instance?: string, opts?: { adminCredential?: string; deadlineMs?: number }): AuthClient;
  authzClient(instance?: string, opts?: { deadlineMs?: number }): AuthzClient;
  /** A token of tenant `*` with audit:admin (read, export, verify every tenant). */
  auditorToken(): string;
  /**
   * A promise client of `soma.<service>.v1.<Service>Service` on an instance. `defaults` apply to every call
   * (audit instances default to the auditor token as bearer).
   */
  grpc(instance: string, defaults?: CallMetadata): GrpcCaller;
  /** Rows of this stack's audit_log matching the filter (oldest first). */
  auditRows(filter: AuditRowFilter): Promise<AuditRow[]>;
  /** Wait until at least `min` rows match; returns them. */
  waitForAuditRows(filter: AuditRowFilter, min?: number, timeoutMs?: number): Promise<AuditRow[]>;
  /** Everything every instance wrote to stdout/stderr so far, with `==> file <==` headers. */
  capturedText(): string;
  /** Paths of every captured log file. */
  logFiles(): string[];
  /** Every secret value the stack generated or obtained (for "never in any log" checks). */
  secretValues(): string[];
  /** SIGTERM every instance (SIGKILL after 10 s), close clients, drop the database, remove the run dir. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------- build

let built: Promise<void> | undefined;

function newestMtime(dir: string, filter: (f: string) => boolean): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p, filter));
    else if (filter(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * `npm run build` when a service's dist/ is missing or older than any source (under a lock, since
 * several engineers share the checkout). SOMA_E2E_SKIP_BUILD=1 uses dist/ as it is.
 */
export function ensureBuilt(): Promise<void> {
  built ??= (async () => {
    if (process.env['SOMA_E2E_SKIP_BUILD'] === '1') return;
    const mains = SERVICES.map((s) => join(REPO_ROOT, 'dist/apps', s, 'src/main.js'));
    const oldestMain = Math.min(...mains.map((m) => (existsSync(m) ? statSync(m).mtimeMs : 0)));
    const ts = (f: string) => f.endsWith('.ts') && !f.endsWith('.spec.ts');
    const newestSource = Math.max(newestMtime(join(REPO_ROOT, 'apps'), ts), newestMtime(join(REPO_ROOT, 'libs'), ts));
    if (oldestMain > 0 && oldestMain >= newestSource) return;
    // tsc -b emits even when a project has type errors (TypeScript ≥ 5.6); the aliases must be rewritten either
    // way, or every main.js is left importing `@soma/*`. Type errors are the typecheck step's business.
    const script = 'npx tsc -b tsconfig.build.json >/dev/null 2>&1; npx tsc-alias -p tsconfig.build.json';
    await run('flock', ['/tmp/soma-build.lock', 'bash', '-c', script], { cwd: REPO_ROOT, timeout: 600_000, maxBuffer: 32 * 1024 * 1024 });
  })();
  return built;
}

// ---------------------------------------------------------------------------------------- helpers

function proc(child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

export function grpcCaller(service: ServiceName, address: string, defaults: CallMetadata = {}): GrpcCaller {
  const Ctor = grpcClientConstructor(service);
  const client = new Ctor(address, grpc.credentials.createInsecure());
  const call = <T>(method: string, request: unknown, given: CallMetadata = {}): Promise<T> => {
    const m = { ...defaults, ...given };
    const md = new grpc.Metadata();
    if (m.bearer) md.set('authorization', `Bearer ${m.bearer}`);
    if (m.traceparent) md.set('traceparent', m.traceparent);
    if (m.requestId) md.set('x-request-id', m.requestId);
    for (const [k, v] of Object.entries(m.extra ?? {})) md.set(k, v);
    const fn = (client as unknown as Record<string, Unary>)[method];
    if (!fn) return Promise.reject(new Error(`unknown ${service} method ${method}`));
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, md, { deadline: new Date(Date.now() + (m.deadlineMs ?? 10_000)) }, (err, res) => {
        if (err) {
          const reason = err.metadata?.get(GRPC_REASON_KEY)[0];
          reject(Object.assign(err, { reason: typeof reason === 'string' ? reason : undefined }));
        } else resolve(res as T);
      });
    });
  };
  return {
    call,
    async fails(method, request, md) {
      try {
        await call(method, request, md);
      } catch (e) {
        return e as CallError;
      }
      throw new Error(`${service}.${method} unexpectedly succeeded`);
    },
    close: () => client.close(),
  };
}

/** A W3C traceparent with a fresh trace id (what a caller's tracer would send). */
export function newTraceparent(): { traceparent: string; traceId: string } {
  const traceId = randomBytes(16).toString('hex');
  return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
}

/** A consumer group positioned at the current end of security.events (audit would otherwise read all history). */
async function groupAtEnd(group: string): Promise<void> {
  const admin = new Kafka({ clientId: 'soma-e2e-admin', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(Topics.SecurityEvents);
    await admin.setOffsets({ groupId: group, topic: Topics.SecurityEvents, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
  } finally {
    await admin.disconnect();
  }
}

const PORT_VARS: Record<ServiceName, [string, string]> = {
  auth: ['AUTH_GRPC_PORT', 'AUTH_HTTP_PORT'],
  authz: ['AUTHZ_GRPC_PORT', 'AUTHZ_HTTP_PORT'],
  secrets: ['SECRETS_GRPC_PORT', 'SECRETS_HTTP_PORT'],
  audit: ['AUDIT_GRPC_PORT', 'AUDIT_HTTP_PORT'],
  retention: ['RETENTION_GRPC_PORT', 'RETENTION_HTTP_PORT'],
};

/** Environment the children inherit: PATH and friends, never the caller's service settings. */
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'LANG', 'TZ', 'NODE_OPTIONS', 'TMPDIR'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
}

// ---------------------------------------------------------------------------------------- stack

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const t0 = Date.now();
  const step = (what: string) => {
    if (process.env['SOMA_E2E_DEBUG'] === '1') process.stderr.write(`[stack] ${what} +${Date.now() - t0} ms\n`);
  };
  await ensureBuilt();
  step('built');
  const runId = randomBytes(5).toString('hex');
  const label = (options.name ?? 'stack').replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20) || 'stack';
  const dir = mkdtempSync(join(tmpdir(), `soma-e2e-${label}-`));
  const secretsDir = join(dir, 'secrets');
  const logsDir = join(dir, 'logs');
  mkdirSync(secretsDir, { mode: 0o700 });
  mkdirSync(logsDir);

  // ---- secrets, generated per run, handed over as *_FILE
  const secretValues: string[] = [];
  const secretFile = (name: string, value: string): string => {
    const p = join(secretsDir, name);
    writeFileSync(p, value, { mode: 0o600 });
    secretValues.push(value);
    return p;
  };
  const authPassword = `ui-${randomBytes(18).toString('base64url')}`;
  const fernetKey = randomBytes(32).toString('base64url') + '=';
  const checkpointPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const files = {
    jwt: secretFile('jwt.secret', randomBytes(48).toString('base64url')),
    password: secretFile('ui.password', authPassword),
    kek: secretFile('audit-kek.secret', randomBytes(48).toString('base64url')),
    checkpoint: secretFile('audit-checkpoint.pem', checkpointPem),
    exportKey: secretFile('audit-export.secret', randomBytes(32).toString('base64url')),
    fernet: secretFile('secrets.fernet', fernetKey),
  };

  // ---- database
  const dbName = `soma_e2e_${label}_${runId}`;
  const adminPool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
  await adminPool.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
  const dbUrl = (() => {
    const u = new URL(POSTGRES_URL);
    u.pathname = `/${dbName}`;
    return u.toString();
  })();
  const pool = new pg.Pool({ connectionString: dbUrl, max: 4 });
  pool.on('error', () => undefined); // PostgreSQL restarts in fault tests
  await pool.query(readFileSync(join(REPO_ROOT, 'infra/postgres/platform/0001_platform_tables.sql'), 'utf8'));

  step('database');
  const auditConsumerGroup = `soma-e2e-audit-${runId}`;
  // Positioned while auth and authz start (the coordinator takes a few seconds for a new group).
  const groupReady = groupAtEnd(auditConsumerGroup);
  groupReady.catch(() => undefined);
  const authRedisPrefix = `e2e:${runId}:auth:`;
  const secretsKeyPrefix = `e2e:${runId}:secret:`;

  const instances = new Map<string, ServiceInstance>();
  const specs = new Map<string, { service: ServiceName; ports: { grpc: number; http: number }; env: Record<string, string> }>();
  const clients: Array<{ close(): void }> = [];
  let admin = '';
  let auditor = '';
  let serviceToken = '';

  const common = (): Record<string, string> => ({
    ...baseEnv(),
    NODE_ENV: 'test',
    LOG_LEVEL: options.logLevel ?? 'info',
    OTEL_ENABLED: 'true',
    KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    REDIS_URL,
  });
  const address = (svc: ServiceName) => instances.get(svc)?.grpcAddress ?? '127.0.0.1:1';

  const serviceEnv = (svc: ServiceName): Record<string, string> => {
    switch (svc) {
      case 'auth':
        return {
          JWT_SECRET_FILE: files.jwt,
          AUTH_PASSWORD_FILE: files.password,
          AUTH_REDIS_PREFIX: authRedisPrefix,
          AUTH_LOGIN_USERNAME: 'operator',
          AUTH_LOGIN_TENANT: '*',
          AUTH_LOGIN_SCOPES: 'auth:admin',
          // The tests log in more than a UI user would; lockout is still on (faults and hostile tests use it).
          LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
          AUTH_SUCCESS_EVENT_WINDOW_SECONDS: '0',
          // 2 cores shared by many test processes: Redis answers late more often than in production.
          AUTH_REDIS_TIMEOUT_MS: '2000',
        };
      case 'authz':
        return { OPA_URL, AUTHZ_POLICY_MODE: 'server', OPA_TIMEOUT_MS: '500', OPA_POLICY_POLL_MS: '500', AUTHZ_DECISION_CACHE_TTL_MS: '0', AUTHZ_GRANTED_EVENTS: 'none', OPENFGA_ENABLED: 'false' };
      case 'secrets':
        return {
          FERNET_KEY_FILE: files.fernet,
          SECRETS_KEY_PREFIX: secretsKeyPrefix,
          AUTH_GRPC_ADDRESS: address('auth'),
          AUTHZ_GRPC_ADDRESS: address('authz'),
          SECRETS_ACCESS_CHECK_TIMEOUT_MS: '3000',
          // Its own credential for authz (used when authz runs with AUTHZ_CALLER_AUTH=required).
          ...(serviceToken ? { AUTHZ_CREDENTIAL: serviceToken } : {}),
        };
      case 'audit':
        return {
          POSTGRES_URL: dbUrl,
          AUDIT_MIGRATE_ON_START: 'true',
          AUDIT_KEK_FILE: files.kek,
          AUDIT_CHECKPOINT_KEY_FILE: files.checkpoint,
          AUDIT_CHECKPOINT_INTERVAL_MS: '1000',
          AUDIT_CONSUMER_GROUP: auditConsumerGroup,
          AUDIT_KAFKA_SESSION_TIMEOUT_MS: '6000',
          AUDIT_SIEM_DRAIN_INTERVAL_MS: '200',
          AUDIT_EXPORT_API_KEY_FILE: files.exportKey,
          AUTH_GRPC_ADDRESS: address('auth'),
        };
      case 'retention':
        return {
          POSTGRES_URL: dbUrl,
          AUDIT_KEK_FILE: files.kek,
          AUTH_GRPC_ADDRESS: address('auth'),
          RETENTION_AUTH_CREDENTIAL: admin,
          RETENTION_SCHEDULER_ENABLED: 'false',
          RETENTION_AUDIT_ROLE: 'audit_retention',
        };
    }
  };

  const spawnInstance = async (name: string, waitReady: boolean): Promise<ServiceInstance> => {
    const spec = specs.get(name)!;
    const stdoutFile = join(logsDir, `${name}.stdout.log`);
    const stderrFile = join(logsDir, `${name}.stderr.log`);
    const out = openSync(stdoutFile, 'a');
    const err = openSync(stderrFile, 'a');
    const child = spawn(process.execPath, [join('dist/apps', spec.service, 'src/main.js')], { cwd: REPO_ROOT, env: spec.env, stdio: ['ignore', out, err] });
    closeSync(out);
    closeSync(err);
    const exited = proc(child);
    const instance: ServiceInstance = {
      name,
      service: spec.service,
      grpcPort: spec.ports.grpc,
      httpPort: spec.ports.http,
      grpcAddress: `127.0.0.1:${spec.ports.grpc}`,
      httpUrl: `http://127.0.0.1:${spec.ports.http}`,
      env: spec.env,
      stdoutFile,
      stderrFile,
      child,
      exited,
      alive: () => child.exitCode === null && child.signalCode === null,
    };
    instances.set(name, instance);
    if (waitReady) {
      await waitFor(
        async () => {
          if (!instance.alive()) throw new Error(`${name} exited: ${readFileSync(stderrFile, 'utf8').slice(-2000)}`);
          const r = await fetch(`${instance.httpUrl}/healthz`);
          return r.ok;
        },
        { timeoutMs: 120_000, intervalMs: 200, what: `${name} /healthz` },
      ).catch((e: unknown) => {
        if (!instance.alive()) throw e;
        throw new Error(`${(e as Error).message}; stderr: ${readFileSync(stderrFile, 'utf8').slice(-2000)}`);
      });
    }
    return instance;
  };

  const defineInstance = async (service: ServiceName, name: string, extra: Record<string, string> = {}): Promise<void> => {
    const ports = { grpc: await freePort(), http: await freePort() };
    const bufferDir = join(dir, 'buffer', name);
    mkdirSync(bufferDir, { recursive: true });
    const [g, h] = PORT_VARS[service];
    specs.set(name, {
      service,
      ports,
      env: {
        ...common(),
        ...serviceEnv(service),
        [g]: String(ports.grpc),
        [h]: String(ports.http),
        EVENT_BUFFER_DIR: bufferDir,
        EVENT_BUFFER_PATH: join(bufferDir, `${service}.sqlite`),
        INSTANCE_ID: `e2e-${runId}-${name}`,
        ...options.env?.[service],
        ...extra,
      },
    });
  };

  const stack: Stack = {
    runId,
    dir,
    db: { name: dbName, url: dbUrl, pool },
    auditConsumerGroup,
    authRedisPrefix,
    secretsKeyPrefix,
    authPassword,
    instances,
    get(name) {
      const i = instances.get(name);
      if (!i) throw new Error(`no instance ${name} (have ${[...instances.keys()].join(', ')})`);
      return i;
    },
    async start(service, opts = {}) {
      let name = opts.name;
      if (!name) {
        let n = 2;
        while (specs.has(`${service}-${n}`)) n++;
        name = `${service}-${n}`;
      }
      if (specs.has(name)) throw new Error(`instance ${name} exists`);
      await defineInstance(service, name, opts.env);
      return spawnInstance(name, opts.wait ?? true);
    },
    async kill(name, signal = 'SIGKILL') {
      const i = stack.get(name);
      if (i.alive()) i.child.kill(signal);
      return i.exited;
    },
    async restart(name, env = {}) {
      const i = stack.get(name);
      if (i.alive()) throw new Error(`${name} is still running (kill it first)`);
      const spec = specs.get(name)!;
      spec.env = { ...spec.env, ...env };
      return spawnInstance(name, true);
    },
    async runToExit(service, env, timeoutMs = 30_000) {
      const ports = { grpc: await freePort(), http: await freePort() };
      const bufferDir = join(dir, 'buffer', `${service}-refusal-${randomBytes(3).toString('hex')}`);
      mkdirSync(bufferDir, { recursive: true });
      const [g, h] = PORT_VARS[service];
      const full: Record<string, string> = { ...common(), ...serviceEnv(service), [g]: String(ports.grpc), [h]: String(ports.http), EVENT_BUFFER_DIR: bufferDir };
      for (const [k, v] of Object.entries(env)) {
        if (v === undefined) delete full[k];
        else full[k] = v;
      }
      const child = spawn(process.execPath, [join('dist/apps', service, 'src/main.js')], { cwd: REPO_ROOT, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const exit = await proc(child);
      clearTimeout(timer);
      const logName = join(logsDir, `${service}-refusal-${Date.now()}.log`);
      writeFileSync(logName, `${stdout}\n${stderr}`);
      if (exit.signal === 'SIGKILL') throw new Error(`${service} did not exit by itself within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`);
      return { ...exit, stdout, stderr };
    },
    adminToken: () => admin,
    authClient(instance = 'auth', opts = {}) {
      const c = new AuthClient({ address: stack.get(instance).grpcAddress, deadlineMs: opts.deadlineMs ?? 10_000, adminCredential: opts.adminCredential ?? admin });
      clients.push(c);
      return c;
    },
    authzClient(instance = 'authz', opts = {}) {
      const c = new AuthzClient({ address: stack.get(instance).grpcAddress, deadlineMs: opts.deadlineMs ?? 10_000 });
      clients.push(c);
      return c;
    },
    auditorToken: () => auditor,
    grpc(instance, defaults) {
      const i = stack.get(instance);
      const c = grpcCaller(i.service, i.grpcAddress, defaults ?? (i.service === 'audit' && auditor ? { bearer: auditor } : {}));
      clients.push(c);
      return c;
    },
    async auditRows(f) {
      const where: string[] = [];
      const args: unknown[] = [];
      const add = (sql: string, v: unknown) => {
        args.push(v);
        where.push(sql.replace('?', `$${args.length}`));
      };
      if (f.tenant !== undefined) add('tenant = ?', f.tenant);
      if (f.eventType !== undefined) add('event_type = ?', f.eventType);
      if (f.service !== undefined) add('service = ?', f.service);
      if (f.traceId !== undefined) add('trace_id = ?', f.traceId);
      if (f.action !== undefined) add('action = ?', f.action);
      if (f.resource !== undefined) add('resource = ?', f.resource);
      if (f.outcome !== undefined) add('outcome = ?', f.outcome);
      if (f.eventIds !== undefined) add('event_id::text = ANY(?::text[])', f.eventIds);
      for (const [k, v] of Object.entries(f.details ?? {})) {
        args.push(k, v);
        where.push(`details->>$${args.length - 1} = $${args.length}`);
      }
      const { rows } = await pool.query<AuditRow>(
        `SELECT id::text, event_id::text, event_type, tenant, service, action, resource, outcome, reason, details, trace_id, chain_partition, chain_seq::text
           FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY timestamp, chain_partition, chain_seq`,
        args,
      );
      return rows;
    },
    async waitForAuditRows(f, min = 1, timeoutMs = 60_000) {
      return waitFor(async () => {
        const rows = await stack.auditRows(f);
        return rows.length >= min ? rows : null;
      }, { timeoutMs, intervalMs: 250, what: `${min} audit_log rows matching ${JSON.stringify(f)}` });
    },
    logFiles: () => readdirSync(logsDir).map((f) => join(logsDir, f)),
    capturedText: () => stack.logFiles().map((f) => `==> ${f} <==\n${readFileSync(f, 'utf8')}`).join('\n'),
    secretValues: () => [...secretValues, ...(admin ? [admin] : []), ...(auditor ? [auditor] : []), ...(serviceToken ? [serviceToken] : [])],
    async stop() {
      for (const c of clients.splice(0)) c.close();
      await Promise.all(
        [...instances.values()].map(async (i) => {
          if (!i.alive()) return;
          i.child.kill('SIGTERM');
          const t = setTimeout(() => i.child.kill('SIGKILL'), 10_000);
          await i.exited;
          clearTimeout(t);
        }),
      );
      await pool.end().catch(() => undefined);
      await adminPool.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`).catch(() => undefined);
      await adminPool.end().catch(() => undefined);
      const kafkaAdmin = new Kafka({ clientId: 'soma-e2e-admin', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
      await kafkaAdmin
        .connect()
        .then(() => kafkaAdmin.deleteGroups([auditConsumerGroup]))
        .catch(() => undefined)
        .finally(() => kafkaAdmin.disconnect().catch(() => undefined));
      if (process.env['SOMA_E2E_KEEP'] !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    const wanted = options.services ?? [...SERVICES];
    const start = async (svc: ServiceName) => {
      await defineInstance(svc, svc);
      await spawnInstance(svc, true);
    };
    // auth and authz first (the others take their addresses, retention the operator token), then the rest together.
    await Promise.all(SERVICES.filter((s) => (s === 'auth' || s === 'authz') && wanted.includes(s)).map(start));
    step('auth, authz');
    if (instances.has('auth')) {
      admin = await loginAdmin(stack.get('auth'), authPassword);
      const c = new AuthClient({ address: stack.get('auth').grpcAddress, deadlineMs: 10_000, adminCredential: admin });
      auditor = (await c.issueToken({ tenant: '*', sub: 'e2e-auditor', scopes: ['audit:admin'], ttlSeconds: 86_400 })).token;
      serviceToken = (await c.issueToken({ tenant: '*', sub: 'e2e-service', scopes: ['authz:check'], ttlSeconds: 86_400 })).token;
      c.close();
    }
    await groupReady;
    step('operator login, consumer group');
    await Promise.all(SERVICES.filter((s) => s !== 'auth' && s !== 'authz' && wanted.includes(s)).map(start));
    step('all started');
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}

/** The UI login of the platform operator (tenant `*`, auth:admin): the stack's admin token. */
async function loginAdmin(auth: ServiceInstance, password: string): Promise<string> {
  const res = await fetch(`${auth.httpUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'soma-e2e-stack' },
    body: JSON.stringify({ username: 'operator', password }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`operator login failed: HTTP ${res.status}`);
  return body.access_token;
}

/** POST /v1/login on an auth instance (JSON body), with a user agent. */
export async function uiLogin(auth: ServiceInstance, body: { username?: string; password: string }, userAgent = 'soma-e2e'): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${auth.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': userAgent }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
