import { randomFillSync } from 'node:crypto';

/*
 * UUIDv7 decision ids (RFC 9562: 48-bit Unix ms, version 7, 12-bit sequence, variant 10, 62 random bits).
 * Minted on every decision, so made from a pooled random buffer: `uuid`'s v7 draws fresh randomness per call
 * and costs more than the rest of a cached CheckTool. Ids are monotonic within the process (the sequence
 * orders ids of one millisecond; it borrows the next millisecond when it overflows).
 */
const POOL = Buffer.allocUnsafe(4096);
let offset = POOL.length;
let lastMs = -1;
let seq = 0;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function randomBytes(n: number): number {
  if (offset + n > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return at;
}

export function newDecisionId(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    const r = randomBytes(1);
    seq = POOL[r]! << 2; // random start in the lower half leaves room to count up
  } else if (++seq > 0xfff) {
    lastMs++;
    seq = 0;
  }
  const ms = lastMs;
  const r = randomBytes(8);
  const hi = Math.floor(ms / 0x1000000); // top 24 bits of the 48-bit timestamp
  const lo = ms % 0x1000000;
  return (
    HEX[(hi >>> 16) & 0xff]! + HEX[(hi >>> 8) & 0xff]! + HEX[hi & 0xff]! + HEX[(lo >>> 16) & 0xff]! + '-' +
    HEX[(lo >>> 8) & 0xff]! + HEX[lo & 0xff]! + '-' +
    HEX[0x70 | (seq >>> 8)]! + HEX[seq & 0xff]! + '-' +
    HEX[0x80 | (POOL[r]! & 0x3f)]! + HEX[POOL[r + 1]!]! + '-' +
    HEX[POOL[r + 2]!]! + HEX[POOL[r + 3]!]! + HEX[POOL[r + 4]!]! + HEX[POOL[r + 5]!]! + HEX[POOL[r + 6]!]! + HEX[POOL[r + 7]!]!
  );
}
