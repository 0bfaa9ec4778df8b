import { describe, expect, it } from 'vitest';
import { waitFor } from '../../support/wait.js';
import type { HostileContext } from '../support/context.js';

/** The forms of a secret worth searching for: itself, and its distinctive inner parts. */
function needles(label: string, value: string): Array<[string, string]> {
  const out: Array<[string, string]> = [[label, value]];
  const v = value.trim();
  if (v.includes('-----BEGIN')) {
    // A PEM: its base64 body lines.
    for (const [i, line] of v.split('\n').filter((l) => l && !l.startsWith('-----')).entries()) if (line.length >= 16) out.push([`${label} (pem line ${i})`, line]);
  } else if (/^eyJ[\w-]*\.[\w-]*\.[\w-]{20,}$/.test(v)) {
    out.push([`${label} (signature)`, v.split('.')[2]!]);
  } else if (/^sk-soma-/.test(v)) {
    out.push([`${label} (body)`, v.slice(8, -4)]);
  } else if (/^[A-Za-z0-9_-]{43}=$/.test(v)) {
    out.push([`${label} (fernet body)`, v.slice(0, 43)]);
  }
  if (v !== value) out.push([`${label} (trimmed)`, v]);
  return out.filter(([, n]) => n.length >= 12);
}

/**
 * Last: everything the run captured, searched for every secret, token, password, API key and Fernet key it used.
 * Sources: every child's stdout/stderr (LOG_LEVEL=trace), security.events / security.audit / the DLQ, every row of
 * every table in the stack's database (audit_log and the rest), and every error message a service returned.
 */
export function leakSuite(ctx: () => HostileContext): void {
  describe('no secret anywhere in what the run captured', () => {
    it('greps logs, Kafka, database rows and error messages for every secret the run used', async () => {
      const c = ctx();
      // Let audit ingest what the run produced and the SIEM stream publish it, so the rows and security.audit are complete.
      const produced = () => c.kafka.messages.filter((m) => m.topic === 'security.events').length;
      const before = produced();
      await new Promise((r) => setTimeout(r, 2000));
      await waitFor(async () => {
        const { rows } = await c.stack.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_log');
        return Number(rows[0]!.n) > 0;
      }, { timeoutMs: 60_000, what: 'audit rows' });

      const sources: Array<[string, string]> = [];
      sources.push(['service logs', c.stack.capturedText()]);
      for (const topic of new Set(c.kafka.messages.map((m) => m.topic))) sources.push([`kafka ${topic}`, c.kafka.messages.filter((m) => m.topic === topic).map((m) => m.value).join('\n')]);
      const { rows: tables } = await c.stack.db.pool.query<{ schemaname: string; tablename: string }>("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')");
      let rowCount = 0;
      for (const t of tables) {
        const { rows } = await c.stack.db.pool.query<{ r: string }>(`SELECT t::text AS r FROM ${t.schemaname}.${t.tablename} t`);
        rowCount += rows.length;
        sources.push([`table ${t.schemaname}.${t.tablename}`, rows.map((r) => r.r).join('\n')]);
      }
      sources.push(['error messages returned', c.errors.join('\n')]);

      const all = [...c.secrets.entries()].flatMap(([label, value]) => needles(label, value));
      const leaks: string[] = [];
      for (const [where, text] of sources) for (const [what, needle] of all) if (text.includes(needle)) leaks.push(`${what} in ${where}`);
      const sizes = sources.map(([w, t]) => `${w}=${t.length}`).join(', ');
      console.log(`[hostile] leak grep: ${c.secrets.size} secrets (${all.length} needles) over ${sources.length} sources (${sizes}); ${rowCount} rows; ${produced() - before} late events`);
      // The capture is real: logs hold the services' lines, Kafka the run's events, the errors the refusals.
      expect(c.stack.capturedText()).toContain('grpc call failed');
      expect(c.kafka.messages.length).toBeGreaterThan(0);
      expect(c.errors.length).toBeGreaterThan(100);
      expect(c.secrets.size).toBeGreaterThan(50);
      expect(leaks).toEqual([]);
    });
  });
}
