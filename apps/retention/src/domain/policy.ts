/**
 * Retention policies: which table loses rows older than how long, and how gently. Table and column
 * names reach SQL only from here, validated as plain lower-case identifiers (and quoted again by the
 * store): a policy can never smuggle SQL.
 */
export type PolicyMode = 'batch_delete' | 'drop_partitions';

export interface RetentionPolicy {
  name: string;
  table: string;
  timestampColumn: string;
  keyColumn: string;
  maxAgeDays: number;
  /** Rows per batch; with a time budget (`batchTargetMs` > 0) only the first batch's size. */
  batchSize: number;
  /**
   * Time budget of one batch in ms; 0 = fixed batches of `batchSize` rows. With a budget each batch is
   * sized from the previous one's duration (grow while under, shrink when over), so a batch stays short
   * on a busy database and large on an idle one (ADR 0506).
   */
  batchTargetMs: number;
  /** Fixed pause after each batch. */
  pauseMs: number;
  /**
   * Pause after each batch proportional to that batch's own duration (percent of it), on top of
   * `pauseMs`: the deleting share of the time (duty cycle) stays the same whatever a batch costs.
   */
  pausePercent: number;
  /** `@every <n>(s|m|h|d)` or `off`. */
  schedule: string;
  mode: PolicyMode;
  maxRunSeconds: number;
}

/** Thrown for a policy list that cannot be used; the message names the field, never SQL. */
export class PolicyConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyConfigError';
  }
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const SCHEDULE = /^@every (\d{1,6})(s|m|h|d)$/;

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER.test(value);
}

/** Most rows one batch may delete (the upper bound of `batch_size`, and of a time-budgeted batch). */
export const MAX_BATCH_ROWS = 100_000;

/** The fields that say how hard a batch_delete run presses on the database. */
export type Pacing = Pick<RetentionPolicy, 'batchSize' | 'batchTargetMs' | 'pauseMs' | 'pausePercent'>;

/** Pacing of the seed's batch_delete policies and of entries that use the new pacing fields (ADR 0506). */
export const BUDGET_PACING: Readonly<Pacing> = Object.freeze({ batchSize: 5000, batchTargetMs: 100, pauseMs: 0, pausePercent: 5 });
/** Pacing of entries written for the fixed pacing (they set `batch_size` or `pause_ms`, no new field): unchanged. */
export const FIXED_PACING: Readonly<Pacing> = Object.freeze({ batchSize: 5000, batchTargetMs: 0, pauseMs: 50, pausePercent: 0 });

/** The seed's defaults: platform tables 90 days, the audit log 365 days by whole monthly partitions. */
export const DEFAULT_POLICIES: readonly RetentionPolicy[] = Object.freeze([
  { name: 'sessions', table: 'sessions', timestampColumn: 'created_at', keyColumn: 'id', maxAgeDays: 90, ...BUDGET_PACING, schedule: '@every 1h', mode: 'batch_delete', maxRunSeconds: 900 },
  { name: 'messages', table: 'messages', timestampColumn: 'created_at', keyColumn: 'id', maxAgeDays: 90, ...BUDGET_PACING, schedule: '@every 1h', mode: 'batch_delete', maxRunSeconds: 900 },
  { name: 'session_events', table: 'session_events', timestampColumn: 'occurred_at', keyColumn: 'id', maxAgeDays: 90, ...BUDGET_PACING, schedule: '@every 1h', mode: 'batch_delete', maxRunSeconds: 900 },
  { name: 'audit_log', table: 'audit_log', timestampColumn: 'timestamp', keyColumn: 'id', maxAgeDays: 365, batchSize: 1, batchTargetMs: 0, pauseMs: 0, pausePercent: 0, schedule: '@every 1d', mode: 'drop_partitions', maxRunSeconds: 900 },
]);

/** Milliseconds between scheduled runs, or undefined for `off`. */
export function scheduleIntervalMs(schedule: string): number | undefined {
  if (schedule === 'off') return undefined;
  const m = SCHEDULE.exec(schedule);
  if (!m) throw new PolicyConfigError(`schedule must be "@every <n>(s|m|h|d)" or "off"`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit;
  if (ms < 10_000) throw new PolicyConfigError('schedule interval must be at least 10s');
  return ms;
}

/** Rows with a timestamp strictly before this instant are expired. */
export function cutoffOf(policy: RetentionPolicy, now: Date): Date {
  return new Date(now.getTime() - policy.maxAgeDays * 86_400_000);
}

function intIn(raw: Record<string, unknown>, field: string, fallback: number, min: number, max: number, where: string): number {
  const v = raw[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new PolicyConfigError(`${where}.${field} must be an integer between ${min} and ${max}`);
  }
  return v;
}

const KNOWN_FIELDS = new Set(['name', 'table', 'timestamp_column', 'key_column', 'max_age_days', 'batch_size', 'batch_target_ms', 'pause_ms', 'pause_percent', 'schedule', 'mode', 'max_run_seconds']);

/**
 * Where an entry's missing pacing fields come from. An entry that names a pacing field of the time-budget
 * pacing (`batch_target_ms`, `pause_percent`) gets the others from BUDGET_PACING; one that names only the
 * older fields (`batch_size`, `pause_ms`) was written for fixed batches and keeps exactly that meaning
 * (FIXED_PACING: no budget, no proportional pause, 50 ms pause unless it says otherwise); one that names
 * none takes the same-named seed default, else BUDGET_PACING.
 */
function pacingBase(raw: Record<string, unknown>, base: RetentionPolicy | undefined): Readonly<Pacing> {
  if ('batch_target_ms' in raw || 'pause_percent' in raw) return BUDGET_PACING;
  if ('batch_size' in raw || 'pause_ms' in raw) return FIXED_PACING;
  return base ?? BUDGET_PACING;
}

/**
 * Parse the policy list (JSON array of objects with snake_case fields, see the README). Missing
 * optional fields take the defaults of the policy with the same name, else generic defaults.
 * Everything is validated; an unknown field is an error (a typo must not silently keep data forever).
 */
export function parsePolicies(json: string | undefined, overrides: { auditLogMaxAgeDays?: number } = {}): RetentionPolicy[] {
  let list: RetentionPolicy[];
  if (json === undefined || json.trim() === '') {
    list = DEFAULT_POLICIES.map((p) => ({ ...p }));
  } else {
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      throw new PolicyConfigError('policies are not valid JSON');
    }
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64) throw new PolicyConfigError('policies must be a JSON array of 1 to 64 objects');
    list = raw.map((entry, i) => parseOne(entry, `policies[${i}]`));
  }
  if (overrides.auditLogMaxAgeDays !== undefined) {
    for (const p of list) if (p.mode === 'drop_partitions' && p.table === 'audit_log') p.maxAgeDays = overrides.auditLogMaxAgeDays;
  }
  const names = new Set<string>();
  for (const p of list) {
    if (names.has(p.name)) throw new PolicyConfigError(`two policies are named ${p.name}`);
    names.add(p.name);
  }
  return list;
}

function parseOne(entry: unknown, where: string): RetentionPolicy {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new PolicyConfigError(`${where} must be an object`);
  const raw = entry as Record<string, unknown>;
  for (const k of Object.keys(raw)) if (!KNOWN_FIELDS.has(k)) throw new PolicyConfigError(`${where} has an unknown field ${JSON.stringify(k).slice(0, 70)}`);
  const table = raw['table'];
  if (!isIdentifier(table)) throw new PolicyConfigError(`${where}.table must be a lower-case SQL identifier`);
  const name = raw['name'] ?? table;
  if (typeof name !== 'string' || !NAME.test(name)) throw new PolicyConfigError(`${where}.name must match ${NAME.source}`);
  const base = DEFAULT_POLICIES.find((p) => p.name === name) ?? DEFAULT_POLICIES.find((p) => p.table === table);
  const mode = raw['mode'] ?? base?.mode ?? 'batch_delete';
  if (mode !== 'batch_delete' && mode !== 'drop_partitions') throw new PolicyConfigError(`${where}.mode must be batch_delete or drop_partitions`);
  const timestampColumn = raw['timestamp_column'] ?? base?.timestampColumn ?? 'created_at';
  if (!isIdentifier(timestampColumn)) throw new PolicyConfigError(`${where}.timestamp_column must be a lower-case SQL identifier`);
  const keyColumn = raw['key_column'] ?? base?.keyColumn ?? 'id';
  if (!isIdentifier(keyColumn)) throw new PolicyConfigError(`${where}.key_column must be a lower-case SQL identifier`);
  if (keyColumn === timestampColumn && mode === 'batch_delete') throw new PolicyConfigError(`${where}.key_column must differ from timestamp_column`);
  const schedule = raw['schedule'] ?? base?.schedule ?? '@every 1h';
  if (typeof schedule !== 'string') throw new PolicyConfigError(`${where}.schedule must be a string`);
  try {
    scheduleIntervalMs(schedule);
  } catch (e) {
    throw new PolicyConfigError(`${where}.${(e as Error).message}`);
  }
  const pacing = pacingBase(raw, base);
  return {
    name,
    table,
    timestampColumn,
    keyColumn,
    mode,
    schedule,
    maxAgeDays: intIn(raw, 'max_age_days', base?.maxAgeDays ?? 90, 1, 36_500, where),
    batchSize: intIn(raw, 'batch_size', pacing.batchSize, 1, MAX_BATCH_ROWS, where),
    batchTargetMs: intIn(raw, 'batch_target_ms', pacing.batchTargetMs, 0, 60_000, where),
    pauseMs: intIn(raw, 'pause_ms', pacing.pauseMs, 0, 60_000, where),
    pausePercent: intIn(raw, 'pause_percent', pacing.pausePercent, 0, 10_000, where),
    maxRunSeconds: intIn(raw, 'max_run_seconds', base?.maxRunSeconds ?? 900, 1, 86_400, where),
  };
}
