import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Fernet } from '@soma/fernet';
import { REPO_ROOT } from '../support/infra.js';

const run = promisify(execFile);

/** `npx soma secrets generate-key` (bin/soma.js → the built CLI; npm test builds it first). */
describe('npx soma secrets generate-key', () => {
  it('prints a fresh 32-byte URL-safe base64 key that Node and Python Fernet both accept', async () => {
    const keys = await Promise.all([0, 1].map(async () => (await run(process.execPath, ['bin/soma.js', 'secrets', 'generate-key'], { cwd: REPO_ROOT, timeout: 60_000 })).stdout));
    for (const out of keys) {
      expect(out).toMatch(/^[A-Za-z0-9_-]{43}=\n$/);
      expect(Buffer.from(out.trim(), 'base64url')).toHaveLength(32);
    }
    const [a, b] = keys.map((k) => k.trim()) as [string, string];
    expect(a).not.toBe(b);
    const token = new Fernet(a).encrypt('from the generated key');
    const py = spawnSync('python3', ['-c', 'import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())', a, token], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(py.stdout.trim()).toBe('from the generated key');
  });
});
