import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CredentialsMethod, OpenFgaClient, type WriteAuthorizationModelRequest } from '@openfga/sdk';

export interface OpenFgaInitResult {
  storeId: string;
  modelId: string;
  created: boolean;
}

/**
 * Create an OpenFGA store (or reuse `storeId`) and write the authorization model to it. The model is
 * the JSON form of infra/openfga/model.fga (infra/openfga/model.json, kept in sync by a unit test).
 */
export async function initOpenFga(options: { apiUrl: string; storeName: string; modelPath: string; storeId?: string }): Promise<OpenFgaInitResult> {
  const model = JSON.parse(await readFile(options.modelPath, 'utf8')) as WriteAuthorizationModelRequest;
  const admin = new OpenFgaClient({ apiUrl: options.apiUrl, credentials: { method: CredentialsMethod.None }, retryParams: { maxRetry: 2, minWaitInMs: 100 } });
  let storeId = options.storeId;
  let created = false;
  if (!storeId) {
    storeId = (await admin.createStore({ name: options.storeName })).id;
    created = true;
  }
  const written = await admin.writeAuthorizationModel(model, { storeId });
  return { storeId, modelId: written.authorization_model_id, created };
}

/** `soma authz openfga init`. */
export function register(program: Command): void {
  const authz = program.command('authz').description('authorization: OPA policies and OpenFGA relationships');
  const fga = authz.command('openfga').description('the OpenFGA relationship store');
  fga
    .command('init')
    .description('create a store (unless --store-id is given), write the model, print the ids to put in config')
    .option('--api-url <url>', 'OpenFGA HTTP API', process.env['OPENFGA_API_URL'] ?? 'http://127.0.0.1:8080')
    .option('--name <name>', 'name of the new store', 'soma')
    .option('--store-id <id>', 'write the model into this existing store instead of creating one')
    .option('--model <file>', 'authorization model (JSON form of model.fga)', 'infra/openfga/model.json')
    .action(async (opts: { apiUrl: string; name: string; storeId?: string; model: string }) => {
      const r = await initOpenFga({ apiUrl: opts.apiUrl, storeName: opts.name, modelPath: resolve(opts.model), storeId: opts.storeId });
      process.stdout.write(`${r.created ? 'created store' : 'updated store'}; put these in the authz config (apps/authz/dev.env):\n`);
      process.stdout.write(`OPENFGA_STORE_ID=${r.storeId}\nOPENFGA_MODEL_ID=${r.modelId}\n`);
    });
}
