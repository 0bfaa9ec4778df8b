import type { Pool, PoolClient } from './pool.js';

export interface PgListener {
  stop(): Promise<void>;
}

export interface ListenOptions {
  /** A notification's payload (what `pg_notify(channel, payload)` sent). */
  onNotify: (payload: string) => void;
  /** The connection failed or could not be opened; the listener retries by itself. */
  onError?: (e: Error) => void;
  /** First retry delay; doubles up to 10 s. */
  retryMs?: number;
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * LISTEN on `channel` over one connection taken from `pool` for as long as the listener runs. A failed connection
 * (server restart, network) is dropped and replaced, with backoff. Notifications sent while no connection listens
 * are lost: PostgreSQL does not queue them for absent listeners, so a caller keeps a slower poll as its net.
 */
export function listen(pool: Pool, channel: string, o: ListenOptions): PgListener {
  // LISTEN takes no bind parameters: the channel is a fixed identifier of ours, checked and quoted.
  if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${JSON.stringify(channel)}`);
  let client: PoolClient | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let delay = o.retryMs ?? 500;

  const onNotification = (msg: { channel: string; payload?: string }) => {
    if (msg.channel === channel) o.onNotify(msg.payload ?? '');
  };
  const drop = (c: PoolClient, e?: Error) => {
    c.off('notification', onNotification);
    c.removeAllListeners('error');
    c.on('error', () => undefined); // a late error on a released client must not crash the process
    c.release(e ?? true); // destroyed, never back in the pool with a LISTEN on it
  };
  const retry = (e: Error) => {
    o.onError?.(e);
    if (stopped) return;
    timer = setTimeout(() => void connect(), delay);
    timer.unref();
    delay = Math.min(delay * 2, 10_000);
  };
  const connect = async () => {
    timer = undefined;
    let c: PoolClient | undefined;
    try {
      c = await pool.connect();
      c.on('notification', onNotification);
      c.on('error', (e: Error) => {
        if (client !== c) return;
        client = undefined;
        drop(c!, e);
        retry(e);
      });
      await c.query(`LISTEN ${c.escapeIdentifier(channel)}`);
      if (stopped) return drop(c);
      client = c;
      delay = o.retryMs ?? 500;
    } catch (e) {
      if (c && client !== c) drop(c, e as Error);
      retry(e as Error);
    }
  };
  void connect();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      if (c) drop(c);
    },
  };
}
