import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import { grpcClientConstructor } from '@soma/contracts';
import { Fernet } from '@soma/fernet';
import { cliChannelCredentials } from '../grpc-credentials.js';

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/** One call to soma.secrets.v1.SecretsService with the operator's credential. */
async function callSecrets(address: string, credential: string, method: string, request: unknown, deadlineMs: number): Promise<unknown> {
  const Ctor = grpcClientConstructor('secrets');
  const client = new Ctor(address, cliChannelCredentials());
  const md = new grpc.Metadata();
  md.set('authorization', /^bearer\s/i.test(credential) ? credential : `Bearer ${credential}`);
  md.set('x-request-id', randomUUID());
  try {
    return await new Promise((resolve, reject) => {
      (client as unknown as Record<string, Unary>)[method]!.call(client, request, md, { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => (err ? reject(new Error(err.details || err.message)) : resolve(res)));
    });
  } finally {
    client.close();
  }
}

function credentialFrom(opts: { credential?: string }): string {
  const credential = opts.credential ?? process.env['SOMA_CREDENTIAL'];
  if (!credential) throw new Error('a credential is required: --credential or SOMA_CREDENTIAL (needs scope secrets:admin or secret:rotate)');
  return credential;
}

/** `soma secrets generate-key | rotate-key | list`. */
export function register(program: Command): void {
  const secrets = program.command('secrets').description('the secrets service: Fernet keys, rotation, listing');
  secrets
    .command('generate-key')
    .description('print a new Fernet key (URL-safe base64 of 32 random bytes) for FERNET_KEY')
    .action(() => {
      process.stdout.write(`${Fernet.generateKey()}\n`);
    });
  secrets
    .command('rotate-key')
    .description('re-encrypt every stored secret under the newest FERNET_KEY (resumable; run again after an interruption)')
    .option('--address <host:port>', 'secrets gRPC address', process.env['SECRETS_GRPC_ADDRESS'] ?? '127.0.0.1:20040')
    .option('--credential <bearer>', 'operator credential (default: $SOMA_CREDENTIAL)')
    .option('--max-secrets <n>', 'stop after about this many secrets (0 = until done)', '0')
    .action(async (opts: { address: string; credential?: string; maxSecrets: string }) => {
      const res = await callSecrets(opts.address, credentialFrom(opts), 'RotateEncryptionKey', { max_secrets: Number(opts.maxSecrets) }, 10 * 60_000);
      process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    });
  secrets
    .command('list')
    .description('names and metadata of stored secrets (never values)')
    .option('--address <host:port>', 'secrets gRPC address', process.env['SECRETS_GRPC_ADDRESS'] ?? '127.0.0.1:20040')
    .option('--credential <bearer>', 'credential with secret:read (default: $SOMA_CREDENTIAL)')
    .option('--prefix <prefix>', 'only names starting with this', '')
    .action(async (opts: { address: string; credential?: string; prefix: string }) => {
      let pageToken = '';
      do {
        const page = (await callSecrets(opts.address, credentialFrom(opts), 'ListSecrets', { prefix: opts.prefix, page_size: 500, page_token: pageToken }, 30_000)) as {
          secrets: { name: string; version: number; updated_at: string; key_id: string; kind: string }[];
          next_page_token: string;
        };
        for (const s of page.secrets) process.stdout.write(`${s.name}\tv${s.version}\t${s.kind}\t${s.updated_at}\tkey ${s.key_id}\n`);
        pageToken = page.next_page_token;
      } while (pageToken);
    });
}
