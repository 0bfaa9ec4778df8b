import { isIdentifier, PolicyConfigError } from './policy.js';

/** A platform table holding a data subject's rows: which columns name the tenant and the user. */
export interface SubjectTable {
  table: string;
  tenantColumn: string;
  userColumn: string;
  keyColumn: string;
}

export const DEFAULT_SUBJECT_TABLES: readonly SubjectTable[] = Object.freeze([
  { table: 'sessions', tenantColumn: 'tenant', userColumn: 'user_id', keyColumn: 'id' },
  { table: 'messages', tenantColumn: 'tenant', userColumn: 'user_id', keyColumn: 'id' },
  { table: 'session_events', tenantColumn: 'tenant', userColumn: 'user_id', keyColumn: 'id' },
]);

const FIELDS: Record<string, keyof SubjectTable> = { table: 'table', tenant_column: 'tenantColumn', user_column: 'userColumn', key_column: 'keyColumn' };

/** Parse RETENTION_SUBJECT_TABLES (JSON array of {table, tenant_column?, user_column?, key_column?}). */
export function parseSubjectTables(json: string | undefined): SubjectTable[] {
  if (json === undefined || json.trim() === '') return DEFAULT_SUBJECT_TABLES.map((t) => ({ ...t }));
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new PolicyConfigError('subject tables are not valid JSON');
  }
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64) throw new PolicyConfigError('subject tables must be a JSON array of 1 to 64 objects');
  const seen = new Set<string>();
  return raw.map((entry, i) => {
    const where = `subject_tables[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new PolicyConfigError(`${where} must be an object`);
    const out: SubjectTable = { table: '', tenantColumn: 'tenant', userColumn: 'user_id', keyColumn: 'id' };
    for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
      const field = FIELDS[k];
      if (!field) throw new PolicyConfigError(`${where} has an unknown field`);
      if (!isIdentifier(v)) throw new PolicyConfigError(`${where}.${k} must be a lower-case SQL identifier`);
      out[field] = v;
    }
    if (!out.table) throw new PolicyConfigError(`${where}.table is required`);
    if (seen.has(out.table)) throw new PolicyConfigError(`${where}.table is listed twice`);
    seen.add(out.table);
    return out;
  });
}
