import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import { GRPC_REASON_KEY, grpcClientConstructor } from '@soma/contracts';
import { cliChannelCredentials } from '../grpc-credentials.js';

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

export interface RetentionCliOptions {
  address: string;
  credential?: string;
}

/** The retention commands talk to the running service over gRPC: one code path, audited by the service. */
export function retentionConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--address <host:port>', 'retention gRPC address', process.env['RETENTION_GRPC_ADDRESS'] ?? '127.0.0.1:20060')
    .option('--credential <bearer>', 'operator credential, JWT or API key (default: $SOMA_CREDENTIAL)');
}

/** One call to soma.retention.v1.RetentionService with the operator's credential. */
export async function callRetention<T>(opts: RetentionCliOptions, method: string, request: unknown, deadlineMs = 60_000): Promise<T> {
  const credential = opts.credential ?? process.env['SOMA_CREDENTIAL'];
  if (!credential) throw new Error('a credential is required: --credential or SOMA_CREDENTIAL');
  const Ctor = grpcClientConstructor('retention');
  // Exports can be large: accept up to 256 MiB (the service bounds them by RETENTION_EXPORT_MAX_ROWS).
  const client = new Ctor(opts.address, cliChannelCredentials(), { 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
  const md = new grpc.Metadata();
  md.set('authorization', /^bearer\s/i.test(credential) ? credential : `Bearer ${credential}`);
  md.set('x-request-id', randomUUID());
  try {
    return await new Promise<T>((resolve, reject) => {
      (client as unknown as Record<string, Unary>)[method]!.call(client, request, md, { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => {
        if (!err) return resolve(res as T);
        const reason = err.metadata?.get(GRPC_REASON_KEY)[0];
        reject(new Error(`${grpc.status[err.code] ?? err.code}${reason ? ` (${String(reason)})` : ''}: ${err.details || err.message}`));
      });
    });
  } finally {
    client.close();
  }
}

interface RunResult {
  policy: string;
  table: string;
  mode: string;
  cutoff: string;
  dry_run: boolean;
  rows_expired: string;
  rows_deleted: string;
  batches: number;
  partitions_dropped: string[];
  outcome: string;
  reason: string;
  duration_ms: string;
}

/** `soma retention policies | run [--policy p] [--dry-run] [--json]` (needs retention:admin, tenant *). */
export function register(program: Command): void {
  const retention = program.command('retention').description('data-retention policies (the retention service, over gRPC)');
  retentionConnectionOptions(retention.command('policies').description('list the configured retention policies'))
    .option('--json', 'print JSON')
    .action(async (opts: RetentionCliOptions & { json?: boolean }) => {
      const res = await callRetention<{ policies: Array<Record<string, unknown>> }>(opts, 'ListPolicies', {});
      if (opts.json) return void process.stdout.write(`${JSON.stringify(res.policies, null, 2)}\n`);
      for (const p of res.policies) {
        // Time-budget pacing (ADR 0506) shows its budget and proportional pause; fixed pacing its batch size and pause.
        const pacing = Number(p['batch_target_ms'] ?? 0) > 0
          ? `batch ~${p['batch_target_ms']}ms (first ${p['batch_size']} rows)\tpause ${p['pause_ms']}ms + ${p['pause_percent']}%`
          : `batch ${p['batch_size']}\tpause ${p['pause_ms']}ms${Number(p['pause_percent'] ?? 0) > 0 ? ` + ${p['pause_percent']}%` : ''}`;
        process.stdout.write(`${p['name']}\t${p['table']}.${p['timestamp_column']}\t${p['max_age_days']}d\t${p['mode']}\t${pacing}\t${p['schedule']}\n`);
      }
    });
  retentionConnectionOptions(retention.command('run').description('run one policy (or all) now; --dry-run only counts'))
    .option('--policy <name>', 'one policy (default: all, in configured order)', '')
    .option('--dry-run', 'report what would be deleted, delete nothing', false)
    .option('--json', 'print JSON')
    .action(async (opts: RetentionCliOptions & { policy: string; dryRun: boolean; json?: boolean }) => {
      // A real run may take as long as the policies' time budgets: wait up to an hour.
      const res = await callRetention<{ results: RunResult[] }>(opts, 'RunPolicy', { policy: opts.policy, dry_run: opts.dryRun }, 3_600_000);
      if (opts.json) process.stdout.write(`${JSON.stringify(res.results, null, 2)}\n`);
      else {
        for (const r of res.results) {
          const what = r.mode === 'drop_partitions' ? `partitions [${r.partitions_dropped.join(', ')}]` : `${r.batches} batches`;
          const verb = r.dry_run ? `would delete ${r.rows_expired}` : `deleted ${r.rows_deleted} of ${r.rows_expired}`;
          process.stdout.write(`${r.policy}\t${r.outcome}${r.reason ? ` (${r.reason})` : ''}\t${verb} rows older than ${r.cutoff}\t${what}\t${r.duration_ms} ms\n`);
        }
      }
      if (res.results.some((r) => r.outcome === 'error')) process.exitCode = 1;
    });
}
