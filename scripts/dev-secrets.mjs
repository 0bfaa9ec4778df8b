#!/usr/bin/env node
// Creates the local development secrets that apps/*/dev.env refer to, once, with strong random values.
// A value of the form `.local/secrets/<name>.<kind>` names a file to create if missing; the kind says its shape.
// Never prints a value. Production secrets come from Docker/Kubernetes secrets or Vault, never from here.
import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

const makers = {
  secret: () => randomBytes(48).toString('base64url'),
  password: () => Array.from({ length: 24 }, () => BASE62[randomInt(BASE62.length)]).join(''),
  fernet: () => randomBytes(32).toString('base64url') + '=',
  'ed25519.pem': () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
  'rsa.pem': () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
};

/** Every `.local/secrets/...` path mentioned in a dev.env file. */
function referencedSecretFiles() {
  const files = new Set();
  for (const app of readdirSync(join(root, 'apps'))) {
    const envFile = join(root, 'apps', app, 'dev.env');
    if (!existsSync(envFile)) continue;
    for (const line of readFileSync(envFile, 'utf8').split('\n')) {
      const match = /^[A-Z0-9_]+=(\.local\/secrets\/[\w.-]+)\s*$/.exec(line.trim());
      if (match) files.add(match[1]);
    }
  }
  return [...files];
}

let created = 0;
for (const rel of referencedSecretFiles()) {
  const path = join(root, rel);
  if (existsSync(path)) continue;
  const kind = Object.keys(makers).sort((a, b) => b.length - a.length).find((k) => rel.endsWith(`.${k}`));
  if (!kind) {
    process.stderr.write(`dev-secrets: ${rel} has no known kind (${Object.keys(makers).join(', ')})\n`);
    process.exit(2);
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, makers[kind](), { mode: 0o600 });
  chmodSync(path, 0o600);
  created += 1;
}
process.stdout.write(`dev-secrets: ${created} created, all present in .local/secrets\n`);
