/**
 * JSON text of a string or null, in RFC 8785 form (ECMAScript `JSON.stringify` of a string is the JCS form), for
 * the JSON the audit service writes by hand: the chain hash's canonical rows, the encrypted personal fields and the
 * SIEM records.
 *
 * Most values repeat from row to row (tenants, event types, services, outcomes, reasons, pseudonyms, networks), so
 * they are quoted once and looked up after that: `JSON.stringify` of a short string costs about 120 ns here, a Map
 * hit about 12 ns, and a row has a dozen of them. The memo is bounded (cleared when full) and holds short strings
 * only; values unique to a row (ids) go through `jsonUnique`.
 */
const MEMO_MAX = 10_000;
const MEMO_MAX_LENGTH = 128;
const quoted = new Map<string, string>();

export function jsonString(v: string | null): string {
  if (v === null) return 'null';
  let q = quoted.get(v);
  if (q === undefined) {
    q = JSON.stringify(v);
    if (v.length <= MEMO_MAX_LENGTH) {
      if (quoted.size >= MEMO_MAX) quoted.clear();
      quoted.set(v, q);
    }
  }
  return q;
}

/** `jsonString` for values that do not repeat (event ids, row ids, trace ids): not memoised. */
export function jsonUnique(v: string | null): string {
  return v === null ? 'null' : JSON.stringify(v);
}
