import type { StoredAuditRow } from '../domain/audit-record.js';

/**
 * The rows ingest committed on this instance, held per chain until the SIEM stream has published them, so the
 * stream need not read back from PostgreSQL what was just written (ADR 0404). A cache, never the truth: the
 * stream asks for the rows right after its committed position and gets them only when this instance holds that
 * exact stretch of the chain; otherwise (after a restart, a rebalance, a gap, or rows dropped at the bound) it
 * reads PostgreSQL as before.
 */
export class CommittedRows {
  /** Per chain: contiguous runs of rows in chain order, oldest first. */
  private readonly runs = new Map<number, Array<readonly StoredAuditRow[]>>();
  private readonly held = new Map<number, number>();

  /** `maxRowsPerChain`: beyond it the oldest runs are dropped (a stream that lags reads them from PostgreSQL). */
  constructor(private readonly maxRowsPerChain: number) {}

  /**
   * Rows just committed on `chain`, in chain order. Usually one transaction's rows, without gaps; rows stored
   * one by one (after the database refused one event's data) may have another writer's rows between them, so
   * they are held as the contiguous runs they form: `take` relies on a run's positions being consecutive.
   */
  add(chain: number, rows: readonly StoredAuditRow[]): void {
    if (rows.length === 0) return;
    const runs = this.runs.get(chain) ?? [];
    if (rows[rows.length - 1]!.chain_seq - rows[0]!.chain_seq === rows.length - 1) {
      runs.push(rows); // not copied: ingest hands over the array it will not touch again
    } else {
      let start = 0;
      for (let i = 1; i <= rows.length; i++) {
        if (i === rows.length || rows[i]!.chain_seq !== rows[i - 1]!.chain_seq + 1) {
          runs.push(rows.slice(start, i));
          start = i;
        }
      }
    }
    let held = (this.held.get(chain) ?? 0) + rows.length;
    while (held > this.maxRowsPerChain && runs.length) held -= runs.shift()!.length;
    this.runs.set(chain, runs);
    this.held.set(chain, held);
  }

  /**
   * Up to `limit` rows of `chain` right after position `afterSeq` (afterSeq + 1, afterSeq + 2, …), or null when
   * this instance does not hold row afterSeq + 1. Rows at or before `afterSeq` are published: they are let go.
   */
  take(chain: number, afterSeq: number, limit: number): StoredAuditRow[] | null {
    const runs = this.runs.get(chain);
    if (!runs) return null;
    let held = this.held.get(chain)!;
    while (runs.length && runs[0]![runs[0]!.length - 1]!.chain_seq <= afterSeq) held -= runs.shift()!.length;
    this.held.set(chain, held);
    const run = runs[0];
    if (!run) return null;
    const start = afterSeq + 1 - run[0]!.chain_seq;
    if (start < 0) return null; // a gap: rows this instance never held (another instance's, or dropped)
    return run.slice(start, start + limit);
  }

  /** Let go of everything held for `chain` (another instance drains it: this one would only hold on to memory). */
  drop(chain: number): void {
    this.runs.delete(chain);
    this.held.delete(chain);
  }

  /** Rows held for `chain` (for tests and metrics). */
  size(chain: number): number {
    return this.held.get(chain) ?? 0;
  }
}
