import { describe, expect, it } from 'vitest';
import { parsePolicies, type RetentionPolicy } from './policy.js';
import type { RetentionStore } from './ports.js';
import { RetentionRunner } from './retention-runner.js';
import { FakeClock, FakeEvents, FakeMetrics } from './testing-fakes.js';

/** An in-memory table: timestamps in ms; batches delete the oldest first like the SQL does. */
class MemoryStore implements RetentionStore {
  locked = new Set<string>();
  batches = 0;
  failAfter = Infinity;
  partitions: Array<{ name: string; upper: number; rows: number }> = [];
  constructor(public rows: number[]) {}
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
  async deleteExpiredBatch(p: RetentionPolicy, cutoff: Date) {
    if (++this.batches > this.failAfter) throw Object.assign(new Error('connection terminated: SELECT secret FROM x'), { code: '57P01' });
    const expired = this.rows.filter((t) => t < cutoff.getTime()).sort((a, b) => a - b).slice(0, p.batchSize);
    const gone = new Set(expired);
    const before = this.rows.length;
    this.rows = this.rows.filter((t) => !gone.has(t));
    return before - this.rows.length;
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
    store.deleteExpiredBatch = async (p, c) => {
      const n = await orig(p, c);
      ac.abort();
      return n;
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
    store.deleteExpiredBatch = async (p, c) => {
      const n = await orig(p, c);
      runner.stop();
      return n;
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
