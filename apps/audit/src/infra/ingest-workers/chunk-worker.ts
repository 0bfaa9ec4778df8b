import { parentPort, workerData } from 'node:worker_threads';
import { createPgPool } from '@soma/postgres';
import { appendProtected, appendToChain, classifyMessages, protectChunk, type IncomingMessage, type ProtectedChunk } from '../../domain/audit-ingest.js';
import type { StoredAuditRow } from '../../domain/audit-record.js';
import { PgAuditStore } from '../pg-audit-store.js';
import { unpackValues, type ChunkReply, type ChunkRequest, type ChunkWorkerData, type IndexedReject, type ProtectReply, type StoreReply } from './chunk-protocol.js';

/**
 * A chunk worker (ADR 0410): the per-event work of ingest — contract check, protection, hash chain, COPY — on a
 * thread of its own, with its own PostgreSQL pool, so that one instance uses more than one core. The ingest thread
 * keeps Kafka, the lanes' order, the DLQ and the offset commits; a chunk is protected here (stage 1), held under
 * its handle, and stored when the ingest thread says so (stage 2), in the lane's order.
 */
const data = workerData as ChunkWorkerData;
const port = parentPort!;
const kek = Buffer.from(data.kek);
const pool = createPgPool(data.postgres, {
  applicationName: data.applicationName,
  // A server restart breaks idle connections; the next query gets a fresh one, and the chunk is retried.
  onIdleError: () => undefined,
});
const store = new PgAuditStore(pool);

/** PostgreSQL errors caused by one row's data (class 22 data exception, 23 integrity, 54 limits), not by the server. */
function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

interface HeldChunk {
  protectedChunk: ProtectedChunk | null;
  /** A valid event's message, and a message's index in the chunk: the DLQ needs the original of one the database refuses. */
  sources: Map<string, IncomingMessage>;
  indexOf: (message: IncomingMessage) => number;
}

/** A message's index in its chunk; the map is built only when a reject needs it (most chunks have none). */
function indexerOf(messages: IncomingMessage[]): (message: IncomingMessage) => number {
  let index: Map<IncomingMessage, number> | undefined;
  return (message) => (index ??= new Map(messages.map((m, i) => [m, i]))).get(message)!;
}

const held = new Map<number, HeldChunk>();

async function protect(handle: number, values: Array<Buffer | null>): Promise<ProtectReply> {
  const messages: IncomingMessage[] = values.map((value) => ({ offset: '', key: null, value }));
  const indexOf = indexerOf(messages);
  const { valid, rejected, sources } = classifyMessages(messages);
  const protectedChunk = valid.length ? await protectChunk(store, kek, valid) : null;
  held.set(handle, { protectedChunk, sources, indexOf });
  return { rejected: rejected.map((r) => ({ index: indexOf(r.message), reason: r.reason })) };
}

/** Store a held chunk; when the database refuses one event's data, the others are stored one by one around it. */
async function storeHeld(handle: number, chain: number, wantRows: boolean): Promise<StoreReply> {
  const chunk = held.get(handle);
  if (!chunk) throw Object.assign(new Error('chunk no longer held by its worker'), { lost: true });
  if (!chunk.protectedChunk) return { inserted: 0, duplicates: 0, refused: [], rows: wantRows ? [] : null };
  try {
    const r = await appendProtected(store, chain, chunk.protectedChunk);
    return { inserted: r.inserted, duplicates: r.duplicates, refused: [], rows: wantRows ? r.rows : null };
  } catch (e) {
    if (!isDataError(e)) throw e; // server or connection trouble: the ingest thread retries the whole chunk
    const rows: StoredAuditRow[] = [];
    const refused: IndexedReject[] = [];
    let inserted = 0;
    let duplicates = 0;
    for (const event of chunk.protectedChunk.events) {
      try {
        const r = await appendToChain(store, kek, chain, [event]);
        inserted += r.inserted;
        duplicates += r.duplicates;
        rows.push(...r.rows);
      } catch (inner) {
        if (!isDataError(inner)) throw inner;
        refused.push({ index: chunk.indexOf(chunk.sources.get(event.id)!), reason: `refused by the database (SQLSTATE ${(inner as { code: string }).code})` });
      }
    }
    return { inserted, duplicates, refused, rows: wantRows ? rows : null };
  }
}

async function handle(request: ChunkRequest): Promise<ProtectReply | StoreReply | null> {
  switch (request.op) {
    case 'protect':
      return protect(request.handle, unpackValues(request.values));
    case 'store':
      return storeHeld(request.handle, request.chain, request.wantRows);
    case 'release':
      held.delete(request.handle);
      return null;
    case 'close':
      held.clear();
      await pool.end();
      return null;
  }
}

port.on('message', (request: ChunkRequest) => {
  handle(request).then(
    (value) => {
      if (request.op !== 'release') port.postMessage({ id: request.id, ok: true, value } satisfies ChunkReply);
      if (request.op === 'close') port.close();
    },
    (e: unknown) => {
      if (request.op === 'release') return;
      const { message, code, lost } = e as { message?: string; code?: unknown; lost?: boolean };
      const error = { message: message ?? String(e), ...(typeof code === 'string' ? { code } : {}), ...(lost ? { lost } : {}) };
      port.postMessage({ id: request.id, ok: false, error } satisfies ChunkReply);
    },
  );
});
