import { timingSafeEqual } from 'node:crypto';
import { GENESIS_HASH, rowHash, type StoredAuditRow } from './audit-record.js';
import type { Checkpoint, CheckpointSigner } from './checkpoint.js';

export interface TimeRange {
  from?: Date;
  to?: Date;
}

/** What the store knows about one chain besides its rows. */
export interface ChainInfo {
  chain_partition: number;
  head: { seq: number; hash: Buffer; timestamp: Date } | null;
  /** Set when retention dropped the chain's oldest months: where it now starts legitimately. */
  floor: { first_seq: number; prev_hash: Buffer | null } | null;
}

/** Read side the verifier needs (implemented in infra/). */
export interface ChainReader {
  chains(): Promise<ChainInfo[]>;
  /** Rows of a chain with seq > afterSeq and timestamp in range, ordered by seq, at most `limit`. */
  rows(chain: number, range: TimeRange, afterSeq: number, limit: number): Promise<StoredAuditRow[]>;
  rowAt(chain: number, seq: number): Promise<StoredAuditRow | null>;
  checkpoints(chain: number, range: TimeRange): Promise<Checkpoint[]>;
}

export type BrokenLinkReason =
  | 'HASH_MISMATCH'
  | 'PREV_HASH_MISMATCH'
  | 'SEQUENCE_GAP'
  | 'MISSING_PREDECESSOR'
  | 'CHECKPOINT_INVALID_SIGNATURE'
  | 'CHECKPOINT_ROW_MISSING'
  | 'CHECKPOINT_HASH_MISMATCH'
  | 'HEAD_AHEAD_OF_LOG';

export interface BrokenLink {
  chain_partition: number;
  chain_seq: number;
  /** The row at fault; for a truncated tail, the last surviving row ('' when none). */
  row_id: string;
  reason: BrokenLinkReason;
  detail: string;
}

export interface VerifyResult {
  intact: boolean;
  chains_checked: number;
  rows_checked: number;
  checkpoints_checked: number;
  broken?: BrokenLink;
}

const same = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
const PAGE = 2000;

/**
 * Walk every chain over the range and report the first broken link: a row whose content no longer
 * matches its hash, a prev_hash that does not match its predecessor, missing positions, or a signed
 * checkpoint that the log contradicts (tail deleted, row rewritten, checkpoint forged).
 */
export async function verifyChains(reader: ChainReader, signer: Pick<CheckpointSigner, 'verify'>, range: TimeRange = {}): Promise<VerifyResult> {
  const result: VerifyResult = { intact: true, chains_checked: 0, rows_checked: 0, checkpoints_checked: 0 };
  const chains = (await reader.chains()).sort((a, b) => a.chain_partition - b.chain_partition);
  for (const chain of chains) {
    result.chains_checked += 1;
    const broken = await verifyOne(reader, signer, chain, range, result);
    if (broken) return { ...result, intact: false, broken };
  }
  return result;
}

async function verifyOne(
  reader: ChainReader,
  signer: Pick<CheckpointSigner, 'verify'>,
  chain: ChainInfo,
  range: TimeRange,
  totals: VerifyResult,
): Promise<BrokenLink | undefined> {
  const p = chain.chain_partition;
  const checkpoints = await reader.checkpoints(p, range);
  const bySeq = new Map<number, Checkpoint>();
  for (const c of checkpoints) {
    totals.checkpoints_checked += 1;
    if (!signer.verify(c)) {
      return { chain_partition: p, chain_seq: c.chain_seq, row_id: '', reason: 'CHECKPOINT_INVALID_SIGNATURE', detail: `checkpoint at position ${c.chain_seq} does not carry a valid signature of the configured key` };
    }
    bySeq.set(c.chain_seq, c);
  }
  let expectedPrev: Buffer | null = null;
  let expectedSeq = 0;
  let last: StoredAuditRow | null = null;
  let afterSeq = 0;
  for (;;) {
    const page = await reader.rows(p, range, afterSeq, PAGE);
    for (const row of page) {
      totals.rows_checked += 1;
      if (last === null) {
        // The first row in range: anchor it to its predecessor, the genesis, or the retention floor.
        if (row.chain_seq === 1) expectedPrev = GENESIS_HASH;
        else if (chain.floor && chain.floor.first_seq === row.chain_seq) expectedPrev = chain.floor.prev_hash ?? row.prev_hash;
        else {
          const pred = await reader.rowAt(p, row.chain_seq - 1);
          if (!pred) {
            return { chain_partition: p, chain_seq: row.chain_seq, row_id: row.id, reason: 'MISSING_PREDECESSOR', detail: `row at position ${row.chain_seq - 1} is missing (deleted)` };
          }
          expectedPrev = pred.hash;
        }
        expectedSeq = row.chain_seq;
      }
      if (row.chain_seq !== expectedSeq) {
        return { chain_partition: p, chain_seq: row.chain_seq, row_id: row.id, reason: 'SEQUENCE_GAP', detail: `positions ${expectedSeq}..${row.chain_seq - 1} are missing before this row (deleted)` };
      }
      if (!same(rowHash(row), row.hash)) {
        return { chain_partition: p, chain_seq: row.chain_seq, row_id: row.id, reason: 'HASH_MISMATCH', detail: 'the row content does not match its hash (altered)' };
      }
      if (!same(row.prev_hash, expectedPrev!)) {
        return { chain_partition: p, chain_seq: row.chain_seq, row_id: row.id, reason: 'PREV_HASH_MISMATCH', detail: "prev_hash does not match the previous row's hash" };
      }
      const cp = bySeq.get(row.chain_seq);
      if (cp) {
        if (!same(cp.hash, row.hash)) {
          return { chain_partition: p, chain_seq: row.chain_seq, row_id: row.id, reason: 'CHECKPOINT_HASH_MISMATCH', detail: 'a signed checkpoint names another hash at this position (chain rewritten)' };
        }
        bySeq.delete(row.chain_seq);
      }
      expectedPrev = row.hash;
      expectedSeq = row.chain_seq + 1;
      last = row;
    }
    if (page.length < PAGE) break;
    afterSeq = page[page.length - 1]!.chain_seq;
  }
  const lastSeq = last?.chain_seq ?? 0;
  const floorSeq = chain.floor?.first_seq ?? 1;
  for (const cp of [...bySeq.values()].sort((a, b) => a.chain_seq - b.chain_seq)) {
    if (cp.chain_seq > lastSeq && cp.chain_seq >= floorSeq) {
      return { chain_partition: p, chain_seq: cp.chain_seq, row_id: last?.id ?? '', reason: 'CHECKPOINT_ROW_MISSING', detail: `a signed checkpoint vouches for position ${cp.chain_seq} but the log ends at ${lastSeq} (tail deleted)` };
    }
  }
  const open = range.to === undefined || (chain.head !== null && range.to.getTime() >= chain.head.timestamp.getTime());
  if (open && chain.head && chain.head.seq > lastSeq && chain.head.seq >= floorSeq && (range.from === undefined || lastSeq > 0)) {
    return { chain_partition: p, chain_seq: chain.head.seq, row_id: last?.id ?? '', reason: 'HEAD_AHEAD_OF_LOG', detail: `the chain head is at position ${chain.head.seq} but the log ends at ${lastSeq} (tail deleted)` };
  }
  return undefined;
}
