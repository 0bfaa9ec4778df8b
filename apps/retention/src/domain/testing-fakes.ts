import type { Clock, RetentionEvent, RetentionEvents, RetentionMetrics } from './ports.js';

/** Test doubles for the domain's cross-cutting ports (used by *.spec.ts only). */
export class FakeClock implements Clock {
  slept = 0;
  constructor(public t = new Date('2026-12-04T12:00:00Z').getTime(), private readonly stepMs = 1) {}
  now(): Date {
    this.t += this.stepMs;
    return new Date(this.t);
  }
  async sleep(ms: number): Promise<void> {
    this.slept += ms;
    this.t += ms;
  }
}

export class FakeEvents implements RetentionEvents {
  readonly published: RetentionEvent[] = [];
  down: string | null = null;
  publish(event: RetentionEvent): void {
    if (this.down) throw new Error(this.down);
    this.published.push(event);
  }
  unavailableReason(): string | null {
    return this.down;
  }
}

export class FakeMetrics implements RetentionMetrics {
  readonly deleted: Array<[string, number]> = [];
  readonly runs: Array<[string, string]> = [];
  readonly gdprCalls: Array<[string, string]> = [];
  rowsDeleted(policy: string, _table: string, rows: number): void {
    this.deleted.push([policy, rows]);
  }
  batch(): void {}
  run(policy: string, outcome: string): void {
    this.runs.push([policy, outcome]);
  }
  gdpr(kind: string, outcome: string): void {
    this.gdprCalls.push([kind, outcome]);
  }
}
