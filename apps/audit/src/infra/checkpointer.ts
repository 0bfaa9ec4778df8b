import type { Logger } from '@soma/observability';
import type { CheckpointSigner } from '../domain/checkpoint.js';
import type { CheckpointStore } from '../domain/ports.js';

/** Every interval, sign the head of each chain that moved since its last checkpoint (ADR 0403). */
export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<number> | undefined;

  constructor(
    private readonly store: CheckpointStore,
    private readonly signer: CheckpointSigner,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce().catch((e: unknown) => this.logger.warn({ reason: (e as Error).message }, 'checkpoint failed; will retry')), this.intervalMs);
    this.timer.unref();
  }

  /** Sign every moved head now; resolves to the number of checkpoints written. */
  runOnce(): Promise<number> {
    this.busy ??= (async () => {
      try {
        const heads = await this.store.headsToCheckpoint();
        for (const h of heads) {
          await this.store.saveCheckpoint(this.signer.sign({ chain_partition: h.chain_partition, chain_seq: h.seq, hash: h.hash, row_timestamp: h.timestamp, signed_at: new Date() }));
        }
        return heads.length;
      } finally {
        this.busy = undefined;
      }
    })();
    return this.busy;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.busy?.catch(() => undefined);
  }
}
