// Ratios, goal verdicts and the Markdown table.
import { round } from './common.mjs';

/**
 * Adds ratios (target throughput / baseline throughput, or for batch jobs baseline seconds / target
 * seconds: > 1 means faster than the baseline) and the goal verdict.
 */
export function score(row) {
  // Calls per CPU-second of the process under test: robust to a machine shared with other work
  // (time-slicing lowers throughput but not the CPU a call costs).
  for (const r of [row.target, ...Object.values(row.baselines ?? {})]) {
    if (r && r.process?.cpuSeconds && r.throughput && r.durationS && !r.unit) r.perCpuSecond = round((r.throughput * r.durationS) / r.process.cpuSeconds, 0);
  }
  const perCpuRatios = {};
  for (const [name, b] of Object.entries(row.baselines ?? {})) if (b?.perCpuSecond && row.target?.perCpuSecond) perCpuRatios[name] = round(row.target.perCpuSecond / b.perCpuSecond, 3);
  const ratios = {};
  for (const [name, b] of Object.entries(row.baselines ?? {})) {
    if (row.kind === 'batch') ratios[name] = b?.seconds && row.target?.seconds ? round(b.seconds / row.target.seconds, 3) : null;
    else ratios[name] = b?.throughput && row.target?.throughput !== undefined ? round(row.target.throughput / b.throughput, 3) : null;
  }
  const g = row.goal;
  // The verdict uses calls per CPU-second when both sides are processes we measure (the service against
  // itself or against an in-process loop): on a machine shared with other test runs the wall-clock
  // throughput of either side depends on how much of a core the scheduler gave it at that moment.
  const basis = perCpuRatios[g.baseline] != null ? 'per-cpu-second' : 'throughput';
  const ratio = basis === 'per-cpu-second' ? perCpuRatios[g.baseline] : ratios[g.baseline];
  const checks = [ratio !== null && ratio !== undefined && ratio >= g.min];
  if (g.maxWriterP99Ms !== undefined) checks.push((row.target?.writer?.latencyMs?.p99 ?? Infinity) < g.maxWriterP99Ms);
  if ((row.target?.errors ?? 0) > 0) checks.push(false);
  const met = checks.every(Boolean);
  return { ...row, ratios, perCpuRatios, verdictBasis: basis, met, shortfall: ratio == null || ratio >= g.min ? null : round((1 - ratio / g.min) * 100, 0) };
}

/** Ratios: two decimals, three below 0.1 (0.004× is not 0×). */
const fmtR = (x) => (x === null || x === undefined ? '–' : String(round(x, Math.abs(x) < 0.1 ? 3 : 2)));
const fmt = (x, d = 2) => (x === null || x === undefined ? '–' : typeof x === 'number' ? String(round(x, d)) : String(x));

function line(name, r, ratio) {
  if (!r) return `| ${name} | – | – | – | – | – | – | – | – |`;
  const l = r.latencyMs ?? {};
  const thr = r.throughput !== undefined ? `${fmt(r.throughput, 0)}${r.unit ? ` ${r.unit}` : '/s'}` : '–';
  const p = r.process ?? {};
  return `| ${name} | ${thr} | ${fmt(l.p50, 3)} | ${fmt(l.p99, 3)} | ${fmt(l.p999, 3)} | ${p.cpuPercent != null ? `${fmt(p.cpuPercent, 0)}%` : '–'} | ${fmt(r.perCpuSecond, 0)} | ${p.peakRssMb != null ? `${fmt(p.peakRssMb, 0)} MB` : '–'} | ${ratio ?? ''} |`;
}

export function renderMarkdown(doc) {
  const out = [];
  out.push(`# Soma benchmarks (${doc.mode}, ${doc.startedAt})`, '');
  out.push(`Node ${doc.machine.node}, ${doc.machine.cpus} × ${doc.machine.model}, load average at the end ${doc.machine.loadavg.join(' ')}. ` + `Each case: ${doc.settings.warmupS} s warm-up, ${doc.settings.durationS} s measured, ${doc.settings.concurrency} in flight.`);
  out.push(`Cores: ${doc.cores.service}; ${doc.cores.load}; ${doc.cores.infrastructure}.`, '');
  out.push('| case | goal | throughput ratio to goal baseline | same per CPU-second | verdict (on the ratio in bold) |', '|---|---|---|---|---|');
  for (const r of doc.results) {
    if (r.error) out.push(`| ${r.id} | – | – | – | **error**: ${r.error.split('\n')[0].slice(0, 200)} |`);
    else {
      const errs = r.target?.errors ? `, ${r.target.errors} errors` : '';
      const writer = r.goal.maxWriterP99Ms !== undefined ? `, writer p99 ${fmt(r.target?.writer?.latencyMs?.p99, 1)} ms` : '';
      const perCpu = r.perCpuRatios?.[r.goal.baseline];
      const pc = r.verdictBasis === 'per-cpu-second';
      const b = (x, bold) => (bold ? `**${x}**` : x);
      out.push(`| ${r.path} | ${r.goal.text} | ${b(`${fmtR(r.ratios[r.goal.baseline])}×`, !pc)} ${r.goal.baseline} | ${perCpu != null ? b(`${fmtR(perCpu)}×`, pc) : '–'} | ${r.met ? 'met' : `**missed**${r.shortfall != null ? ` (${r.shortfall}% short)` : ''}`}${errs}${writer} |`);
    }
  }
  out.push('', 'Latency in ms; CPU, calls per CPU-second and peak RSS are of the service process (or the in-process baseline) during the measured window (CPU 100% = one core). Ratio = throughput of the path / throughput of the baseline; in brackets the same per CPU-second of the process, which time-slicing with other work on the machine does not distort. Batch rows: rows/s, ratio = baseline seconds / service seconds.', '');
  for (const r of doc.results) {
    if (r.error) continue;
    out.push(`### ${r.path}`, '');
    if (r.measuredAt) out.push(`Measured ${r.measuredAt}${r.rerun ? ' (re-run)' : ''}; 1-minute load average ${r.loadavg1m?.start} → ${r.loadavg1m?.end} on ${doc.machine.cpus} cores.`, '');
    out.push('| run | throughput | p50 | p99 | p99.9 | CPU | calls per CPU-s | peak RSS | ratio (per CPU-s) |', '|---|---|---|---|---|---|---|---|---|');
    out.push(line(`**${r.path}** (${r.target?.tool ?? ''})`, r.target, ''));
    for (const [name, b] of Object.entries(r.baselines)) out.push(line(`${name} (${b?.tool ?? ''})`, b, `${fmtR(r.ratios[name])}×${r.perCpuRatios?.[name] != null ? ` (${fmtR(r.perCpuRatios[name])}×)` : ''}`));
    if (r.target?.writer) out.push(line('concurrent writer during the service run', r.target.writer, ''));
    for (const [name, b] of Object.entries(r.baselines)) if (b?.writer) out.push(line(`concurrent writer during ${name}`, b.writer, ''));
    for (const n of r.notes ?? []) out.push('', `- ${n}`);
    out.push('');
  }
  return out.join('\n') + '\n';
}
