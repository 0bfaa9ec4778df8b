import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DurableEventBuffer, EventBufferFullError } from './durable-event-buffer.js';

const ev = (i: number) => ({ id: `id-${i}`, key: 'acme', value: Buffer.from(`{"n":${i}}`), headers: { a: 'b' } });

describe('DurableEventBuffer', () => {
  it('keeps order, survives reopening and forgets only acknowledged events', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'soma-buf-')), 'b.sqlite');
    const b1 = new DurableEventBuffer(path, 100);
    for (let i = 0; i < 10; i++) b1.append(ev(i));
    const first = b1.peek(4);
    expect(first.map((e) => e.id)).toEqual(['id-0', 'id-1', 'id-2', 'id-3']);
    b1.acknowledge(first[3]!.seq);
    b1.close();
    const b2 = new DurableEventBuffer(path, 100);
    expect(b2.depth).toBe(6);
    expect(b2.peek(100).map((e) => e.id)).toEqual(['id-4', 'id-5', 'id-6', 'id-7', 'id-8', 'id-9']);
    expect(b2.peek(1)[0]!.headers).toEqual({ a: 'b' });
    b2.close();
  });

  it('ignores a second append of the same event id', () => {
    const b = new DurableEventBuffer(':memory:', 10);
    b.append(ev(1));
    b.append(ev(1));
    expect(b.depth).toBe(1);
    b.close();
  });

  it('refuses new events at its bound instead of dropping silently', () => {
    const b = new DurableEventBuffer(':memory:', 3);
    for (let i = 0; i < 3; i++) b.append(ev(i));
    expect(b.isFull).toBe(true);
    expect(() => b.append(ev(9))).toThrow(EventBufferFullError);
    b.acknowledge(b.peek(1)[0]!.seq);
    expect(() => b.append(ev(9))).not.toThrow();
    b.close();
  });

  it('cannot be opened by a second live owner', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'soma-buf-')), 'b.sqlite');
    const b1 = new DurableEventBuffer(path, 10);
    expect(() => new DurableEventBuffer(path, 10)).toThrow();
    b1.close();
  });
});
