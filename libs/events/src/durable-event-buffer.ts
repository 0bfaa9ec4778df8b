import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface BufferedEvent {
  seq: number;
  id: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

export class EventBufferFullError extends Error {
  constructor(readonly capacity: number) {
    super(`security event buffer is full (${capacity} events): Kafka has been unreachable too long; refusing new events`);
    this.name = 'EventBufferFullError';
  }
}

/**
 * A durable, bounded FIFO of events waiting for Kafka (an outbox), kept in SQLite.
 * Every event is written here before it is sent, so a crash or a broker outage never loses one;
 * rows are deleted only after Kafka acknowledged them (acks=all). The file is opened exclusively:
 * two live processes never drain the same buffer.
 */
export class DurableEventBuffer {
  private readonly db: Database.Database;
  private readonly insertStmt: Database.Statement;
  private readonly peekStmt: Database.Statement;
  private readonly deleteUpToStmt: Database.Statement;
  private readonly countStmt: Database.Statement;
  private depthCache: number;

  constructor(readonly path: string, readonly capacity: number, sync: 'normal' | 'full' = 'normal') {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { timeout: 2000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('locking_mode = EXCLUSIVE');
    // `seq` is the rowid (no AUTOINCREMENT, no unique index on `id`): an append is one b-tree insert, about a
    // third of the cost with both (measured on this machine class), and every service appends on its hot path.
    // Order is still strict: rows are deleted only up to an acknowledged `seq` while later rows exist, so a new
    // rowid is always above every row in flight. Duplicate ids (a re-published event) are harmless: audit stores
    // each event id once.
    this.db.exec(`CREATE TABLE IF NOT EXISTS events (
      seq INTEGER PRIMARY KEY,
      id TEXT NOT NULL,
      key TEXT NOT NULL,
      value BLOB NOT NULL,
      headers TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`);
    // A buffer written by an earlier version (table `outbox`): carry its events over, in order, once.
    const legacy = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get();
    if (legacy) {
      this.db.transaction(() => {
        this.db.exec('INSERT INTO events (id, key, value, headers, created_at) SELECT id, key, value, headers, created_at FROM outbox ORDER BY seq');
        this.db.exec('DROP TABLE outbox');
      })();
    }
    // Taking the write lock now makes a second process fail at start-up, not on its first event.
    this.db.exec('BEGIN IMMEDIATE; COMMIT;');
    this.insertStmt = this.db.prepare('INSERT INTO events (id, key, value, headers, created_at) VALUES (?, ?, ?, ?, ?)');
    this.peekStmt = this.db.prepare('SELECT seq, id, key, value, headers FROM events ORDER BY seq LIMIT ?');
    this.deleteUpToStmt = this.db.prepare('DELETE FROM events WHERE seq <= ?');
    this.countStmt = this.db.prepare('SELECT COUNT(*) AS n FROM events');
    this.depthCache = (this.countStmt.get() as { n: number }).n;
  }

  get depth(): number {
    return this.depthCache;
  }

  get isFull(): boolean {
    return this.depthCache >= this.capacity;
  }

  append(event: { id: string; key: string; value: Buffer; headers: Record<string, string> }): void {
    if (this.isFull) throw new EventBufferFullError(this.capacity);
    const info = this.insertStmt.run(event.id, event.key, event.value, JSON.stringify(event.headers), Date.now());
    this.depthCache += info.changes;
  }

  peek(limit: number): BufferedEvent[] {
    return (this.peekStmt.all(limit) as Array<{ seq: number; id: string; key: string; value: Buffer; headers: string }>).map(
      (r) => ({ ...r, headers: JSON.parse(r.headers) as Record<string, string> }),
    );
  }

  /** Forget every event up to and including `seq`, once Kafka has acknowledged them. */
  acknowledge(seq: number): void {
    const info = this.deleteUpToStmt.run(seq);
    this.depthCache -= info.changes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
