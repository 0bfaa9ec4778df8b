import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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

  it('carries the events of a buffer written by the earlier layout over, in order', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'soma-buf-')), 'b.sqlite');
    const old = new Database(path);
    old.exec('CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL, created_at INTEGER NOT NULL)');
    const insert = old.prepare('INSERT INTO outbox (id, key, value, headers, created_at) VALUES (?, ?, ?, ?, ?)');
    for (const i of [1, 2, 3]) insert.run(`id-${i}`, 'acme', Buffer.from(`{"n":${i}}`), '{"a":"b"}', i);
    old.prepare('DELETE FROM outbox WHERE seq = 1').run();
    old.close();
    const b = new DurableEventBuffer(path, 10);
    b.append(ev(4));
    expect(b.depth).toBe(3);
    expect(b.peek(10).map((e) => e.id)).toEqual(['id-2', 'id-3', 'id-4']);
    b.close();
    const again = new DurableEventBuffer(path, 10);
    expect(again.peek(10).map((e) => e.id)).toEqual(['id-2', 'id-3', 'id-4']);
    again.close();
  });

  it('never hands out a sequence number at or below one in flight, also when everything was acknowledged', () => {
    const b = new DurableEventBuffer(':memory:', 10);
    for (let i = 0; i < 3; i++) b.append(ev(i));
    const batch = b.peek(10);
    b.append(ev(3)); // arrives while the batch is being sent
    b.acknowledge(batch[batch.length - 1]!.seq);
    expect(b.peek(10).map((e) => e.id)).toEqual(['id-3']);
    b.acknowledge(b.peek(10)[0]!.seq);
    expect(b.depth).toBe(0);
    b.append(ev(5));
    const next = b.peek(10);
    b.append(ev(6));
    b.acknowledge(next[0]!.seq);
    expect(b.peek(10).map((e) => e.id)).toEqual(['id-6']);
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
