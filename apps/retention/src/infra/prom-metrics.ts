import { Counter, Gauge, Histogram, type Registry } from '@soma/observability';
import type { RetentionMetrics } from '../domain/ports.js';

/** Prometheus metrics of retention runs and GDPR requests (names in apps/retention/README.md). */
export class PromRetentionMetrics implements RetentionMetrics {
  private readonly deleted: Counter<'policy' | 'table'>;
  private readonly batches: Histogram<'policy'>;
  private readonly runs: Counter<'policy' | 'outcome' | 'dry_run'>;
  private readonly runSeconds: Histogram<'policy' | 'dry_run'>;
  private readonly lastSuccess: Gauge<'policy'>;
  private readonly requests: Counter<'kind' | 'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.deleted = new Counter({ name: 'soma_retention_rows_deleted_total', help: 'Rows removed by retention policies', labelNames: ['policy', 'table'], registers });
    this.batches = new Histogram({ name: 'soma_retention_batch_seconds', help: 'Duration of one retention DELETE batch', labelNames: ['policy'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.runs = new Counter({ name: 'soma_retention_runs_total', help: 'Retention policy runs by outcome', labelNames: ['policy', 'outcome', 'dry_run'], registers });
    this.runSeconds = new Histogram({ name: 'soma_retention_run_seconds', help: 'Duration of retention policy runs', labelNames: ['policy', 'dry_run'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers });
    this.lastSuccess = new Gauge({ name: 'soma_retention_last_success_timestamp_seconds', help: 'When each policy last completed a real run successfully', labelNames: ['policy'], registers });
    this.requests = new Counter({ name: 'soma_gdpr_requests_total', help: 'GDPR data-subject requests by kind and outcome', labelNames: ['kind', 'outcome'], registers });
  }

  rowsDeleted(policy: string, table: string, rows: number): void {
    this.deleted.inc({ policy, table }, rows);
  }

  batch(policy: string, seconds: number): void {
    this.batches.observe({ policy }, seconds);
  }

  run(policy: string, outcome: string, seconds: number, dryRun: boolean): void {
    const dry_run = String(dryRun);
    this.runs.inc({ policy, outcome, dry_run });
    this.runSeconds.observe({ policy, dry_run }, seconds);
    if (!dryRun && outcome === 'success') this.lastSuccess.setToCurrentTime({ policy });
  }

  gdpr(kind: 'export' | 'erase' | 'consent_record' | 'consent_get', outcome: 'success' | 'denied' | 'error'): void {
    this.requests.inc({ kind, outcome });
  }
}
