import { describe, expect, it } from 'vitest';
import { cutoffOf, DEFAULT_POLICIES, parsePolicies, PolicyConfigError, scheduleIntervalMs } from './policy.js';

describe('retention policies', () => {
  it('defaults to the seed: platform tables 90 days, audit_log 365 days by partitions', () => {
    const p = parsePolicies(undefined);
    expect(p.map((x) => [x.name, x.table, x.timestampColumn, x.maxAgeDays, x.mode])).toEqual([
      ['sessions', 'sessions', 'created_at', 90, 'batch_delete'],
      ['messages', 'messages', 'created_at', 90, 'batch_delete'],
      ['session_events', 'session_events', 'occurred_at', 90, 'batch_delete'],
      ['audit_log', 'audit_log', 'timestamp', 365, 'drop_partitions'],
    ]);
  });

  it('applies the audit-log age override', () => {
    expect(parsePolicies('', { auditLogMaxAgeDays: 400 }).find((p) => p.table === 'audit_log')?.maxAgeDays).toBe(400);
  });

  it('fills missing fields from the same-named default', () => {
    const [p] = parsePolicies('[{"table":"session_events","max_age_days":30,"batch_size":100}]');
    expect(p).toMatchObject({ name: 'session_events', timestampColumn: 'occurred_at', keyColumn: 'id', maxAgeDays: 30, batchSize: 100, pauseMs: 50, batchTargetMs: 0, pausePercent: 0 });
  });

  it('paces the seed policies by a time budget; entries written for fixed batches keep them', () => {
    const byName = (json: string | undefined) => Object.fromEntries(parsePolicies(json).map((p) => [p.name, [p.batchSize, p.batchTargetMs, p.pauseMs, p.pausePercent]]));
    expect(byName(undefined)).toMatchObject({ sessions: [5000, 100, 0, 5], messages: [5000, 100, 0, 5], session_events: [5000, 100, 0, 5] });
    expect(
      byName(
        JSON.stringify([
          { table: 'messages' }, // nothing about pacing: the seed default of the same name
          { table: 'chat_logs' }, // nothing, no seed default: the time budget too
          { name: 'a', table: 'sessions', batch_size: 200 }, // older fields only: fixed batches, 50 ms pause, as before
          { name: 'b', table: 'sessions', pause_ms: 5 },
          { name: 'c', table: 'sessions', batch_target_ms: 250 }, // a new field: the rest of the time-budget pacing
          { name: 'd', table: 'sessions', batch_size: 300, pause_ms: 20, pause_percent: 50 },
          { name: 'e', table: 'sessions', batch_target_ms: 0, pause_percent: 0 },
        ]),
      ),
    ).toEqual({ messages: [5000, 100, 0, 5], chat_logs: [5000, 100, 0, 5], a: [200, 0, 50, 0], b: [5000, 0, 5, 0], c: [5000, 250, 0, 5], d: [300, 100, 20, 50], e: [5000, 0, 0, 0] });
  });

  it.each([
    ['not json', 'not valid JSON'],
    ['{}', 'JSON array'],
    ['[]', 'JSON array'],
    ['[{"table":"x; DROP TABLE y"}]', 'table must be'],
    ['[{"table":"Sessions"}]', 'table must be'],
    ['[{"table":"t","timestamp_column":"a\\"b"}]', 'timestamp_column'],
    ['[{"table":"t","key_column":"id--"}]', 'key_column'],
    ['[{"table":"t","max_age_days":0}]', 'max_age_days'],
    ['[{"table":"t","batch_size":1000000}]', 'batch_size'],
    ['[{"table":"t","batch_target_ms":-1}]', 'batch_target_ms'],
    ['[{"table":"t","batch_target_ms":1.5}]', 'batch_target_ms'],
    ['[{"table":"t","pause_percent":10001}]', 'pause_percent'],
    ['[{"table":"t","schedule":"* * * * *"}]', 'schedule'],
    ['[{"table":"t","mode":"truncate"}]', 'mode'],
    ['[{"table":"t","maxAgeDays":3}]', 'unknown field'],
    ['[{"table":"t"},{"table":"t"}]', 'two policies'],
  ])('refuses %s', (json, message) => {
    expect(() => parsePolicies(json)).toThrow(PolicyConfigError);
    expect(() => parsePolicies(json)).toThrow(message);
  });

  it('parses schedules', () => {
    expect(scheduleIntervalMs('@every 1h')).toBe(3_600_000);
    expect(scheduleIntervalMs('@every 2d')).toBe(172_800_000);
    expect(scheduleIntervalMs('off')).toBeUndefined();
    expect(() => scheduleIntervalMs('@every 1s')).toThrow('at least 10s');
  });

  it('computes the cutoff from max age', () => {
    const now = new Date('2026-12-04T00:00:00Z');
    expect(cutoffOf(DEFAULT_POLICIES[0]!, now).toISOString()).toBe('2026-09-05T00:00:00.000Z');
  });
});
