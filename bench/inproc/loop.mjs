// A closed-loop driver for in-process baselines: `concurrency` async workers call fn() back to back
// for durationS after a warm-up; each call's latency is recorded. Prints nothing itself.
import { latencyStats, processMeter, round } from '../lib/common.mjs';

export async function measure(fn, { concurrency = 1, durationS, warmupS }) {
  const runFor = async (seconds, record) => {
    const end = performance.now() + seconds * 1000;
    const lat = record ? [] : null;
    let errors = 0;
    let sample;
    let i = 0;
    const worker = async () => {
      while (performance.now() < end) {
        const n = i++;
        const t = performance.now();
        try {
          await fn(n);
          lat?.push(performance.now() - t);
        } catch (e) {
          errors++;
          sample ??= String(e?.message ?? e).slice(0, 160);
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { lat, errors, sample, wall: (performance.now() - t0) / 1000 };
  };
  if (warmupS > 0) await runFor(warmupS, false);
  const meter = processMeter(process.pid);
  const r = await runFor(durationS, true);
  const proc = meter.stop();
  return {
    concurrency,
    durationS: round(r.wall, 2),
    requests: r.lat.length + r.errors,
    errors: r.errors,
    errorSample: r.sample,
    throughput: round(r.lat.length / r.wall, 0),
    latencyMs: latencyStats(r.lat),
    process: proc,
  };
}
