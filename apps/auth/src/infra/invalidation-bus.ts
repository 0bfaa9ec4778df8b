import type { Redis } from 'ioredis';
import type { Logger } from '@soma/observability';

export type Invalidation =
  | { kind: 'jti'; jti: string; until: number }
  | { kind: 'subject'; tenant: string; sub: string; cutoff: number; until: number }
  | { kind: 'api_key'; hash: string }
  | { kind: 'signing_keys' }
  | { kind: 'heartbeat' };

const HEARTBEAT = JSON.stringify({ kind: 'heartbeat' } satisfies Invalidation);

/**
 * Redis pub/sub channel every instance listens to. `inSync` is true only while the subscription is
 * live and the listeners have rebuilt their state after (re)subscribing; while it is false, caches are
 * dropped and every check goes to Redis. Messages are applied idempotently, so a message that races
 * with a snapshot load is harmless.
 */
export class InvalidationBus {
  private synced = false;
  private readonly handlers: Array<(m: Invalidation) => void> = [];
  private readonly resyncers: Array<() => Promise<void>> = [];
  private readonly dropHandlers: Array<() => void> = [];
  private generation = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastMessageAt = 0;

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly logger: Logger,
    /**
     * Every instance publishes a heartbeat this often; a subscription that has heard nothing for three
     * periods is treated as lost (caches dropped, per-call Redis checks) even if its TCP connection looks
     * alive: a silent partition cannot keep a stale mirror trusted. 0 = off.
     */
    private readonly heartbeatMs = 0,
  ) {}

  get inSync(): boolean {
    return this.synced;
  }

  onMessage(handler: (m: Invalidation) => void): void {
    this.handlers.push(handler);
  }

  /** Rebuild local state from Redis after (re)subscribing. */
  onResync(fn: () => Promise<void>): void {
    this.resyncers.push(fn);
  }

  /** Drop local state: the mirror is no longer known to be exact. */
  onDrop(fn: () => void): void {
    this.dropHandlers.push(fn);
  }

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== this.channel) return;
      this.lastMessageAt = Date.now();
      let m: Invalidation;
      try {
        m = JSON.parse(raw) as Invalidation;
      } catch {
        return;
      }
      for (const h of this.handlers) h(m);
    });
    const lost = () => {
      if (this.synced) this.logger.warn('invalidation channel lost: caches dropped, checking Redis on every call');
      this.synced = false;
      this.generation++;
      for (const d of this.dropHandlers) d();
    };
    if (this.heartbeatMs > 0) {
      let lastTick = Date.now();
      this.heartbeatTimer = setInterval(() => {
        const now = Date.now();
        // A late tick means this process was blocked (GC, CPU starvation), not that the channel went
        // quiet: messages may be waiting unread in the socket. Start counting again instead of dropping.
        if (now - lastTick > 1.5 * this.heartbeatMs) this.lastMessageAt = Math.max(this.lastMessageAt, now);
        lastTick = now;
        if (this.synced && now - this.lastMessageAt > 3 * this.heartbeatMs) {
          this.logger.warn({ silent_ms: Date.now() - this.lastMessageAt }, 'invalidation channel silent: treating it as lost and reconnecting');
          lost();
          this.subscriber.disconnect(true);
        }
        this.publisher.publish(this.channel, HEARTBEAT).catch(() => undefined);
      }, this.heartbeatMs);
      this.heartbeatTimer.unref();
    }
    this.subscriber.on('close', lost);
    this.subscriber.on('end', lost);
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('ready', () => void this.resubscribe());
    if (this.subscriber.status === 'wait') await this.subscriber.connect();
    else if (this.subscriber.status === 'ready') await this.resubscribe();
  }

  private async resubscribe(): Promise<void> {
    const gen = ++this.generation;
    try {
      await this.subscriber.subscribe(this.channel);
      for (const d of this.dropHandlers) d();
      for (const r of this.resyncers) await r();
      if (gen === this.generation) {
        this.lastMessageAt = Date.now();
        this.synced = true;
        this.logger.info('invalidation channel in sync');
      }
    } catch (e) {
      // E.g. the subscriber reconnected before the command connection did: retry while this
      // subscription is still the current one, instead of staying on per-call checks for good.
      this.logger.warn({ reason: (e as Error).message }, 'could not resync the invalidation channel; per-call Redis checks until it succeeds');
      if (gen === this.generation && !this.stopped) {
        this.retryTimer = setTimeout(() => {
          if (gen === this.generation && !this.stopped && this.subscriber.status === 'ready') void this.resubscribe();
        }, 250);
        this.retryTimer.unref();
      }
    }
  }

  async publish(m: Invalidation): Promise<void> {
    await this.publisher.publish(this.channel, JSON.stringify(m));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.synced = false;
    await this.subscriber.quit().catch(() => undefined);
  }
}
