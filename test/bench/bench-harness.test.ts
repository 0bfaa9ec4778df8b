/**
 * The benchmark harness works end to end (`npm run bench -- --quick` on two cases): real auth service
 * processes, ghz, the in-process jose baseline and redis-benchmark. Numbers are not judged here
 * (benchmarks are not tests); only that every result carries the fields the report promises.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/infra.js';

const run = promisify(execFile);
const out = mkdtempSync(join(tmpdir(), 'soma-bench-test-'));

interface RunResult {
  tool: string;
  throughput: number;
  errors: number;
  latencyMs: { p50: number | null; p99: number | null; p999: number | null };
  process?: { cpuPercent: number | null; peakRssMb: number | null };
}
interface CaseResult {
  id: string;
  error?: string;
  path: string;
  goal: { text: string; baseline: string; min: number };
  target: RunResult;
  baselines: Record<string, RunResult>;
  ratios: Record<string, number | null>;
  met: boolean;
}

let doc: { mode: string; cores: Record<string, string>; results: CaseResult[] };

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, '.local/bin/ghz'))) await run(join(REPO_ROOT, 'infra/local/install'), ['ghz'], { cwd: REPO_ROOT, timeout: 600_000 });
  if (!existsSync(join(REPO_ROOT, 'dist/apps/auth/src/main.js'))) await run('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, timeout: 600_000 });
  await run(process.execPath, ['bench/run.mjs', '--quick', '--duration', '2', '--warmup', '1', '--only', 'verify-token-hs256,verify-api-key', '--out', out], { cwd: REPO_ROOT, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  doc = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
}, 900_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Fields only: on a machine shared with other test runs a 2-second run may complete few calls (or none). */
function expectRun(r: RunResult | undefined, withProcess: boolean) {
  expect(r).toBeDefined();
  expect(typeof r!.tool).toBe('string');
  expect(typeof r!.throughput).toBe('number');
  expect(typeof r!.errors).toBe('number');
  expect(r!.latencyMs).toHaveProperty('p50');
  expect(r!.latencyMs).toHaveProperty('p99');
  expect(r!.latencyMs).toHaveProperty('p999');
  if (withProcess) {
    expect(typeof r!.process?.cpuPercent).toBe('number');
    expect(r!.process?.peakRssMb).toBeGreaterThan(0);
  }
}

describe('npm run bench -- --quick', () => {
  it('measures each selected case beside its baselines, with ratios and a verdict', () => {
    expect(doc.mode).toBe('quick');
    expect(doc.cores['service']).toContain('core');
    expect(doc.results.map((r) => r.id)).toEqual(['verify-token-hs256', 'verify-api-key']);
    for (const r of doc.results) {
      expect(r.error).toBeUndefined();
      expectRun(r.target, true);
      expectRun(r.baselines['empty-call'], true);
      expect(Object.keys(r.ratios)).toEqual(Object.keys(r.baselines));
      expect(r.ratios).toHaveProperty(r.goal.baseline);
      expect(r.goal.min).toBeGreaterThan(0);
      expect(typeof r.met).toBe('boolean');
    }
    expectRun(doc.results[0]!.baselines['jose-in-process'], true);
    expectRun(doc.results[1]!.baselines['redis-benchmark-get'], false);
  });

  it('writes the Markdown table beside the JSON', () => {
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    expect(md).toContain('| AuthService.VerifyToken HS256 |');
    expect(md).toContain('| AuthService.VerifyApiKey |');
    expect(md).toMatch(/p99\.9/);
  });
});
