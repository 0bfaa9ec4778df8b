import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../domain/ports.js';

export class SystemClock implements Clock {
  now(): Date {
    return new Date();
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    await delay(ms, undefined, { signal }).catch(() => undefined);
  }
}
