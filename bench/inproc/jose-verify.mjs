// Baseline "the crypto's limit": jose jwtVerify in one process, key imported once (KeyObject), over a
// set of distinct tokens signed here. Params: {alg, tokens, durationS, warmupS}.
import { createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { measure } from './loop.mjs';

const p = JSON.parse(process.argv[2]);
let signKey;
let verifyKey;
if (p.alg === 'HS256') {
  signKey = verifyKey = createSecretKey(randomBytes(32));
} else {
  const kp = generateKeyPairSync('rsa', { modulusLength: 2048 });
  signKey = kp.privateKey;
  verifyKey = kp.publicKey;
}
const tokens = [];
for (let i = 0; i < (p.tokens ?? 1000); i++) {
  tokens.push(
    await new SignJWT({ tenant: 'bench', persona_id: 'default', scopes: ['secrets:read'] })
      .setProtectedHeader({ alg: p.alg, kid: 'k1', typ: 'JWT' })
      .setSubject(`user-${i}`).setIssuer('soma-auth').setAudience('soma').setJti(`j-${i}`)
      .setIssuedAt().setExpirationTime('2h').sign(signKey),
  );
}
const opts = { algorithms: [p.alg], issuer: 'soma-auth', audience: 'soma' };
const res = await measure((n) => jwtVerify(tokens[n % tokens.length], verifyKey, opts), { concurrency: p.concurrency ?? 1, durationS: p.durationS, warmupS: p.warmupS });
const { createRequire } = await import('node:module');
const version = createRequire(import.meta.url)('jose/package.json').version;
process.stdout.write(JSON.stringify({ ...res, note: `jose ${version} jwtVerify ${p.alg}, ${tokens.length} distinct tokens, sequential` }) + '\n');
