/**
 * PostgreSQL's COPY text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format"):
 * one line per row, columns separated by a tab, NULL as `\N`, and in every value a backslash, newline,
 * carriage return or tab written as `\\`, `\n`, `\r`, `\t`. bytea goes in its hex input form (`\x…`, so
 * `\\x…` after escaping). Values reach PostgreSQL's input functions exactly as with a bound parameter; NUL
 * cannot be represented (ingest refuses such events before they get here).
 */
const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_ALL = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export type CopyValue = string | number | Date | Buffer | null;

export function copyText(value: CopyValue): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `\\\\x${value.toString('hex')}`;
  return SPECIAL.test(value) ? value.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : value;
}

/** One row as a COPY text line, newline included. */
export function copyTextLine(values: readonly CopyValue[]): string {
  let line = copyText(values[0]!);
  for (let i = 1; i < values.length; i++) line += `\t${copyText(values[i]!)}`;
  return `${line}\n`;
}
