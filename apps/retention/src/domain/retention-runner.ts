import { authorizeGlobal } from './access.js';
import { BatchPacer } from './batch-pacing.js';
import { cutoffOf, type RetentionPolicy } from './policy.js';
import { RetentionError, RetentionErrorCode } from './retention.errors.js';
import type { BatchRequest, Caller, Clock, DeletionPlan, RetentionEvents, RetentionMetrics, RetentionStore } from './ports.js';

export type RunOutcome = 'success' | 'partial' | 'skipped' | 'error';

export interface PolicyRunResult {
  policy: string;
  table: string;
  mode: RetentionPolicy['mode'];
  cutoff: string;
  dryRun: boolean;
  rowsExpired: number;
  rowsDeleted: number;
  batches: number;
  partitionsDropped: string[];
  outcome: RunOutcome;
  reason: string;
  durationMs: number;
}

export interface RunOptions {
  dryRun: boolean;
  /** `api` (RunPolicy), `schedule` or `cli`; recorded in the event. */
  trigger: string;
  /** Who asked (sub), for the event; null for the scheduler. */
  requestedBy: string | null;
  /** Aborts between batches (service shutdown); the run ends `partial` and continues next time. */
  signal?: AbortSignal;
}

/** What a failed run reports: the error's class and code, never SQL or row data. */
function safeReason(e: unknown): string {
  if (e instanceof RetentionError) return e.code.toLowerCase();
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,10}$/.test(code) ? `database_error_${code}` : 'internal_error';
}

/**
 * Runs retention policies. Deletion goes in bounded batches (each its own short transaction) with
 * a pause between them, so the platform's own writers and readers keep going (sizes and pauses:
 * BatchPacer, fixed or to a time budget); a run stops between
 * batches when its time budget is spent or the service shuts down, and the next run continues where
 * it stopped (the cutoff predicate is the only state). One run per policy at a time, cluster-wide.
 */
export class RetentionRunner {
  /** Aborted by `stop()` (service shutdown): every run in progress, scheduled or requested, ends between batches. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly policies: readonly RetentionPolicy[],
    private readonly store: RetentionStore,
    private readonly events: RetentionEvents,
    private readonly metrics: RetentionMetrics,
    private readonly clock: Clock,
  ) {}

  /** Service shutdown: runs in progress stop after their current batch (`partial`/`stopped`), new ones do nothing. */
  stop(): void {
    this.stopping.abort();
  }

  private withStop(options: RunOptions): RunOptions {
    const signal = options.signal ? AbortSignal.any([options.signal, this.stopping.signal]) : this.stopping.signal;
    return { ...options, signal };
  }

  list(): readonly RetentionPolicy[] {
    return this.policies;
  }

  policy(name: string): RetentionPolicy {
    const found = this.policies.find((p) => p.name === name);
    if (!found) throw new RetentionError(RetentionErrorCode.UnknownPolicy, 'no such retention policy', { policy: name });
    return found;
  }

  /**
   * `RunPolicy` on behalf of a caller: only a `*` principal with retention:admin. A refused attempt to run
   * deletions is itself a security event (`retention_run`, outcome `denied`, in the caller's tenant).
   */
  async runAs(caller: Caller, name: string | undefined, options: Omit<RunOptions, 'requestedBy'>): Promise<PolicyRunResult[]> {
    try {
      authorizeGlobal(caller, 'retention:admin');
    } catch (e) {
      try {
        this.events.publish({
          type: 'retention_run',
          tenant: caller.tenant,
          action: options.dryRun ? 'retention_dry_run' : 'retention_run',
          resource: name ? `policy:${name}` : 'policy:*',
          outcome: 'denied',
          reason: 'permission_denied',
          actor: { user_id: null },
          details: { requested_by: `${caller.tenant}/${caller.sub}`, policy: name ?? null, dry_run: options.dryRun, trigger: options.trigger },
        });
      } catch {
        // the refusal stands either way
      }
      throw e;
    }
    return this.run(name, { ...options, requestedBy: `${caller.tenant}/${caller.sub}` });
  }

  /** One policy by name, or every policy in configured order (a failing one does not stop the others). */
  async run(name: string | undefined, options: RunOptions): Promise<PolicyRunResult[]> {
    const selected = name ? [this.policy(name)] : [...this.policies];
    options = this.withStop(options);
    const results: PolicyRunResult[] = [];
    for (const p of selected) {
      if (options.signal?.aborted) break;
      results.push(await this.runOne(p, options));
    }
    return results;
  }

  async runOne(policy: RetentionPolicy, options: RunOptions): Promise<PolicyRunResult> {
    options = this.withStop(options);
    const started = this.clock.now();
    const cutoff = cutoffOf(policy, started);
    const result: PolicyRunResult = {
      policy: policy.name,
      table: policy.table,
      mode: policy.mode,
      cutoff: cutoff.toISOString(),
      dryRun: options.dryRun,
      rowsExpired: 0,
      rowsDeleted: 0,
      batches: 0,
      partitionsDropped: [],
      outcome: 'success',
      reason: '',
      durationMs: 0,
    };
    // Fail closed: a run that could not be audited does not delete anything.
    const unavailable = this.events.unavailableReason();
    if (unavailable) {
      result.outcome = 'error';
      result.reason = 'audit_unavailable';
      result.durationMs = this.clock.now().getTime() - started.getTime();
      this.metrics.run(policy.name, result.outcome, result.durationMs / 1000, options.dryRun);
      return result;
    }
    try {
      const locked = await this.store.withPolicyLock(policy, () =>
        policy.mode === 'drop_partitions' ? this.dropPartitions(policy, cutoff, options, result) : this.deleteBatches(policy, cutoff, options, result, started),
      );
      if (!locked.acquired) {
        result.outcome = 'skipped';
        result.reason = 'policy_busy';
      }
    } catch (e) {
      result.outcome = 'error';
      result.reason = safeReason(e);
    }
    result.durationMs = this.clock.now().getTime() - started.getTime();
    this.metrics.run(policy.name, result.outcome, result.durationMs / 1000, options.dryRun);
    this.publish(result, options);
    return result;
  }

  private async deleteBatches(policy: RetentionPolicy, cutoff: Date, options: RunOptions, result: PolicyRunResult, started: Date): Promise<void> {
    result.rowsExpired = await this.store.countExpired(policy, cutoff);
    if (options.dryRun || result.rowsExpired === 0) return;
    const deadline = started.getTime() + policy.maxRunSeconds * 1000;
    // Fixed pacing keeps its exact meaning (batches of batch_size rows, oldest first); a time budget lets
    // the store pick the cheaper walk for this run.
    const plan: DeletionPlan = policy.batchTargetMs > 0 ? await this.store.planDeletion(policy, cutoff, result.rowsExpired) : { walk: 'index' };
    const pacer = new BatchPacer(policy, plan);
    const endPage = plan.walk === 'pages' ? plan.pages : 0;
    let after: string | null = null;
    let page = 0;
    for (;;) {
      if (options.signal?.aborted) return this.stopEarly(result, 'stopped');
      if (this.clock.now().getTime() >= deadline) return this.stopEarly(result, 'time_budget');
      const request: BatchRequest =
        plan.walk === 'pages' ? { walk: 'pages', fromPage: page, toPage: Math.min(plan.pages, page + pacer.size) } : { walk: 'index', rows: pacer.size, after };
      const t0 = this.clock.now().getTime();
      const batch = await this.store.deleteExpiredBatch(policy, cutoff, request);
      const durationMs = this.clock.now().getTime() - t0;
      this.metrics.batch(policy.name, durationMs / 1000);
      if (batch.deleted > 0) {
        result.batches += 1;
        result.rowsDeleted += batch.deleted;
        this.metrics.rowsDeleted(policy.name, policy.table, batch.deleted);
      }
      if (request.walk === 'pages') {
        page = request.toPage;
        // Past the pages the table had at the start (later rows are new), or every row counted at the
        // start is gone: a table whose old rows lie at its front is not read to its end.
        if (page >= endPage || result.rowsDeleted >= result.rowsExpired) return;
      } else {
        // A short batch means the expired rows ran out (rows locked by the platform are skipped and
        // picked up by the next run); one more query would only confirm it.
        if (batch.deleted < request.rows) return;
        after = batch.after;
      }
      const pauseMs = pacer.done(durationMs);
      if (pauseMs > 0) await this.clock.sleep(pauseMs, options.signal);
    }
  }

  private stopEarly(result: PolicyRunResult, reason: string): void {
    result.outcome = 'partial';
    result.reason = reason;
  }

  private async dropPartitions(policy: RetentionPolicy, cutoff: Date, options: RunOptions, result: PolicyRunResult): Promise<void> {
    const expired = await this.store.expiredPartitions(policy, cutoff);
    result.rowsExpired = expired.reduce((n, p) => n + p.rows, 0);
    if (options.dryRun) {
      result.partitionsDropped = expired.map((p) => p.name);
      return;
    }
    result.partitionsDropped = await this.store.dropExpiredPartitions(policy, cutoff);
    const dropped = new Set(result.partitionsDropped);
    result.rowsDeleted = expired.filter((p) => dropped.has(p.name)).reduce((n, p) => n + p.rows, 0);
    result.batches = result.partitionsDropped.length;
    if (result.rowsDeleted > 0) this.metrics.rowsDeleted(policy.name, policy.table, result.rowsDeleted);
  }

  private publish(result: PolicyRunResult, options: RunOptions): void {
    try {
      this.events.publish({
        type: 'retention_run',
        tenant: '*',
        action: options.dryRun ? 'retention_dry_run' : 'retention_run',
        resource: `table:${result.table}`,
        outcome: result.outcome === 'error' ? 'error' : result.outcome === 'skipped' ? 'failure' : 'success',
        reason: result.reason || null,
        actor: { user_id: null },
        details: {
          policy: result.policy,
          table: result.table,
          mode: result.mode,
          dry_run: result.dryRun,
          cutoff: result.cutoff,
          rows_expired: result.rowsExpired,
          rows_deleted: result.rowsDeleted,
          batches: result.batches,
          partitions_dropped: result.partitionsDropped,
          run_outcome: result.outcome,
          duration_ms: result.durationMs,
          trigger: options.trigger,
          requested_by: options.requestedBy,
        },
      });
    } catch {
      // The deletion already happened; the outbox refusing now is visible in its own metrics and
      // readiness, and the next run checks availability before deleting anything.
      if (result.outcome === 'success') result.reason = 'event_not_buffered';
    }
  }
}
