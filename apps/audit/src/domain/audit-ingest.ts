import { decodeSecurityEvent, type SecurityEvent } from '@soma/contracts';
import { extendChain, protectEvent, unstorableReason, type StoredAuditRow } from './audit-record.js';
import type { AuditLogWriter } from './ports.js';
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

/**
 * Persist a batch of one Kafka partition: lock the chain head, drop already-stored event ids, get or
 * create subject keys, protect, chain and insert — all in one transaction. The caller commits the
 * Kafka offsets only after this resolves.
 */
export async function appendToChain(
  writer: AuditLogWriter,
  kek: Buffer,
  chain: number,
  events: SecurityEvent[],
  now: () => Date = () => new Date(),
): Promise<AppendOutcome> {
  // The same event twice in one batch (a producer retry) is one event.
  const unique = [...new Map(events.map((e) => [e.id, e])).values()];
  return writer.inChainTransaction(chain, async (tx) => {
    const head = await tx.lockHead();
    const at = new Date(Math.max(now().getTime(), head.timestamp.getTime()));
    const fresh = await tx.claimEventIds(unique.map((e) => e.id), at);
    const toStore = unique.filter((e) => fresh.has(e.id));
    if (toStore.length === 0) return { inserted: 0, duplicates: events.length, lastSeq: head.seq, rows: [] };

    const subjects = new Map<string, { tenant: string; user_id: string }>();
    for (const e of toStore) {
      if (e.actor.user_id !== null) subjects.set(subjectId(e.tenant, e.actor.user_id), { tenant: e.tenant, user_id: e.actor.user_id });
    }
    const wrapped = subjects.size ? await tx.loadSubjectKeys([...subjects.values()]) : new Map<string, Buffer>();
    const keys = new Map<string, Buffer>();
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
      const inserted = await tx.insertSubjectKeys(created);
      const lost = created.filter((c) => !inserted.has(subjectId(c.tenant, c.user_id)));
      if (lost.length) {
        // Another instance created these keys concurrently: use theirs.
        const theirs = await tx.loadSubjectKeys(lost);
        for (const s of lost) {
          const w = theirs.get(subjectId(s.tenant, s.user_id));
          if (!w) throw new Error('subject key vanished while being created');
          keys.set(subjectId(s.tenant, s.user_id), unwrapSubjectKey(kek, s.tenant, s.user_id, w));
        }
      }
    }
    const protectedEvents = toStore.map((e) => protectEvent(e, (tenant, userId) => keys.get(subjectId(tenant, userId))!));
    const { rows, head: next } = extendChain(head, protectedEvents, at, toStore.map((e) => fresh.get(e.id)!));
    await tx.insertRows(rows);
    await tx.saveHead(next);
    return { inserted: rows.length, duplicates: events.length - rows.length, lastSeq: next.seq, rows };
  });
}
