import type { StoredAuditRow } from '../../domain/audit-record.js';
import type { PostgresSettings } from '@soma/postgres';

/**
 * What the ingest thread and its chunk workers say to each other (ADR 0410). The events of a chunk cross as one
 * transferred buffer (no copy, no per-event clone); what comes back is small: counts, the index and reason of
 * each reject, and the stored rows only when this instance's SIEM stream wants them.
 */

/** Given to each worker at start (structured clone: plain values only). */
export interface ChunkWorkerData {
  postgres: Partial<PostgresSettings>;
  applicationName: string;
  kek: Uint8Array;
}

/** The message values of a chunk, packed: `lengths[i]` bytes of `bytes` for message i in order, -1 for a null value. */
export interface PackedValues {
  bytes: ArrayBuffer;
  lengths: Int32Array;
}

/** A message of the chunk refused, by its index in the chunk: contract, storability, or the database's data checks. */
export interface IndexedReject {
  index: number;
  reason: string;
}

export type ChunkRequest =
  | { op: 'protect'; id: number; handle: number; values: PackedValues }
  | { op: 'store'; id: number; handle: number; chain: number; wantRows: boolean }
  | { op: 'release'; handle: number }
  | { op: 'close'; id: number };

export interface ProtectReply {
  rejected: IndexedReject[];
}

export interface StoreReply {
  inserted: number;
  duplicates: number;
  /** Events the database refused for their data (stored one by one around them). */
  refused: IndexedReject[];
  /** The rows stored, in chain order; only when asked for (Buffers arrive as Uint8Arrays: see `rowsFromWorker`). */
  rows: StoredAuditRow[] | null;
}

export type ChunkReply =
  | { id: number; ok: true; value: ProtectReply | StoreReply | null }
  | { id: number; ok: false; error: { message: string; code?: string; lost?: boolean } };

/** Pack message values for transfer: one copy per value into one buffer of their own (never a shared pool slab). */
export function packValues(values: ReadonlyArray<Buffer | null>): PackedValues {
  let total = 0;
  for (const v of values) total += v ? v.length : 0;
  const bytes = new ArrayBuffer(total);
  const view = new Uint8Array(bytes);
  const lengths = new Int32Array(values.length);
  let at = 0;
  values.forEach((v, i) => {
    if (v === null) {
      lengths[i] = -1;
      return;
    }
    view.set(v, at);
    lengths[i] = v.length;
    at += v.length;
  });
  return { bytes, lengths };
}

/** The values again, as Buffers viewing the transferred bytes (no copy). */
export function unpackValues({ bytes, lengths }: PackedValues): Array<Buffer | null> {
  const values: Array<Buffer | null> = [];
  let at = 0;
  for (const length of lengths) {
    if (length < 0) values.push(null);
    else {
      values.push(Buffer.from(bytes, at, length));
      at += length;
    }
  }
  return values;
}

/** Structured clone turns Buffers into plain Uint8Arrays: the rows' byte columns become Buffers again (views, no copy). */
export function rowsFromWorker(rows: StoredAuditRow[]): StoredAuditRow[] {
  const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  for (const r of rows) {
    r.prev_hash = asBuffer(r.prev_hash);
    r.hash = asBuffer(r.hash);
    if (r.pii) r.pii = asBuffer(r.pii);
  }
  return rows;
}
