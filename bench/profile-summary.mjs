#!/usr/bin/env node
// node bench/profile-summary.mjs <file.cpuprofile> <marker> [top N]
// Self and inclusive time of a service's CPU profile (npm run bench -- --cpu-prof), restricted to the
// window in which <marker> (e.g. "verifyToken dist/apps/auth") is on the stack: the measured case, not
// start-up or the other cases run against the same process. Percentages are of busy (non-idle) time.
import { readFileSync } from 'node:fs';
const [file, marker, N = 60] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const key = (n) => { const cf = n.callFrame; const url = cf.url.replace(/^file:\/\/.*?\/(\.local\/bench\/dist-\d+\/)/, 'dist/').replace(/^file:\/\/\/work\/main\//, '').replace(/.*node_modules\//, 'nm/'); return `${cf.functionName || '(anon)'} ${url}:${cf.lineNumber + 1}`; };
const stackHas = new Map();
const has = (id) => { if (stackHas.has(id)) return stackHas.get(id); let cur = id, r = false; while (cur !== undefined) { if (key(byId.get(cur)).includes(marker)) { r = true; break; } cur = parent.get(cur); } stackHas.set(id, r); return r; };
let t = 0; const times = [];
for (let i = 0; i < prof.samples.length; i++) { t += prof.timeDeltas[i]; times.push(t); }
let first = -1, last = -1;
for (let i = 0; i < prof.samples.length; i++) if (has(prof.samples[i])) { if (first < 0) first = i; last = i; }
if (first < 0) {
  console.error(`no sample has "${marker}" on its stack`);
  process.exit(1);
}
const incl = new Map(), self = new Map(); let total = 0, idle = 0;
for (let i = first; i <= last; i++) {
  const dt = prof.timeDeltas[i + 1] ?? 0; const id = prof.samples[i]; total += dt;
  const k0 = key(byId.get(id)); if (k0.startsWith('(idle)')) idle += dt;
  self.set(k0, (self.get(k0) ?? 0) + dt);
  const seen = new Set(); let cur = id;
  while (cur !== undefined) { const k = key(byId.get(cur)); if (!seen.has(k)) { incl.set(k, (incl.get(k) ?? 0) + dt); seen.add(k); } cur = parent.get(cur); }
}
const busy = total - idle;
console.log(`window ${((times[last] - times[first]) / 1e6).toFixed(1)} s, busy ${(100 * busy / total).toFixed(0)}% (percentages below are of busy time)`);
const pr = (m, title) => { console.log(`== ${title}`); [...m].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]).slice(0, Number(N)).forEach(([k, v]) => console.log(`${(100 * v / busy).toFixed(1).padStart(5)}%  ${k}`)); };
pr(self, 'self'); pr(incl, 'inclusive');
