import type { Logger } from '@soma/observability';
import { scheduleIntervalMs } from '../domain/policy.js';
import type { RetentionRunner } from '../domain/retention-runner.js';

/**
 * Runs each policy on its `@every` schedule. Replicas may all schedule: the policy's advisory lock
 * lets one run and the others report `skipped`. Shutdown aborts a run between batches; what is left
 * goes on the next run.
 */
export class RetentionScheduler {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly abort = new AbortController();
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(private readonly runner: RetentionRunner, private readonly logger: Logger, private readonly firstRunDelayMs: number) {}

  start(): void {
    for (const policy of this.runner.list()) {
      const every = scheduleIntervalMs(policy.schedule);
      if (every === undefined) continue;
      const tick = () => {
        if (this.abort.signal.aborted) return;
        if (!this.running.has(policy.name)) {
          const run = this.runner
            .runOne(policy, { dryRun: false, trigger: 'schedule', requestedBy: null, signal: this.abort.signal })
            .then(
              (r) => this.logger.info({ policy: r.policy, outcome: r.outcome, reason: r.reason, rows_deleted: r.rowsDeleted, duration_ms: r.durationMs }, 'scheduled retention run finished'),
              (e: unknown) => this.logger.error({ policy: policy.name, err: { type: (e as Error)?.name } }, 'scheduled retention run failed'),
            )
            .finally(() => this.running.delete(policy.name));
          this.running.set(policy.name, run);
        }
        this.arm(tick, every);
      };
      this.arm(tick, Math.min(this.firstRunDelayMs, every));
    }
  }

  private arm(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running.values()]);
  }
}
