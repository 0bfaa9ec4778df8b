import canonicalize from 'canonicalize';
import { SECURITY_EVENT_SCHEMA } from '@soma/contracts';
import type { StoredAuditRow } from '../domain/audit-record.js';
import { parseIpNetwork } from '../domain/ip-network.js';
import { jsonString, jsonUnique } from '../domain/json-text.js';

export const SIEM_RECORD_SCHEMA = 'soma.audit.record/v1';


/**
 * What a SIEM reads on security.audit (docs/events.md): the stored event in the contract envelope plus its
 * chain position, as JSON text. Written directly rather than through an object and `JSON.stringify` because
 * it runs once per stored row; the spec checks it against the plain object form. `details` is in RFC 8785
 * form (the form the chain hash covers), so a record is byte-identical whether it was built from the row ingest
 * just committed or from the row read back from PostgreSQL (whose jsonb reorders keys).
 * The actor is the stored, pseudonymised one: no clear personal data leaves the audit database (ADR 0401).
 */
export function siemRecordJson(row: StoredAuditRow): string {
  const details = canonicalize(row.details);
  if (details === undefined) throw new Error('row details cannot be serialised');
  const ip = row.ip_address;
  let address = 'null';
  let prefix = 'null';
  if (ip !== null) {
    const slash = ip.indexOf('/');
    address = jsonString(slash < 0 ? ip : ip.slice(0, slash));
    prefix = String(slash < 0 ? parseIpNetwork(ip).prefix : Number(ip.slice(slash + 1)));
  }
  return (
    `{"schema":"${SIEM_RECORD_SCHEMA}","event":{"schema":"${SECURITY_EVENT_SCHEMA}","id":${jsonUnique(row.event_id)},"type":${jsonString(row.event_type)}` +
    `,"occurred_at":"${row.occurred_at.toISOString()}","service":${jsonString(row.service)},"tenant":${jsonString(row.tenant)}` +
    `,"actor":{"user_id":${jsonString(row.user_id)},"ip_address":${address},"user_agent":null},"action":${jsonString(row.action)}` +
    `,"resource":${jsonString(row.resource)},"outcome":${jsonString(row.outcome)},"reason":${jsonString(row.reason)},"details":${details},"trace_id":${jsonUnique(row.trace_id)}}` +
    `,"audit":{"id":${jsonUnique(row.id)},"recorded_at":"${row.timestamp.toISOString()}","chain_partition":${row.chain_partition},"chain_seq":${row.chain_seq}` +
    `,"prev_hash":"${row.prev_hash.toString('hex')}","hash":"${row.hash.toString('hex')}","ip_prefix_length":${prefix},"user_pseudonymous":${row.user_id !== null}}}`
  );
}
