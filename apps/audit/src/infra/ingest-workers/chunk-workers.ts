import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from '@soma/observability';
import type { IncomingMessage } from '../../domain/audit-ingest.js';
import { packValues, rowsFromWorker, type ChunkReply, type ChunkRequest, type ChunkWorkerData, type IndexedReject, type ProtectReply, type StoreReply } from './chunk-protocol.js';

/**
 * The chunk a worker held is gone (the worker died and was replaced). Not retried: the lane is dropped and the
 * consumer rebuilt, so the chunk is fetched again from the committed offset.
 */
export class ChunkWorkerLostError extends Error {
  override readonly name = 'ChunkWorkerLostError';
}

/**
 * The worker's entry beside this file. Built, it is JavaScript. Run from the TypeScript sources (the integration
 * suites start the service in-process under vitest), the thread first registers tsx to load them (Node 20 does not
 * pass `--import` hooks on to a worker's entry module).
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_ENTRY = new URL(FROM_SOURCE ? './chunk-worker.ts' : './chunk-worker.js', import.meta.url);
const workerOf = (options: WorkerOptions): Worker =>
  FROM_SOURCE
    ? new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_ENTRY.href)}); })`, { ...options, eval: true })
    : new Worker(WORKER_ENTRY, options);

const RESPAWN_DELAY_MS = 1000;

/** Requests the worker replies to (all but `release`). */
type AnsweredRequest = Exclude<ChunkRequest, { op: 'release' }>;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

export interface ChunkWorkersOptions {
  count: number;
  data: ChunkWorkerData;
  logger: Logger;
}

/**
 * The chunk workers of one ingest instance (ADR 0410) and the requests to them. A lane is bound to one worker
 * (`assign`) for as long as it lives, so its chunks are protected and stored by the thread that holds them. A
 * worker that dies is replaced after a second; what it held is reported lost to whoever asks for it.
 */
export class ChunkWorkers {
  private slots: Array<Slot | undefined> = [];
  private nextId = 1;
  private nextHandle = 1;
  private nextSlot = 0;
  private closing = false;

  constructor(private readonly o: ChunkWorkersOptions) {}

  /** Start the workers (again, after `close`). */
  start(): void {
    this.closing = false;
    for (let i = 0; i < this.o.count; i++) if (!this.slots[i]) this.spawn(i);
  }

  private spawn(index: number): void {
    const worker = workerOf({ workerData: this.o.data, name: `audit-chunk-worker-${index}` });
    const slot: Slot = { worker, pending: new Map() };
    this.slots[index] = slot;
    worker.on('message', (reply: ChunkReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      slot.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.value);
      else {
        const { message, code, lost } = reply.error;
        p.reject(lost ? new ChunkWorkerLostError(message) : Object.assign(new Error(message), code ? { code } : {}));
      }
    });
    worker.on('error', (e) => this.o.logger.error({ worker: index, reason: e.message }, 'audit chunk worker failed'));
    worker.on('exit', (code) => {
      // A worker ended by `close` is no longer in its slot: only a current one is replaced.
      const current = this.slots[index] === slot;
      if (current) this.slots[index] = undefined;
      for (const p of slot.pending.values()) p.reject(new ChunkWorkerLostError(`chunk worker ${index} exited (${code})`));
      slot.pending.clear();
      if (current && !this.closing) {
        this.o.logger.error({ worker: index, exit_code: code }, 'audit chunk worker exited; replacing it (the chunks it held are fetched again)');
        // After a pause: a worker that cannot start at all must not be respawned in a tight loop.
        setTimeout(() => {
          if (!this.closing && !this.slots[index]) this.spawn(index);
        }, RESPAWN_DELAY_MS).unref();
      }
    });
  }

  /** The worker of a new lane: round robin, so lanes spread evenly whatever their partition numbers. */
  assign(): number {
    const slot = this.nextSlot;
    this.nextSlot = (this.nextSlot + 1) % this.o.count;
    return slot;
  }

  private request<T>(slot: number, request: AnsweredRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    const s = this.slots[slot];
    if (!s) return Promise.reject(new ChunkWorkerLostError(`chunk worker ${slot} is not running`));
    return this.send<T>(s, request, transfer);
  }

  /** Post a request that the worker answers; its exit rejects what is still open. */
  private send<T>(s: Slot, request: AnsweredRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      s.pending.set(request.id, { resolve: resolve as (v: unknown) => void, reject });
      s.worker.postMessage(request, transfer);
    });
  }

  /** Stage 1 on the lane's worker: classify and protect; the chunk stays there under the returned handle until `release`. */
  async protect(slot: number, messages: readonly IncomingMessage[]): Promise<{ handle: number; rejected: IndexedReject[] }> {
    const handle = this.nextHandle++;
    const values = packValues(messages.map((m) => m.value));
    const reply = await this.request<ProtectReply>(slot, { op: 'protect', id: this.nextId++, handle, values }, [values.bytes, values.lengths.buffer as ArrayBuffer]);
    return { handle, rejected: reply.rejected };
  }

  /** Stage 2 on the lane's worker: store the chunk held under `handle` in one chain transaction (may be retried). */
  async store(slot: number, handle: number, chain: number, wantRows: boolean): Promise<StoreReply> {
    const reply = await this.request<StoreReply>(slot, { op: 'store', id: this.nextId++, handle, chain, wantRows });
    if (reply.rows) rowsFromWorker(reply.rows);
    return reply;
  }

  /** The chunk is done with (stored, or dropped with its lane). */
  release(slot: number, handle: number): void {
    this.slots[slot]?.worker.postMessage({ op: 'release', handle } satisfies ChunkRequest);
  }

  /** Close the workers' pools and end them; requests still open are reported lost. */
  async close(): Promise<void> {
    this.closing = true;
    const slots = this.slots.filter((s): s is Slot => s !== undefined);
    this.slots = [];
    await Promise.all(
      slots.map(async (s) => {
        const closed = this.send(s, { op: 'close', id: this.nextId++ }).catch(() => undefined); // an exit closes too
        await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
        await s.worker.terminate();
      }),
    );
  }
}
