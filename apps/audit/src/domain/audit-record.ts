import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { SecurityEvent, SecurityEventOutcome } from '@soma/contracts';
import { formatIpNetwork, truncateToNetwork } from './ip-network.js';
import { jsonString, jsonUnique } from './json-text.js';
import { encryptPii, pseudonymOf } from './subject-crypto.js';

/** One row of `audit_log` as stored, and as the hash chain covers it (everything but `id` and `hash`). */
export interface AuditRow {
  timestamp: Date;
  occurred_at: Date;
  event_id: string;
  event_type: string;
  tenant: string;
  service: string;
  /** Keyed pseudonym (hex) or null. */
  user_id: string | null;
  /** Canonical network text (`203.0.113.0/24`) or null. */
  ip_address: string | null;
  pii: Buffer | null;
  action: string;
  resource: string;
  outcome: SecurityEventOutcome;
  reason: string | null;
  details: Record<string, unknown>;
  trace_id: string | null;
  chain_partition: number;
  chain_seq: number;
  prev_hash: Buffer;
  hash: Buffer;
}

export interface StoredAuditRow extends AuditRow {
  id: string;
}

/** An event ready to be chained: the protected (pseudonymised, encrypted, truncated) fields. */
export type ProtectedEvent = Omit<AuditRow, 'timestamp' | 'chain_partition' | 'chain_seq' | 'prev_hash' | 'hash'>;

export const GENESIS_HASH: Buffer = Buffer.alloc(32);
const HASH_FORMAT_VERSION = 1;

/** The body the chain covers, as an object: what `canonicalize` (RFC 8785) is applied to. */
export function chainedBody(row: Omit<AuditRow, 'hash'>): Record<string, unknown> {
  return {
    v: HASH_FORMAT_VERSION,
    chain_partition: row.chain_partition,
    chain_seq: row.chain_seq,
    timestamp: row.timestamp.toISOString(),
    occurred_at: row.occurred_at.toISOString(),
    event_id: row.event_id,
    event_type: row.event_type,
    tenant: row.tenant,
    service: row.service,
    user_id: row.user_id,
    ip_address: row.ip_address,
    pii: row.pii ? row.pii.toString('base64') : null,
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    reason: row.reason,
    details: row.details,
    trace_id: row.trace_id,
  };
}

const isoCache = new WeakMap<Date, string>();
/** Every row of a batch shares one recording timestamp: serialise it once. */
function iso(d: Date): string {
  let s = isoCache.get(d);
  if (s === undefined) isoCache.set(d, (s = d.toISOString()));
  return s;
}

/**
 * The RFC 8785 canonical JSON of `chainedBody(row)`, written directly in JCS key order: the outer shape is
 * fixed, so only `details` needs the general algorithm. This is the ingest hot path (canonicalising the
 * whole object was the largest single cost there); the spec checks it against `canonicalize` itself.
 */
export function canonicalRowJson(row: Omit<AuditRow, 'hash'>): string {
  const details = canonicalize(row.details);
  if (details === undefined) throw new Error('row cannot be canonicalised');
  return (
    `{"action":${jsonString(row.action)},"chain_partition":${row.chain_partition},"chain_seq":${row.chain_seq},"details":${details}` +
    `,"event_id":${jsonUnique(row.event_id)},"event_type":${jsonString(row.event_type)},"ip_address":${jsonString(row.ip_address)}` +
    `,"occurred_at":${jsonUnique(row.occurred_at.toISOString())},"outcome":${jsonString(row.outcome)},"pii":${jsonUnique(row.pii ? row.pii.toString('base64') : null)}` +
    `,"reason":${jsonString(row.reason)},"resource":${jsonString(row.resource)},"service":${jsonString(row.service)},"tenant":${jsonString(row.tenant)}` +
    `,"timestamp":${jsonString(iso(row.timestamp))},"trace_id":${jsonUnique(row.trace_id)},"user_id":${jsonString(row.user_id)},"v":${HASH_FORMAT_VERSION}}`
  );
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the row). */
export function rowHash(row: Omit<AuditRow, 'hash'>): Buffer {
  return createHash('sha256').update(row.prev_hash).update(canonicalRowJson(row), 'utf8').digest();
}

/** Looks up (or creates) the subject key of (tenant, user id) for this batch. */
export type SubjectKeyOf = (tenant: string, userId: string) => Buffer;

/**
 * What is stored of an event (ADR 0401): with a user, the pseudonym and the encrypted personal fields;
 * always only the IP network; details as emitted (masked by the publisher).
 */
export function protectEvent(event: SecurityEvent, subjectKeyOf: SubjectKeyOf): ProtectedEvent {
  const { user_id, ip_address, user_agent } = event.actor;
  let pseudonym: string | null = null;
  let pii: Buffer | null = null;
  if (user_id !== null) {
    const key = subjectKeyOf(event.tenant, user_id);
    pseudonym = pseudonymOf(key);
    pii = encryptPii(key, event.id, { user_id, ip_address, user_agent });
  }
  return {
    occurred_at: new Date(event.occurred_at),
    event_id: event.id,
    event_type: event.type,
    tenant: event.tenant,
    service: event.service,
    user_id: pseudonym,
    ip_address: ip_address === null ? null : storedNetworkOf(ip_address),
    pii,
    action: event.action,
    resource: event.resource,
    outcome: event.outcome,
    reason: event.reason,
    details: event.details,
    trace_id: event.trace_id,
  };
}

/** Addresses repeat heavily in a stream of events: their stored network is computed once per address. */
const networks = new Map<string, string>();
const NETWORK_MEMO_MAX = 10_000;

function storedNetworkOf(address: string): string {
  let net = networks.get(address);
  if (net === undefined) {
    net = formatIpNetwork(truncateToNetwork(address));
    if (networks.size >= NETWORK_MEMO_MAX) networks.clear();
    networks.set(address, net);
  }
  return net;
}

/** The head of one chain: its last position and hash, and the last recorded timestamp (never goes back). */
export interface ChainHead {
  chain_partition: number;
  seq: number;
  hash: Buffer;
  timestamp: Date;
}

/**
 * Append events to a chain in order, `ids[i]` being the `audit_log.id` of event i's row (not covered by the hash).
 * Every row of the batch gets the same recording timestamp, `max(now, head.timestamp)`, so timestamps never
 * decrease along a chain (ADR 0402).
 */
export function extendChain(
  head: ChainHead,
  events: ProtectedEvent[],
  now: Date,
  ids: readonly string[],
): { rows: StoredAuditRow[]; head: ChainHead } {
  if (ids.length !== events.length) throw new Error('extendChain needs one row id per event');
  const timestamp = new Date(Math.max(now.getTime(), head.timestamp.getTime()));
  let prev = head.hash;
  let seq = head.seq;
  // One object literal per row (not spreads of the event): the ingest hot path builds tens of thousands per second.
  const rows: StoredAuditRow[] = events.map((e, i) => {
    seq += 1;
    const row: StoredAuditRow = {
      id: ids[i]!,
      timestamp,
      occurred_at: e.occurred_at,
      event_id: e.event_id,
      event_type: e.event_type,
      tenant: e.tenant,
      service: e.service,
      user_id: e.user_id,
      ip_address: e.ip_address,
      pii: e.pii,
      action: e.action,
      resource: e.resource,
      outcome: e.outcome,
      reason: e.reason,
      details: e.details,
      trace_id: e.trace_id,
      chain_partition: head.chain_partition,
      chain_seq: seq,
      prev_hash: prev,
      hash: prev, // replaced below: the hash covers everything but itself
    };
    row.hash = rowHash(row);
    prev = row.hash;
    return row;
  });
  return { rows, head: { chain_partition: head.chain_partition, seq, hash: prev, timestamp } };
}

/**
 * Strings PostgreSQL cannot store as given (NUL, lone surrogates) would poison a whole batch or be
 * silently altered by the UTF-8 encoder (breaking the hash). Such events go to the DLQ instead.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function unstorableReason(value: unknown, depth = 0): string | null {
  if (depth > 64) return 'nesting deeper than 64 levels';
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return 'contains a NUL character';
    if (LONE_SURROGATE.test(value)) return 'contains a lone UTF-16 surrogate';
    return null;
  }
  if (Array.isArray(value)) {
    for (const v of value) {
      const r = unstorableReason(v, depth + 1);
      if (r) return r;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const r = unstorableReason(k, depth + 1) ?? unstorableReason(v, depth + 1);
      if (r) return r;
    }
  }
  return null;
}
