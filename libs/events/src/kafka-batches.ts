import type { Message } from 'kafkajs';

/**
 * The broker refuses a record batch above `message.max.bytes` (1 MiB by default) and kafkajs puts everything a
 * send holds for one partition into one batch: a page of SIEM records or a chunk of rejected events can exceed it,
 * and the refusal is not retriable (the consumer would loop on the same chunk forever). So sends are split into
 * groups of at most `maxBytes` of keys, values and headers (one oversize message still goes alone: it was accepted
 * on security.events with the same limit, and the broker's answer for it is then the real one).
 */
export const SEND_BYTES_MAX = 512 * 1024;

function sizeOf(m: Message): number {
  let n = 64; // record overhead, generously
  if (m.key) n += Buffer.byteLength(m.key);
  if (m.value) n += Buffer.byteLength(m.value);
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    n += Buffer.byteLength(k);
    if (typeof v === 'string' || Buffer.isBuffer(v)) n += Buffer.byteLength(v);
  }
  return n;
}

export function splitByBytes<M extends Message>(messages: readonly M[], maxBytes = SEND_BYTES_MAX): M[][] {
  const groups: M[][] = [];
  let current: M[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = sizeOf(m);
    if (current.length && bytes + size > maxBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length) groups.push(current);
  return groups;
}
