import pg from 'pg';
import { isIdentifier } from '../domain/policy.js';

/**
 * `"schema"."name"` for SQL text. Names were validated as plain identifiers when the config was
 * parsed; they are checked again and quoted here so that no path can put raw text into a statement.
 */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

export function ident(name: string): string {
  if (!isIdentifier(name)) throw new Error('refusing an unvalidated SQL identifier');
  return pg.escapeIdentifier(name);
}

/** Quote a name read from the catalog (e.g. a partition), which need not be a policy identifier. */
export function catalogIdent(name: string): string {
  return pg.escapeIdentifier(name);
}
