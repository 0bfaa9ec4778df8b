#!/usr/bin/env node
// npm run bench [-- --quick] [--only a,b] [--out dir] [--concurrency 50] [--duration s] [--warmup s] [--cpu-prof] [--merge]
// Runs every case (or --only) with its baselines right before/after it on the same machine, and writes
// <out>/latest.json and <out>/latest.md. Expects the infrastructure up and dist/ built (scripts/bench.sh does both).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { CORES, ensureDir, log, parseArgs, snapshotDist, tempDir } from './lib/common.mjs';
import { renderMarkdown, score } from './lib/report.mjs';

const argv = process.argv.slice(2);
const cpuProf = argv.includes('--cpu-prof');
// --merge: re-run some cases (e.g. ones a busy machine distorted) into the existing latest.json.
const merge = argv.includes('--merge');
const args = parseArgs(argv.filter((a) => a !== '--cpu-prof' && a !== '--merge' && a !== '--render'));

// --render: re-score and re-render <out>/latest.json (after a change of the report), measuring nothing.
if (argv.includes('--render')) {
  const file = join(args.out, 'latest.json');
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  doc.results = doc.results.map((r) => (r.error ? r : { ...r, ...score(r) }));
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  writeFileSync(join(args.out, 'latest.md'), renderMarkdown(doc));
  process.exit(0);
}

const modules = ['auth', 'authz', 'secrets', 'audit', 'retention'];
const all = {};
for (const m of modules) Object.assign(all, (await import(`./cases/${m}.mjs`)).cases);

if (args.help) {
  process.stdout.write(`usage: npm run bench -- [--quick] [--only ${Object.keys(all).join(',')}] [--out dir] [--concurrency n] [--duration s] [--warmup s] [--cpu-prof] [--merge]\n`);
  process.exit(0);
}

const selected = args.only ?? Object.keys(all);
for (const id of selected) if (!all[id]) throw new Error(`unknown case ${id} (known: ${Object.keys(all).join(', ')})`);

await snapshotDist();
const profDir = cpuProf ? tempDir('cpu-prof') : null;
const ctx = {
  quick: args.quick,
  concurrency: args.concurrency,
  duration: args.duration,
  warmup: args.warmup,
  /** node flags for a service process: --cpu-prof into the profile folder when asked. */
  nodeArgs: (svc, tag = '') => (profDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, `${svc}${tag ? `-${tag}` : ''}`)}`] : []),
};

const round2 = (x) => Math.round(x * 100) / 100;
const started = new Date();
const results = [];
for (const id of selected) {
  log(`case ${id}`);
  const t0 = Date.now();
  const load0 = round2(loadavg()[0]);
  try {
    const row = await all[id](ctx);
    results.push({ ...score(row), measuredAt: new Date(t0).toISOString(), loadavg1m: { start: load0, end: round2(loadavg()[0]) }, seconds: Math.round((Date.now() - t0) / 1000) });
  } catch (e) {
    log(`case ${id} failed: ${e.stack ?? e}`);
    results.push({ id, error: String(e?.message ?? e).slice(0, 2000), seconds: Math.round((Date.now() - t0) / 1000) });
  }
}

let previous = null;
if (merge && existsSync(join(args.out, 'latest.json'))) previous = JSON.parse(readFileSync(join(args.out, 'latest.json'), 'utf8'));
if (previous) {
  const fresh = new Map(results.map((r) => [r.id, { ...r, rerun: true }]));
  const merged = previous.results.map((r) => fresh.get(r.id) ?? r);
  for (const r of fresh.values()) if (!previous.results.some((p) => p.id === r.id)) merged.push(r);
  results.splice(0, results.length, ...merged);
}
const doc = {
  schema: 'soma.bench/v1',
  startedAt: previous?.startedAt ?? started.toISOString(),
  ...(previous ? { rerunAt: [...(previous.rerunAt ?? []), started.toISOString()] } : {}),
  finishedAt: new Date().toISOString(),
  mode: args.quick ? 'quick' : 'full',
  settings: { durationS: args.duration, warmupS: args.warmup, concurrency: args.concurrency },
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) },
  cores: {
    service: `core ${CORES.service}: the service under test, and the in-process baselines (taskset)`,
    load: `core ${CORES.load}: ghz (--cpus 1), vegeta (GOMAXPROCS=1), redis-benchmark (taskset)`,
    infrastructure: 'PostgreSQL, Redis, Kafka, OPA, OpenFGA: not pinned (shared servers, both cores)',
  },
  ...(profDir ? { cpuProfiles: profDir } : {}),
  results,
};
ensureDir(args.out);
writeFileSync(join(args.out, 'latest.json'), JSON.stringify(doc, null, 2) + '\n');
writeFileSync(join(args.out, 'latest.md'), renderMarkdown(doc));
log(`wrote ${join(args.out, 'latest.json')} and latest.md`);
process.stdout.write(renderMarkdown(doc));
if (profDir) log(`cpu profiles in ${profDir}`);
process.exit(results.some((r) => r.error) ? 1 : 0);
