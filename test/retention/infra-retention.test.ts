import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/infra.js';

/** The example configurations in infra/retention/ hold the retention the README documents (7 d, 30 d, 30 d). */
const dir = join(REPO_ROOT, 'infra/retention');
const text = (file: string) => readFileSync(join(dir, file), 'utf8');

describe('infra/retention example configuration', () => {
  it('logs: 7 days (logrotate, journald, Loki)', () => {
    const logrotate = text('logs/logrotate-soma.conf');
    expect(logrotate).toMatch(/^\s+daily$/m);
    expect(logrotate).toMatch(/^\s+rotate 7$/m);
    expect(logrotate).toMatch(/^\s+maxage 7$/m);
    expect(logrotate).toMatch(/^\s+copytruncate$/m);
    expect(text('logs/journald-soma.conf')).toMatch(/^\[Journal\]\nMaxRetentionSec=7day$/m);
    const loki = text('logs/loki-retention.yaml');
    expect(loki).toMatch(/^compactor:\n(?: {2}.*\n)*? {2}retention_enabled: true$/m);
    expect(loki).toMatch(/^limits_config:\n {2}retention_period: 168h\b/m);
  });

  it('metrics: 30 days (Prometheus flag, Operator resource, compose)', () => {
    // Flags as list items of the container's args / the service's command (YAML checked by hand: no YAML parser is a dependency).
    expect(text('prometheus/prometheus-deployment-patch.yaml')).toMatch(/^ {10}args:\n(?: {12}.*\n)*? {12}- --storage\.tsdb\.retention\.time=30d$/m);
    const operator = text('prometheus/prometheus-operator.yaml');
    expect(operator).toMatch(/^kind: Prometheus$/m);
    expect(operator).toMatch(/^spec:\n {2}retention: 30d$/m);
    expect(text('prometheus/docker-compose.prometheus.yaml')).toMatch(/^ {4}command:\n(?: {6}.*\n)*? {6}- --storage\.tsdb\.retention\.time=30d$/m);
  });

  it('backups: 30 days (S3 and GCS lifecycle rules)', () => {
    const s3 = JSON.parse(text('backups/s3-lifecycle.json')) as { Rules: Array<Record<string, any>> };
    const main = s3.Rules.find((r) => r['Expiration']?.['Days'] !== undefined)!;
    expect(main).toMatchObject({ Status: 'Enabled', Filter: { Prefix: 'soma/' }, Expiration: { Days: 30 }, NoncurrentVersionExpiration: { NoncurrentDays: 1 } });
    expect(s3.Rules.every((r) => r['Status'] === 'Enabled')).toBe(true);
    const gcs = JSON.parse(text('backups/gcs-lifecycle.json')) as { rule: Array<{ action: { type: string }; condition: Record<string, unknown> }> };
    expect(gcs.rule).toContainEqual({ action: { type: 'Delete' }, condition: { age: 30, matchesPrefix: ['soma/'] } });
  });

  it('the README names every example file and each configured value', () => {
    const readme = text('README.md');
    for (const f of ['logs/logrotate-soma.conf', 'logs/journald-soma.conf', 'logs/loki-retention.yaml', 'prometheus/prometheus-deployment-patch.yaml', 'prometheus/prometheus-operator.yaml', 'prometheus/docker-compose.prometheus.yaml', 'backups/s3-lifecycle.json', 'backups/gcs-lifecycle.json']) {
      expect(readme).toContain(f.split('/').pop()!);
    }
    for (const v of ['7 days', '30 days', '--storage.tsdb.retention.time=30d', 'MaxRetentionSec=7day', 'retention_period: 168h']) expect(readme).toContain(v);
  });
});
