// Shared pieces of the benchmark harness: settings, process control, per-process CPU/RSS sampling,
// latency statistics. Plain ESM (no build step): the harness runs the built services from dist/.
import { spawn, execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, '.local/bin');
export const PROTO_ROOT = join(ROOT, 'libs/contracts/proto');
export const execFileP = promisify(execFile);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * How the two cores are shared (see docs/performance.md): the service under test (and the in-process
 * baselines, which stand in for it) run on core 1, the load generators on core 0. The shared servers
 * (PostgreSQL, Redis, Kafka, OPA, OpenFGA) are not ours to re-pin: they float over both cores.
 */
export const CORES = { service: '1', load: '0' };

export function parseArgs(argv) {
  const args = { quick: false, only: null, out: join(ROOT, 'bench/results'), concurrency: 50, duration: null, warmup: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a.startsWith('--only')) args.only = value().split(',').filter(Boolean);
    else if (a.startsWith('--out')) args.out = resolve(value());
    else if (a.startsWith('--concurrency')) args.concurrency = Number(value());
    else if (a.startsWith('--duration')) args.duration = Number(value());
    else if (a.startsWith('--warmup')) args.warmup = Number(value());
    else if (a === '--help' || a === '-h') args.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  args.duration ??= args.quick ? 3 : 15;
  args.warmup ??= args.quick ? 1 : 3;
  return args;
}

export function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export function tempDir(name) {
  return mkdtempSync(join(tmpdir(), `soma-bench-${name}-`));
}

/** KEY=VALUE lines of apps/<svc>/dev.env (same rules as scripts/lib.sh load_dev_env). */
export function devEnv(svc) {
  const file = join(ROOT, 'apps', svc, 'dev.env');
  const out = {};
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const i = line.indexOf('=');
    const key = line.slice(0, i);
    if (/^[A-Z_][A-Z0-9_]*$/.test(key)) out[key] = line.slice(i + 1);
  }
  return out;
}

// ---------------------------------------------------------------- percentiles

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** Latencies in ms (any order) → { p50, p99, p999, mean, max } rounded to µs. */
export function latencyStats(latMs) {
  const s = Float64Array.from(latMs).sort();
  const r = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  let sum = 0;
  for (const v of s) sum += v;
  return { p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), p999: r(percentile(s, 99.9)), mean: r(s.length ? sum / s.length : null), max: r(s.length ? s[s.length - 1] : null) };
}

// ---------------------------------------------------------------- process metrics

const CLK_TCK = 100;

/** utime+stime of a process in seconds (all its threads). */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * CPU and peak RSS of a process over a measurement window. The kernel's high-water mark (VmHWM) is
 * reset at the start (clear_refs 5) so the peak is the window's, not start-up's; an RSS sampler every
 * 100 ms is the fallback where the reset is not allowed.
 */
export function processMeter(pid) {
  if (!pid) return { stop: () => null };
  let hwmReset = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    hwmReset = true;
  } catch {
    /* not allowed: sampled peak only */
  }
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  let peakKb = statusKb(pid, 'VmRSS') ?? 0;
  const timer = setInterval(() => {
    const kb = statusKb(pid, 'VmRSS');
    if (kb !== null && kb > peakKb) peakKb = kb;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu1 = cpuSeconds(pid);
      const hwm = hwmReset ? statusKb(pid, 'VmHWM') : null;
      const peak = Math.max(peakKb, hwm ?? 0);
      const cpuS = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
      return { pid, cpuSeconds: cpuS === null ? null : round(cpuS, 2), cpuPercent: cpuS === null ? null : round((100 * cpuS) / wall, 1), peakRssMb: peak ? round(peak / 1024, 1) : null };
    },
  };
}

export function round(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- dist snapshot

let distDir = join(ROOT, 'dist');

/** dist/ files that still import `@soma/…` (tsc wrote them, tsc-alias has not rewritten them yet). */
function unaliased(dir) {
  const bad = [];
  for (const f of readdirSync(dir, { recursive: true })) {
    if (!String(f).endsWith('.js')) continue;
    if (/from ['"]@soma\//.test(readFileSync(join(dir, String(f)), 'utf8'))) bad.push(String(f));
  }
  return bad;
}

/**
 * The services run from a private copy of dist/ (.local/bench/dist-<pid>): other engineers rebuild the
 * shared dist/ at any time, and a half-written build must not break a service start mid-benchmark.
 */
export async function snapshotDist() {
  const src = join(ROOT, 'dist');
  for (let attempt = 0; ; attempt++) {
    const dest = join(ROOT, '.local/bench', `dist-${process.pid}`);
    rmSync(dest, { recursive: true, force: true });
    cpSync(src, dest, { recursive: true });
    const bad = unaliased(dest);
    const missing = ['auth', 'authz', 'secrets', 'audit', 'retention'].filter((s) => !existsSync(join(dest, `apps/${s}/src/main.js`)));
    if (bad.length === 0 && missing.length === 0) {
      distDir = dest;
      process.on('exit', () => rmSync(dest, { recursive: true, force: true }));
      return dest;
    }
    if (attempt >= 20) throw new Error(`dist/ is incomplete (a build in progress?): ${[...missing, ...bad].slice(0, 5).join(', ')}`);
    log(`dist/ is being rebuilt (${[...missing, ...bad][0]}); retrying in 5 s`);
    await sleep(5000);
  }
}

export function distPath(rel) {
  return join(distDir, rel);
}

// ---------------------------------------------------------------- child processes

const children = new Set();

function cleanup() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

/** A command pinned to a core (taskset when present). */
export function pinned(core, cmd, args) {
  return existsSync('/usr/bin/taskset') ? ['/usr/bin/taskset', ['-c', core, cmd, ...args]] : [cmd, args];
}

/**
 * `node dist/apps/<svc>/src/main.js` as its own process on core 1, with its dev.env under our env
 * (our ports, buffer file, prefixes win), waiting for /healthz. Extra node flags (e.g. --cpu-prof) via opts.nodeArgs.
 */
export async function startService(svc, env, opts = {}) {
  const dir = tempDir(svc);
  const logFile = join(dir, `${svc}.log`);
  const fullEnv = {
    ...process.env,
    ...devEnv(svc),
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    OTEL_ENABLED: 'false',
    EVENT_BUFFER_PATH: join(dir, 'events.sqlite'),
    EVENT_BUFFER_DIR: dir,
    INSTANCE_ID: `bench-${svc}`,
    SOMA_PROTO_DIR: PROTO_ROOT,
    ...env,
  };
  // A value we give wins over the dev.env's `<NAME>_FILE` reference to it; null removes a setting.
  for (const [k, v] of Object.entries(env)) if (v !== null && !(`${k}_FILE` in env)) delete fullEnv[`${k}_FILE`];
  for (const [k, v] of Object.entries(fullEnv)) if (v === null) delete fullEnv[k];
  const nodeArgs = [...(opts.nodeArgs ?? []), join(distDir, `apps/${svc}/src/main.js`)];
  // The service under test on the service core; its dependencies (opts.pin === false) float.
  const [cmd, args] = opts.pin === false ? [process.execPath, nodeArgs] : pinned(CORES.service, process.execPath, nodeArgs);
  const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  const keep = (d) => {
    output = (output + d.toString('utf8')).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const httpPort = env[`${svc.toUpperCase()}_HTTP_PORT`];
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${svc} exited with ${child.exitCode} during start:\n${output.slice(-3000)}`);
    try {
      const r = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${svc} not healthy after ${opts.timeoutMs ?? 60_000} ms:\n${output.slice(-3000)}`);
    await sleep(200);
  }
  return {
    svc,
    pid: child.pid,
    child,
    dir,
    logFile,
    output: () => output,
    grpc: `127.0.0.1:${env[`${svc.toUpperCase()}_GRPC_PORT`]}`,
    http: `http://127.0.0.1:${httpPort}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
      children.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The pid of the process that really runs (taskset execs, so it is the same pid). */
export function servicePid(service) {
  return service?.pid ?? null;
}

export function ensureDir(d) {
  mkdirSync(d, { recursive: true });
  return d;
}

/** Spawn and collect stdout; rejects on non-zero exit with stderr. */
export function run(cmd, args, opts = {}) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const out = [];
    let err = '';
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => {
      err = (err + d.toString('utf8')).slice(-8000);
    });
    child.on('error', rej);
    child.on('exit', (code) => {
      children.delete(child);
      const stdout = Buffer.concat(out);
      if (code === 0 || opts.allowFail) res({ stdout, stderr: err, code });
      else rej(new Error(`${cmd} ${args.slice(0, 6).join(' ')} … exited ${code}: ${err.slice(-2000)}`));
    });
  });
}
