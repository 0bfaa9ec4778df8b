import { fetchPolicySet, type OpaHttpClient, type PolicySetView } from './opa-http-evaluator.js';
import type { OpaWasmEvaluator } from './opa-wasm-evaluator.js';

export interface PolicyWatcherListener {
  /** First sight of a policy set (start, or the engine back after an outage). */
  observed(revision: string): void;
  /** The policy set changed (reload) or the engine became unreachable (revision null). */
  changed(revision: string | null, policies: string[]): void;
}

/**
 * Detects policy reloads without restarting authz. Server mode: fingerprints OPA's loaded modules
 * (GET /v1/policies) every interval. Wasm mode: re-reads the compiled file when it changes.
 * Any change clears the decision cache through the listener.
 */
export class PolicyWatcher {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private current: PolicySetView | null = null;
  private raw = new Map<string, string>();
  private lastError: string | null = null;

  constructor(
    private readonly source: { kind: 'server'; client: OpaHttpClient } | { kind: 'wasm'; evaluator: OpaWasmEvaluator; path: string },
    private readonly intervalMs: number,
    private readonly listener: PolicyWatcherListener,
  ) {}

  /** What is loaded now, for the read-only HTTP view. */
  view(): { mode: 'server' | 'wasm'; revision: string | null; policies: PolicySetView['policies']; error: string | null } {
    return { mode: this.source.kind, revision: this.current?.revision ?? null, policies: this.current?.policies ?? [], error: this.lastError };
  }

  policyText(id: string): string | undefined {
    return this.raw.get(id);
  }

  get healthy(): boolean {
    return this.current !== null;
  }

  async start(): Promise<void> {
    this.running = true;
    await this.poll();
    const tick = async () => {
      if (!this.running) return;
      await this.poll();
      if (this.running) this.timer = setTimeout(tick, this.intervalMs);
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  async poll(): Promise<void> {
    let next: PolicySetView & { raw?: Map<string, string> };
    try {
      if (this.source.kind === 'server') {
        next = await fetchPolicySet(this.source.client);
      } else {
        await this.source.evaluator.load();
        next = { revision: this.source.evaluator.revision, policies: this.source.evaluator.loadedEntrypoints.map((id) => ({ id: `${this.source.kind === 'wasm' ? this.source.path : ''}#${id}`, bytes: 0, sha256: '' })) };
      }
      this.lastError = null;
    } catch (e) {
      this.lastError = (e as Error).message.slice(0, 200);
      if (this.current !== null) {
        this.current = null;
        this.raw.clear();
        this.listener.changed(null, []);
      }
      return;
    }
    const previous = this.current;
    this.current = next;
    if (next.raw) this.raw = next.raw;
    if (previous === null) this.listener.observed(next.revision);
    else if (previous.revision !== next.revision) this.listener.changed(next.revision, next.policies.map((p) => p.id));
  }
}
