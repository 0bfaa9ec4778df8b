import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { loadConfig } from '@soma/config';
import { grpcClientConstructor } from '@soma/contracts';
import { PostgresConfig, createPgPool } from '@soma/postgres';
import { cliChannelCredentials } from '../grpc-credentials.js';

interface VerifyWire {
  intact: boolean;
  chains_checked: string;
  rows_checked: string;
  checkpoints_checked: string;
  broken: { chain_partition: number; chain_seq: string; row_id: string; reason: string; detail: string } | null;
}

/** Exit status of `soma audit verify` when the chain is broken (distinct from 1 = could not check). */
export const EXIT_CHAIN_BROKEN = 2;

function verifyChain(address: string, credential: string, from: string | undefined, to: string | undefined, deadlineMs: number): Promise<VerifyWire> {
  const AuditService = grpcClientConstructor('audit');
  const client = new AuditService(address, cliChannelCredentials());
  return new Promise<VerifyWire>((resolve, reject) => {
    const call = client['VerifyChain'] as (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: VerifyWire) => void) => void;
    const md = new grpc.Metadata();
    md.set('authorization', /^Bearer\s/i.test(credential) ? credential : `Bearer ${credential}`);
    call.call(client, { from: from ?? '', to: to ?? '' }, md, { deadline: Date.now() + deadlineMs }, (err, res) => {
      client.close();
      if (err) reject(new Error(`VerifyChain failed: ${err.details || err.message}`));
      else resolve(res);
    });
  });
}

/** `soma audit verify`, `soma audit partitions`. */
export function register(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('walk the hash chains (and signed checkpoints) over a time range; exit 2 when a link is broken')
    .option('--from <rfc3339>', 'start of the recording-time range (default: the beginning)')
    .option('--to <rfc3339>', 'end of the range (default: now)')
    .option('--address <host:port>', 'audit gRPC address', process.env['AUDIT_GRPC_ADDRESS'] ?? `127.0.0.1:${process.env['AUDIT_GRPC_PORT'] ?? '20050'}`)
    .option('--credential <bearer>', 'credential with audit:verify for tenant * (JWT, API key, or AUDIT_EXPORT_API_KEY; default: $SOMA_CREDENTIAL)')
    .option('--timeout-ms <n>', 'deadline of the call', '600000')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { from?: string; to?: string; address: string; credential?: string; timeoutMs: string; json?: boolean }) => {
      const credential = opts.credential ?? process.env['SOMA_CREDENTIAL'];
      if (!credential) throw new Error('a credential is required: --credential or $SOMA_CREDENTIAL');
      const r = await verifyChain(opts.address, credential, opts.from, opts.to, Number(opts.timeoutMs));
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else if (r.intact) {
        process.stdout.write(`intact: ${r.chains_checked} chains, ${r.rows_checked} rows, ${r.checkpoints_checked} signed checkpoints verified\n`);
      } else {
        const b = r.broken!;
        process.stdout.write(`BROKEN: chain ${b.chain_partition} position ${b.chain_seq} row ${b.row_id || '-'}: ${b.reason} (${b.detail})\n`);
      }
      if (!r.intact) process.exitCode = EXIT_CHAIN_BROKEN;
    });
  audit
    .command('partitions')
    .description('create the monthly audit_log partitions ahead of time (idempotent)')
    .option('--months-ahead <n>', 'months after the current one', '3')
    .action(async (opts: { monthsAhead: string }) => {
      const config = await loadConfig(PostgresConfig, process.env);
      const pool = createPgPool(config, { applicationName: 'soma-cli-audit' });
      try {
        const { rows } = await pool.query<{ p: string }>('SELECT audit_log_ensure_partitions($1) AS p', [Number(opts.monthsAhead)]);
        process.stdout.write(rows.length ? `created: ${rows.map((r) => r.p).join(', ')}\n` : 'all partitions exist\n');
      } finally {
        await pool.end();
      }
    });
}
