import { decodeSecurityEvent, type SecurityEvent } from '@soma/contracts';
import { extendChain, protectEvent, unstorableReason, type ProtectedEvent, type StoredAuditRow } from './audit-record.js';
import type { AuditLogWriter, SubjectKeyStore } from './ports.js';
import { newSubjectKey, unwrapSubjectKey, wrapSubjectKey } from './subject-crypto.js';

export interface IncomingMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

export interface Rejected {
  message: IncomingMessage;
  reason: string;
}

const ESCAPE = Buffer.from('\\u');
const MAX_NESTING = 64;

/**
 * Whether the walk of `unstorableReason` can find anything in these bytes. NUL and lone surrogates can only come
 * from `\u` escapes (raw NUL is invalid JSON, invalid UTF-8 decodes to U+FFFD), and nesting deeper than 64 needs
 * more than 64 opening brackets. Most events have neither, and skip the walk over the parsed event.
 */
function mayBeUnstorable(raw: Buffer): boolean {
  if (raw.includes(ESCAPE)) return true;
  let open = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if ((b === 0x7b || b === 0x5b) && ++open > MAX_NESTING) return true; // '{' or '[', inside strings too: overcounts only
  }
  return false;
}

/** Split a fetched batch into contract-conforming events (in offset order) and rejects for the DLQ. */
export function classifyMessages(messages: IncomingMessage[]): { valid: SecurityEvent[]; rejected: Rejected[]; sources: Map<string, IncomingMessage> } {
  const valid: SecurityEvent[] = [];
  const sources = new Map<string, IncomingMessage>();
  const rejected: Rejected[] = [];
  for (const message of messages) {
    const result = decodeSecurityEvent(message.value);
    if (!result.ok) {
      rejected.push({ message, reason: `contract violation: ${result.errors.slice(0, 10).join('; ')}` });
      continue;
    }
    const unstorable = mayBeUnstorable(message.value!) ? unstorableReason(result.event) : null;
    if (unstorable) {
      rejected.push({ message, reason: `not storable: a string ${unstorable}` });
      continue;
    }
    valid.push(result.event);
    sources.set(result.event.id, message);
  }
  return { valid, rejected, sources };
}

export interface AppendOutcome {
  inserted: number;
  duplicates: number;
  lastSeq: number;
  /** The rows this call stored, in chain order, as committed (the SIEM stream publishes them without reading them back). */
  rows: StoredAuditRow[];
}

const subjectId = (tenant: string, userId: string) => `${tenant}\u0000${userId}`;

/** Events protected between two turns of the event loop. */
const PROTECT_SLICE = 500;

/** A chunk's unique events with their stored form: all that can be done before the chain is locked. */
export interface ProtectedChunk {
  /** Events received, counting repeats within the chunk (each repeat is a duplicate). */
  received: number;
  /** The unique events, in order, and their stored form (same order). */
  events: SecurityEvent[];
  protected: ProtectedEvent[];
}

/** Unwrapped keys of the subjects of `events`, created (and wrapped under the KEK) for subjects seen the first time. */
async function subjectKeysOf(store: SubjectKeyStore, kek: Buffer, events: SecurityEvent[]): Promise<Map<string, Buffer>> {
  const subjects = new Map<string, { tenant: string; user_id: string }>();
  for (const e of events) {
    if (e.actor.user_id !== null) subjects.set(subjectId(e.tenant, e.actor.user_id), { tenant: e.tenant, user_id: e.actor.user_id });
  }
  const keys = new Map<string, Buffer>();
  if (subjects.size === 0) return keys;
  const wrapped = await store.loadSubjectKeys([...subjects.values()]);
  const created: Array<{ tenant: string; user_id: string; key: Buffer }> = [];
  for (const [id, s] of subjects) {
    const w = wrapped.get(id);
    if (w) keys.set(id, unwrapSubjectKey(kek, s.tenant, s.user_id, w));
    else {
      const key = newSubjectKey();
      keys.set(id, key);
      created.push({ ...s, key: wrapSubjectKey(kek, s.tenant, s.user_id, key) });
    }
  }
  if (created.length) {
    const inserted = await store.insertSubjectKeys(created);
    const lost = created.filter((c) => !inserted.has(subjectId(c.tenant, c.user_id)));
    if (lost.length) {
      // Another instance created these keys concurrently: use theirs.
      const theirs = await store.loadSubjectKeys(lost);
      for (const s of lost) {
        const w = theirs.get(subjectId(s.tenant, s.user_id));
        if (!w) throw new Error('subject key vanished while being created');
        keys.set(subjectId(s.tenant, s.user_id), unwrapSubjectKey(kek, s.tenant, s.user_id, w));
      }
    }
  }
  return keys;
}

/**
 * The part of storing a chunk that needs no chain lock (ADR 0409): duplicates within the chunk dropped, subject keys
 * fetched or created, personal fields encrypted and pseudonymised, addresses truncated. Ingest does it for the next
 * chunk of a partition while the previous one is in its transaction. Events already stored are protected too and
 * dropped by `appendProtected` (redeliveries are rare; claiming first would need the transaction).
 */
export async function protectChunk(store: SubjectKeyStore, kek: Buffer, events: SecurityEvent[]): Promise<ProtectedChunk> {
  // The same event twice in one batch (a producer retry) is one event.
  const unique = [...new Map(events.map((e) => [e.id, e])).values()];
  const keys = await subjectKeysOf(store, kek, unique);
  const keyOf = (tenant: string, userId: string) => keys.get(subjectId(tenant, userId))!;
  const protectedEvents: ProtectedEvent[] = [];
  for (let i = 0; i < unique.length; i++) {
    // A chunk takes tens of milliseconds to protect: the other partitions' transactions get their replies in between.
    if (i > 0 && i % PROTECT_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    protectedEvents.push(protectEvent(unique[i]!, keyOf));
  }
  return { received: events.length, events: unique, protected: protectedEvents };
}

/**
 * Persist a protected chunk of one Kafka partition in one transaction: lock the chain head, drop already-stored
 * event ids, chain and insert the rest. The caller commits the Kafka offsets only after this resolves.
 */
export async function appendProtected(writer: AuditLogWriter, chain: number, chunk: ProtectedChunk, now: () => Date = () => new Date()): Promise<AppendOutcome> {
  const { received } = chunk;
  return writer.inChainTransaction(chain, async (tx) => {
    const head = await tx.lockHead();
    const at = new Date(Math.max(now().getTime(), head.timestamp.getTime()));
    const fresh = await tx.claimEventIds(chunk.events.map((e) => e.id), at);
    const toStore = fresh.size === chunk.events.length ? chunk.protected : chunk.protected.filter((p) => fresh.has(p.event_id));
    if (toStore.length === 0) return { inserted: 0, duplicates: received, lastSeq: head.seq, rows: [] };
    const { rows, head: next } = extendChain(head, toStore, at, toStore.map((p) => fresh.get(p.event_id)!));
    await tx.insertRows(rows);
    await tx.saveHead(next);
    return { inserted: rows.length, duplicates: received - rows.length, lastSeq: next.seq, rows };
  });
}

/** Protect and persist a batch of one Kafka partition (`protectChunk`, then `appendProtected`). */
export async function appendToChain(
  writer: AuditLogWriter,
  kek: Buffer,
  chain: number,
  events: SecurityEvent[],
  now: () => Date = () => new Date(),
): Promise<AppendOutcome> {
  return appendProtected(writer, chain, await protectChunk(writer, kek, events), now);
}
