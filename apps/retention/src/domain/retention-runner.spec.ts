import { describe, expect, it } from 'vitest';
import { parsePolicies, type RetentionPolicy } from './policy.js';
import type { BatchRequest, BatchResult, DeletionPlan, RetentionStore } from './ports.js';
import { RetentionRunner } from './retention-runner.js';
import { FakeClock, FakeEvents, FakeMetrics } from './testing-fakes.js';

/**
 * An in-memory table: `slots` in physical order (`perPage` rows a page, null = deleted), timestamps in ms.
 * Index batches delete the oldest first like the SQL does; page batches every expired row of their pages.
 * With a clock, a batch takes `msPerRow` per row it deletes plus `msPerPage` per page it reads.
 */
class MemoryStore implements RetentionStore {
  locked = new Set<string>();
  batches = 0;
  failAfter = Infinity;
  partitions: Array<{ name: string; upper: number; rows: number }> = [];
  slots: Array<number | null>;
  plan: DeletionPlan = { walk: 'index' };
  requests: BatchRequest[] = [];
  clock?: FakeClock;
  msPerRow = 0;
  msPerPage = 0;
  constructor(rows: number[], readonly perPage = 4) {
    this.slots = [...rows];
  }
  get rows(): number[] {
    return this.slots.filter((t): t is number => t !== null);
  }
  async withPolicyLock<T>(policy: RetentionPolicy, work: () => Promise<T>) {
    if (this.locked.has(policy.name)) return { acquired: false as const };
    this.locked.add(policy.name);
    try {
      return { acquired: true as const, value: await work() };
    } finally {
      this.locked.delete(policy.name);
    }
  }
  async countExpired(_p: RetentionPolicy, cutoff: Date) {
    return this.rows.filter((t) => t < cutoff.getTime()).length;
  }
  async planDeletion(): Promise<DeletionPlan> {
    return this.plan;
  }
  async deleteExpiredBatch(_p: RetentionPolicy, cutoff: Date, batch: BatchRequest): Promise<BatchResult> {
    if (++this.batches > this.failAfter) throw Object.assign(new Error('connection terminated: SELECT secret FROM x'), { code: '57P01' });
    this.requests.push(batch);
    let picked: number[];
    if (batch.walk === 'pages') {
      picked = [];
      for (let i = batch.fromPage * this.perPage; i < Math.min(batch.toPage * this.perPage, this.slots.length); i++) {
        const t = this.slots[i];
        if (t !== null && t !== undefined && t < cutoff.getTime()) picked.push(i);
      }
      if (this.clock) this.clock.t += (batch.toPage - batch.fromPage) * this.msPerPage;
    } else {
      const from = batch.after === null ? -Infinity : Number(batch.after);
      picked = this.slots
        .map((t, i) => [t, i] as const)
        .filter((x): x is readonly [number, number] => x[0] !== null && x[0] < cutoff.getTime() && x[0] >= from)
        .sort((a, b) => a[0] - b[0])
        .slice(0, batch.rows)
        .map(([, i]) => i);
    }
    const newest = Math.max(...picked.map((i) => this.slots[i]!));
    for (const i of picked) this.slots[i] = null;
    if (this.clock) this.clock.t += picked.length * this.msPerRow;
    return { deleted: picked.length, after: batch.walk === 'index' && picked.length > 0 ? String(newest) : batch.walk === 'index' ? batch.after : null };
  }
  async expiredPartitions(_p: RetentionPolicy, cutoff: Date) {
    return this.partitions.filter((x) => x.upper <= cutoff.getTime()).map(({ name, rows }) => ({ name, rows }));
  }
  async dropExpiredPartitions(_p: RetentionPolicy, cutoff: Date) {
    const gone = this.partitions.filter((x) => x.upper <= cutoff.getTime());
    this.partitions = this.partitions.filter((x) => x.upper > cutoff.getTime());
    return gone.map((x) => x.name);
  }
}

const DAY = 86_400_000;
const policies = parsePolicies('[{"table":"sessions","max_age_days":90,"batch_size":10,"pause_ms":5},{"name":"audit","table":"audit_log","mode":"drop_partitions","max_age_days":365}]');

function setup(rows: number[]) {
  const clock = new FakeClock();
  const store = new MemoryStore(rows);
  const events = new FakeEvents();
  const metrics = new FakeMetrics();
  return { clock, store, events, metrics, runner: new RetentionRunner(policies, store, events, metrics, clock) };
}

describe('RetentionRunner', () => {
  const now = new Date('2026-12-04T12:00:00Z').getTime();
  const rows = [...Array.from({ length: 35 }, (_, i) => now - 100 * DAY - i), ...Array.from({ length: 20 }, (_, i) => now - DAY - i)];

  it('deletes exactly the expired rows in bounded batches with pauses, and reports it', async () => {
    const { runner, store, events, clock, metrics } = setup(rows);
    const [r] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: 'ops' });
    expect(r).toMatchObject({ outcome: 'success', rowsExpired: 35, rowsDeleted: 35, batches: 4 });
    expect(store.rows).toHaveLength(20);
    expect(clock.slept).toBe(15); // a pause after each full batch
    expect(metrics.deleted.reduce((n, [, x]) => n + x, 0)).toBe(35);
    expect(events.published).toHaveLength(1);
    expect(events.published[0]).toMatchObject({ type: 'retention_run', tenant: '*', outcome: 'success', details: { rows_deleted: 35, dry_run: false, policy: 'sessions' } });
  });

  it('dry-run counts and deletes nothing', async () => {
    const { runner, store, events } = setup(rows);
    const [r] = await runner.run('sessions', { dryRun: true, trigger: 'cli', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsExpired: 35, rowsDeleted: 0, batches: 0, dryRun: true });
    expect(store.rows).toHaveLength(55);
    expect(events.published[0]?.action).toBe('retention_dry_run');
  });

  it('stops between batches when aborted and the next run finishes the job', async () => {
    const { runner, store } = setup(rows);
    const ac = new AbortController();
    const orig = store.deleteExpiredBatch.bind(store);
    store.deleteExpiredBatch = async (...args) => {
      const r = await orig(...args);
      ac.abort();
      return r;
    };
    const [first] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: null, signal: ac.signal });
    expect(first).toMatchObject({ outcome: 'partial', reason: 'stopped', rowsDeleted: 10 });
    store.deleteExpiredBatch = orig;
    const [second] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(second).toMatchObject({ outcome: 'success', rowsDeleted: 25 });
    expect(store.rows).toHaveLength(20);
  });

  it('stop() (shutdown) ends runs in progress between batches, also runs without their own signal', async () => {
    const { runner, store } = setup(rows);
    const orig = store.deleteExpiredBatch.bind(store);
    store.deleteExpiredBatch = async (...args) => {
      const r = await orig(...args);
      runner.stop();
      return r;
    };
    const [r] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: 'ops' });
    expect(r).toMatchObject({ outcome: 'partial', reason: 'stopped', rowsDeleted: 10, batches: 1 });
    expect(store.rows).toHaveLength(45);
  });

  it('runAs: only a * principal with retention:admin; a refusal deletes nothing and is audited as denied', async () => {
    const { runner, store, events } = setup(rows);
    for (const caller of [
      { sub: 'ops', tenant: 'acme', scopes: ['retention:admin'], credentialId: 'k1' },
      { sub: 'dpo', tenant: '*', scopes: ['gdpr:erase'], credentialId: 'k2' },
    ]) {
      await expect(runner.runAs(caller, 'sessions', { dryRun: false, trigger: 'api' })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
    expect(store.rows).toHaveLength(55);
    expect(events.published.map((e) => [e.type, e.tenant, e.outcome, e.reason, e.details['requested_by']])).toEqual([
      ['retention_run', 'acme', 'denied', 'permission_denied', 'acme/ops'],
      ['retention_run', '*', 'denied', 'permission_denied', '*/dpo'],
    ]);
    const [r] = await runner.runAs({ sub: 'ops', tenant: '*', scopes: ['retention:admin'], credentialId: 'k3' }, 'sessions', { dryRun: false, trigger: 'api' });
    expect(r).toMatchObject({ outcome: 'success', rowsDeleted: 35 });
    expect(events.published[2]?.details['requested_by']).toBe('*/ops');
  });

  it('skips a policy whose lock another run holds', async () => {
    const { runner, store } = setup(rows);
    store.locked.add('sessions');
    const [r] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'skipped', reason: 'policy_busy', rowsDeleted: 0 });
    expect(store.rows).toHaveLength(55);
  });

  it('reports a database failure without leaking its message, keeping what was deleted', async () => {
    const { runner, store, events } = setup(rows);
    store.failAfter = 2;
    const [r] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'error', reason: 'database_error_57P01', rowsDeleted: 20 });
    expect(JSON.stringify(events.published)).not.toContain('secret');
    expect(events.published[0]?.outcome).toBe('error');
  });

  it('refuses to delete when events cannot be recorded (fail closed)', async () => {
    const { runner, store, events } = setup(rows);
    events.down = 'buffer full';
    const [r] = await runner.run('sessions', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'error', reason: 'audit_unavailable' });
    expect(store.rows).toHaveLength(55);
  });

  it('drops whole expired partitions and counts their rows', async () => {
    const { runner, store } = setup([]);
    store.partitions = [
      { name: 'audit_log_y2025m10', upper: now - 400 * DAY, rows: 7 },
      { name: 'audit_log_y2025m11', upper: now - 370 * DAY, rows: 3 },
      { name: 'audit_log_y2025m12', upper: now - 360 * DAY, rows: 5 },
    ];
    const [dry] = await runner.run('audit', { dryRun: true, trigger: 'api', requestedBy: null });
    expect(dry).toMatchObject({ rowsExpired: 10, partitionsDropped: ['audit_log_y2025m10', 'audit_log_y2025m11'] });
    expect(store.partitions).toHaveLength(3);
    const [r] = await runner.run('audit', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsDeleted: 10, partitionsDropped: ['audit_log_y2025m10', 'audit_log_y2025m11'] });
    expect(store.partitions.map((p) => p.name)).toEqual(['audit_log_y2025m12']);
  });

  it('runs every policy when none is named, and refuses unknown names', async () => {
    const { runner } = setup(rows);
    expect((await runner.run(undefined, { dryRun: true, trigger: 'api', requestedBy: null })).map((r) => r.policy)).toEqual(['sessions', 'audit']);
    await expect(runner.run('nope', { dryRun: true, trigger: 'api', requestedBy: null })).rejects.toMatchObject({ code: 'UNKNOWN_POLICY' });
  });
});

describe('RetentionRunner with a time budget (batch_target_ms, pause_percent)', () => {
  const now = new Date('2026-12-04T12:00:00Z').getTime();
  const budgeted = parsePolicies(
    '[{"name":"events","table":"session_events","max_age_days":90,"batch_size":1000,"batch_target_ms":100,"pause_percent":10,"max_run_seconds":60},' +
      '{"name":"fixed","table":"sessions","max_age_days":90,"batch_size":10,"pause_ms":5}]',
  );

  function setupBudget(rows: number[], perPage = 100) {
    const clock = new FakeClock();
    const store = new MemoryStore(rows, perPage);
    store.clock = clock;
    const events = new FakeEvents();
    return { clock, store, events, runner: new RetentionRunner(budgeted, store, events, new FakeMetrics(), clock) };
  }
  const expired = (n: number) => Array.from({ length: n }, (_, i) => now - 100 * DAY - i);
  const kept = (n: number) => Array.from({ length: n }, (_, i) => now - DAY - i);
  const sizes = (store: MemoryStore) => store.requests.map((r) => (r.walk === 'index' ? r.rows : r.toPage - r.fromPage));

  it('index walk: batches grow to the time budget and hold there; each continues where the last ended; the pause is a share of the batch', async () => {
    const { runner, store, clock } = setupBudget([...expired(200_000), ...kept(1000)]);
    store.msPerRow = 0.01; // 10,000 rows take the 100 ms budget
    const [r] = await runner.run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsExpired: 200_000, rowsDeleted: 200_000 });
    expect(store.rows).toEqual(kept(1000));
    const s = sizes(store);
    expect(s.slice(0, 4)).toEqual([1000, 2000, 4000, 8000]);
    for (const n of s.slice(5)) {
      expect(n).toBeGreaterThan(9000);
      expect(n).toBeLessThanOrEqual(10_000);
    }
    expect(store.requests.every((q) => q.walk === 'index')).toBe(true);
    // Batch 2 starts at the newest timestamp batch 1 deleted (rows are oldest first).
    expect(store.requests[1]).toMatchObject({ after: String(now - 100 * DAY - 199_000) });
    // 2,000 ms of deleting (plus the fake clock's 1 ms per reading) → about 200 ms of pauses.
    expect(clock.slept).toBeGreaterThanOrEqual(195);
    expect(clock.slept).toBeLessThanOrEqual(215);
  });

  it('index walk: a batch over budget shrinks the next one (at most to 1/8 per step), never below one row', async () => {
    const { runner, store } = setupBudget([...expired(1500), ...kept(10)]);
    store.msPerRow = 1; // 1,000 rows take ten times the budget
    const [r] = await runner.run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsDeleted: 1500 });
    const s = sizes(store);
    expect(s.slice(0, 3)).toEqual([1000, 125, 99]);
    expect(Math.min(...s)).toBeGreaterThanOrEqual(1);
  });

  it('index walk: no batch exceeds 100,000 rows however cheap batches are', async () => {
    const { runner, store } = setupBudget(expired(400_000));
    const [r] = await runner.run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsDeleted: 400_000 });
    expect(Math.max(...sizes(store))).toBe(100_000);
  });

  it('page walk: page ranges in order, exactly the expired rows, and it ends once every counted row is gone', async () => {
    // 40 pages of 100 rows: the first 20 hold expired and kept rows interleaved, the last 20 only kept rows.
    const front = Array.from({ length: 2000 }, (_, i) => (i % 4 === 0 ? now - DAY - i : now - 100 * DAY - i));
    const { runner, store, clock } = setupBudget([...front, ...kept(2000)]);
    store.plan = { walk: 'pages', pages: 40, rowsPerPage: 100 };
    store.msPerRow = 0.2;
    const [r] = await runner.run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsExpired: 1500, rowsDeleted: 1500 });
    expect(store.rows).toEqual([...front.filter((_, i) => i % 4 === 0), ...kept(2000)]);
    const ranges = store.requests.map((q) => (q.walk === 'pages' ? [q.fromPage, q.toPage] : []));
    expect(ranges[0]).toEqual([0, 10]); // batch_size 1000 rows at 100 rows a page
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
    expect(ranges.at(-1)![1]).toBeLessThan(40);
    expect(clock.slept).toBeGreaterThan(0);
  });

  it('page walk: stops at the run time budget and on stop(); a later run deletes exactly the rest', async () => {
    const { runner, store, clock, events } = setupBudget([...expired(50_000), ...kept(500)]);
    store.plan = { walk: 'pages', pages: 505, rowsPerPage: 100 };
    store.msPerRow = 2; // 100,000 ms of deleting against a 60 s budget
    const [first] = await runner.run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(first).toMatchObject({ outcome: 'partial', reason: 'time_budget' });
    expect(first!.rowsDeleted).toBeGreaterThan(0);
    expect(first!.rowsDeleted + store.rows.length).toBe(50_500);

    const orig = store.deleteExpiredBatch.bind(store);
    store.deleteExpiredBatch = async (...args) => {
      const res = await orig(...args);
      runner.stop();
      return res;
    };
    const [second] = await runner.run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(second).toMatchObject({ outcome: 'partial', reason: 'stopped' });
    expect(store.requests.at(-1)).toMatchObject({ walk: 'pages', fromPage: 0 }); // a new run starts at the first page again
    store.deleteExpiredBatch = orig;

    store.msPerRow = 0.01;
    const [third] = await new RetentionRunner(budgeted, store, events, new FakeMetrics(), clock).run('events', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(third).toMatchObject({ outcome: 'success', rowsExpired: 50_000 - first!.rowsDeleted - second!.rowsDeleted });
    expect(store.rows).toEqual(kept(500));
  });

  it('fixed pacing never asks for a plan: batches of batch_size rows along the index, the fixed pause', async () => {
    const { runner, store, clock } = setupBudget([...expired(35), ...kept(20)]);
    store.plan = { walk: 'pages', pages: 1, rowsPerPage: 100 };
    const [r] = await runner.run('fixed', { dryRun: false, trigger: 'api', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsDeleted: 35, batches: 4 });
    expect(store.requests.map((q) => (q.walk === 'index' ? q.rows : -1))).toEqual([10, 10, 10, 10]);
    expect(clock.slept).toBe(15);
  });

  it('dry-run of a time-budgeted policy counts and deletes nothing', async () => {
    const { runner, store } = setupBudget([...expired(35), ...kept(20)]);
    const [r] = await runner.run('events', { dryRun: true, trigger: 'cli', requestedBy: null });
    expect(r).toMatchObject({ outcome: 'success', rowsExpired: 35, rowsDeleted: 0, batches: 0 });
    expect(store.requests).toEqual([]);
  });
});
