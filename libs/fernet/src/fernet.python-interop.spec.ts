import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Fernet, InvalidTokenError, MultiFernet } from './fernet.js';

/**
 * Interoperability with the Fernet of Python's `cryptography` package, which the platform uses
 * today. Python is run with an argument array (no shell); keys and tokens travel on stdin as JSON.
 */
const PYTHON = `
import json, sys
from cryptography.fernet import Fernet, MultiFernet, InvalidToken
req = json.load(sys.stdin)
op = req["op"]
if op == "encrypt":
    out = [Fernet(req["key"].encode()).encrypt(p.encode()).decode() for p in req["plaintexts"]]
elif op == "decrypt":
    out = []
    for t in req["tokens"]:
        try:
            out.append(Fernet(req["key"].encode()).decrypt(t.encode(), ttl=req.get("ttl")).decode())
        except InvalidToken:
            out.append(None)
elif op == "rotate":
    mf = MultiFernet([Fernet(k.encode()) for k in req["keys"]])
    out = [mf.rotate(t.encode()).decode() for t in req["tokens"]]
elif op == "generate_key":
    out = Fernet.generate_key().decode()
json.dump(out, sys.stdout)
`;

function python<T>(request: Record<string, unknown>): T {
  const result = spawnSync('python3', ['-c', PYTHON], { input: JSON.stringify(request), encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`python3 failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

const plaintexts = ['', 'hello', 'sk-soma-AbCdEfGh12345678wxyz', 'é∑ unicode ✓', 'x'.repeat(15), 'y'.repeat(16), 'z'.repeat(1000)];

describe('Fernet interop with Python cryptography', { timeout: 60_000 }, () => {
  it('decrypts in Python what Node encrypted', () => {
    const key = Fernet.generateKey();
    const f = new Fernet(key);
    const tokens = plaintexts.map((p) => f.encrypt(p));
    expect(python<(string | null)[]>({ op: 'decrypt', key, tokens, ttl: 3600 })).toEqual(plaintexts);
  });

  it('decrypts in Node what Python encrypted, and refuses it with another key', () => {
    const key = Fernet.generateKey();
    const tokens = python<string[]>({ op: 'encrypt', key, plaintexts });
    const f = new Fernet(key);
    expect(tokens.map((t) => f.decrypt(t, { ttlSeconds: 3600 }).toString('utf8'))).toEqual(plaintexts);
    const other = new Fernet(Fernet.generateKey());
    for (const t of tokens) expect(() => other.decrypt(t)).toThrow(InvalidTokenError);
  });

  it('uses keys Python generated, and Python uses keys Node generated', () => {
    const pyKey = python<string>({ op: 'generate_key' });
    const token = new Fernet(pyKey).encrypt('from node');
    expect(python<(string | null)[]>({ op: 'decrypt', key: pyKey, tokens: [token] })).toEqual(['from node']);
  });

  it('agrees with Python on MultiFernet rotation in both directions', () => {
    const [newKey, oldKey] = [Fernet.generateKey(), Fernet.generateKey()];
    const oldTokens = plaintexts.map((p) => new Fernet(oldKey).encrypt(p, { currentTime: 1_700_000_000 }));
    const rotatedByPython = python<string[]>({ op: 'rotate', keys: [newKey, oldKey], tokens: oldTokens });
    expect(rotatedByPython.map((t) => new Fernet(newKey).decrypt(t).toString('utf8'))).toEqual(plaintexts);
    expect(rotatedByPython.map((t) => new Fernet(newKey).extractTimestamp(t))).toEqual(plaintexts.map(() => 1_700_000_000));
    const rotatedByNode = oldTokens.map((t) => new MultiFernet([newKey, oldKey]).rotate(t));
    expect(python<(string | null)[]>({ op: 'decrypt', key: newKey, tokens: rotatedByNode })).toEqual(plaintexts);
    expect(python<(string | null)[]>({ op: 'decrypt', key: oldKey, tokens: rotatedByNode })).toEqual(plaintexts.map(() => null));
  });

  it('rejects in Python exactly what Node rejects: tampered tokens', () => {
    const key = Fernet.generateKey();
    const token = new Fernet(key).encrypt('value');
    const tampered = `${token.slice(0, 30)}${token[30] === 'A' ? 'B' : 'A'}${token.slice(31)}`;
    expect(python<(string | null)[]>({ op: 'decrypt', key, tokens: [tampered] })).toEqual([null]);
    expect(() => new Fernet(key).decrypt(tampered)).toThrow(InvalidTokenError);
  });
});
