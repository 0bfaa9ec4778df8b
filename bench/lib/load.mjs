// Load generators: ghz (gRPC), vegeta (HTTP), redis-benchmark, and in-process loops. Each returns
// the same shape: { tool, concurrency, durationS, requests, errors, throughput, latencyMs:{p50,p99,p999,...} }.
import { writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, CORES, PROTO_ROOT, ROOT, latencyStats, log, pinned, processMeter, round, run, tempDir } from './common.mjs';

const GHZ = join(BIN, 'ghz');
const VEGETA = join(BIN, 'vegeta');

export function toolsPresent() {
  return { ghz: existsSync(GHZ), vegeta: existsSync(VEGETA) };
}

function finish(tool, concurrency, latNs, errors, wallS, extra = {}) {
  const ok = latNs.length;
  return {
    tool,
    concurrency,
    durationS: round(wallS, 2),
    requests: ok + errors.count,
    errors: errors.count,
    errorSample: errors.sample,
    throughput: round(ok / wallS, 0),
    latencyMs: latencyStats(latNs.map((n) => n / 1e6)),
    ...extra,
  };
}

/**
 * ghz, pinned to the load core, GOMAXPROCS 1 (--cpus 1). `data` is one request message or an array
 * (ghz sends the array's messages round-robin). Warm-up is a separate run whose numbers are dropped.
 */
export async function ghz({ address, proto, call, data, metadata, concurrency, durationS, warmupS, meterPid, connections = 1, reflect = false }) {
  if (!existsSync(GHZ)) throw new Error(`ghz missing: ${GHZ} (infra/local/install ghz)`);
  const dir = tempDir('ghz');
  const dataFile = join(dir, 'data.json');
  writeFileSync(dataFile, JSON.stringify(data ?? {}));
  const base = ['--insecure', '--call', call, '-D', dataFile, '-c', String(concurrency), '--connections', String(connections), '--cpus', '1'];
  if (!reflect) base.push('--proto', join(PROTO_ROOT, proto), '--import-paths', PROTO_ROOT);
  if (metadata) {
    const mdFile = join(dir, 'md.json');
    writeFileSync(mdFile, JSON.stringify(metadata));
    base.push('--metadata-file', mdFile);
  }
  if (warmupS > 0) {
    const [c, a] = pinned(CORES.load, GHZ, [...base, '-z', `${warmupS}s`, '--format', 'summary', address]);
    await run(c, a);
  }
  const out = join(dir, 'out.json');
  const meter = processMeter(meterPid);
  const [c, a] = pinned(CORES.load, GHZ, [...base, '-z', `${durationS}s`, '--format', 'json', '-o', out, address]);
  await run(c, a);
  const proc = meter.stop();
  const report = JSON.parse(readFileSync(out, 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  const lat = [];
  const errors = { count: 0, sample: undefined };
  // The calls in flight when -z ends are cancelled by ghz ("transport is closing"): not the server's errors.
  let cutOff = 0;
  for (const d of report.details ?? []) {
    if (d.error && /transport is closing|context canceled/.test(d.error) && cutOff < concurrency) cutOff++;
    else if (d.error) {
      errors.count++;
      errors.sample ??= `${d.status}: ${String(d.error).slice(0, 160)}`;
    } else lat.push(d.latency);
  }
  return { ...finish('ghz', concurrency, lat, errors, report.total / 1e9), cutOffAtEnd: cutOff, process: proc };
}

/**
 * vegeta at its maximum rate with a fixed number of workers (closed loop, like ghz -c): `targets`
 * are {method,url,body,header} cycled in order.
 */
export async function vegeta({ targets, concurrency, durationS, warmupS, meterPid }) {
  if (!existsSync(VEGETA)) throw new Error(`vegeta missing: ${VEGETA} (scripts/bench.sh installs it)`);
  const dir = tempDir('vegeta');
  const tfile = join(dir, 'targets.jsonl');
  writeFileSync(
    tfile,
    targets
      .map((t) => JSON.stringify({ method: t.method, url: t.url, body: Buffer.from(t.body ?? '').toString('base64'), header: { 'Content-Type': ['application/json'], ...(t.header ?? {}) } }))
      .join('\n') + '\n',
  );
  const attack = (d, outFile) => {
    const [c, a] = pinned(CORES.load, VEGETA, ['attack', '-format=json', `-targets=${tfile}`, '-rate=0', `-workers=${concurrency}`, `-max-workers=${concurrency}`, `-duration=${d}s`, '-keepalive=true', `-output=${outFile}`]);
    return run(c, a, { env: { ...process.env, GOMAXPROCS: '1' } });
  };
  if (warmupS > 0) await attack(warmupS, join(dir, 'warm.bin'));
  const bin = join(dir, 'out.bin');
  const meter = processMeter(meterPid);
  const t0 = process.hrtime.bigint();
  await attack(durationS, bin);
  const proc = meter.stop();
  const { stdout } = await run(VEGETA, ['encode', '--to', 'json', bin]);
  rmSync(dir, { recursive: true, force: true });
  const lat = [];
  const errors = { count: 0, sample: undefined };
  let first = Infinity;
  let last = 0;
  for (const line of stdout.toString('utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    const ts = Date.parse(r.timestamp);
    first = Math.min(first, ts);
    last = Math.max(last, ts + r.latency / 1e6);
    if (r.error || r.code < 200 || r.code >= 300) {
      errors.count++;
      errors.sample ??= `${r.code}: ${String(r.error || Buffer.from(r.body ?? '', 'base64').toString('utf8')).slice(0, 160)}`;
    } else lat.push(r.latency);
  }
  const wall = Number.isFinite(first) ? (last - first) / 1000 : Number(process.hrtime.bigint() - t0) / 1e9;
  return { ...finish('vegeta', concurrency, lat, errors, wall), process: proc };
}

/** redis-benchmark GET (CSV: rps, p50, p99; no p99.9 in its output) on the load core. */
export async function redisBenchmark({ host = '127.0.0.1', port = 6379, key, concurrency, requests, meterPid }) {
  const meter = processMeter(meterPid);
  const [c, a] = pinned(CORES.load, 'redis-benchmark', ['-h', host, '-p', String(port), '-c', String(concurrency), '-n', String(requests), '--csv', '--precision', '3', 'GET', key]);
  const t0 = process.hrtime.bigint();
  const { stdout } = await run(c, a);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const proc = meter.stop();
  const lines = stdout.toString('utf8').trim().split('\n');
  const header = lines[0].split(',').map((s) => s.replaceAll('"', ''));
  const row = lines[lines.length - 1].split(',').map((s) => s.replaceAll('"', ''));
  const get = (k) => Number(row[header.indexOf(k)]);
  return {
    tool: 'redis-benchmark',
    concurrency,
    durationS: round(wall, 2),
    requests,
    errors: 0,
    throughput: round(get('rps'), 0),
    latencyMs: { p50: get('p50_latency_ms'), p99: get('p99_latency_ms'), p999: null, mean: get('avg_latency_ms'), max: get('max_latency_ms') },
    process: proc,
    note: 'redis-benchmark reports no p99.9',
  };
}

/** bench/inproc/<script>.mjs on the service core: it prints one JSON result line. */
export async function inProcess(script, params) {
  const [c, a] = pinned(CORES.service, process.execPath, [join(ROOT, 'bench/inproc', script), JSON.stringify(params)]);
  const { stdout } = await run(c, a);
  const res = JSON.parse(stdout.toString('utf8').trim().split('\n').pop());
  return { tool: `in-process (${script})`, ...res };
}

export function describeRun(name, r) {
  if (r.unit) {
    log(`  ${name}: ${r.rows ?? ''} rows in ${r.seconds} s = ${r.throughput} ${r.unit}${r.process?.cpuPercent != null ? `, cpu ${r.process.cpuPercent}% rss ${r.process.peakRssMb} MB` : ''}`);
    return;
  }
  const l = r.latencyMs ?? {};
  log(`  ${name}: ${r.throughput}/s p50 ${l.p50} p99 ${l.p99} p99.9 ${l.p999} ms, errors ${r.errors}${r.process?.cpuPercent != null ? `, cpu ${r.process.cpuPercent}% rss ${r.process.peakRssMb} MB` : ''}`);
}
