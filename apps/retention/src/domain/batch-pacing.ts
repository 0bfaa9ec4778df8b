import { MAX_BATCH_ROWS, type RetentionPolicy } from './policy.js';
import type { DeletionPlan } from './ports.js';

/** A batch over budget shrinks at most to this share of its size in one step (one slow batch may be noise). */
const MAX_SHRINK = 1 / 8;
/** A batch under budget grows at most by this factor in one step (the next rows may be denser). */
const MAX_GROWTH = 2;

/**
 * Size of the next batch and the pause after a batch (ADR 0506). Without a time budget every batch is
 * `batchSize` rows and the pause is `pauseMs` (fixed pacing). With one, the next batch is the last one
 * scaled by budget / duration (within [1/8, 2] per step), in the plan's unit: rows along the index,
 * pages over the table; a batch never covers more than MAX_BATCH_ROWS rows (pages: that many rows at
 * the table's average density). The pause is `pauseMs` plus `pausePercent` of the batch's duration, so
 * deleting takes a fixed share of the time however long a batch takes.
 */
export class BatchPacer {
  private current: number;
  private readonly max: number;

  constructor(private readonly policy: RetentionPolicy, plan: DeletionPlan) {
    if (plan.walk === 'pages') {
      const perPage = Math.max(plan.rowsPerPage, 1);
      this.max = Math.max(1, Math.ceil(MAX_BATCH_ROWS / perPage));
      this.current = Math.min(this.max, Math.max(1, Math.ceil(policy.batchSize / perPage)));
    } else {
      this.max = MAX_BATCH_ROWS;
      this.current = policy.batchSize;
    }
  }

  /** Rows (index walk) or pages (page walk) of the next batch. */
  get size(): number {
    return this.current;
  }

  /** Record that the last batch took `durationMs`; returns the pause before the next one. */
  done(durationMs: number): number {
    const target = this.policy.batchTargetMs;
    if (target > 0) {
      const factor = Math.min(MAX_GROWTH, Math.max(MAX_SHRINK, target / Math.max(durationMs, 1)));
      this.current = Math.min(this.max, Math.max(1, Math.round(this.current * factor)));
    }
    return this.policy.pauseMs + Math.round((Math.max(durationMs, 0) * this.policy.pausePercent) / 100);
  }
}
