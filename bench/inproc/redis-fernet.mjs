// Baseline "storage + crypto limit" for GetSecret: read the stored token from Redis (HGET of the same
// hash field the service reads) and Fernet-decrypt it with the suite's Fernet (dist/libs/fernet), in
// one process, `concurrency` in flight. Params: {fernetModule, redisUrl, keys, fernetKey, concurrency, durationS, warmupS}.
import { Redis } from 'ioredis';
import { measure } from './loop.mjs';

const p = JSON.parse(process.argv[2]);
const { Fernet } = await import(p.fernetModule); // the suite's own Fernet, from the harness's dist snapshot
const redis = new Redis(p.redisUrl ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: false, lazyConnect: true });
await redis.connect();
const fernet = new Fernet(p.fernetKey);
const res = await measure(
  async (n) => {
    const token = await redis.hget(p.keys[n % p.keys.length], 'token');
    if (!token) throw new Error('missing');
    fernet.decrypt(token);
  },
  { concurrency: p.concurrency ?? 50, durationS: p.durationS, warmupS: p.warmupS },
);
await redis.quit();
process.stdout.write(JSON.stringify({ ...res, note: `ioredis HGET token + Fernet.decrypt, ${p.keys.length} secrets round-robin, ${p.concurrency ?? 50} in flight` }) + '\n');
