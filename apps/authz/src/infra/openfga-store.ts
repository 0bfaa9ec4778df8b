import {
  ConsistencyPreference,
  CredentialsMethod,
  FgaApiValidationError,
  OpenFgaClient,
  type ClientReadChangesRequest,
} from '@openfga/sdk';
import { RelationshipRequestInvalid, RelationshipStoreUnavailable, type RelationshipStore, type RelationshipTuple } from '../domain/ports.js';

export interface OpenFgaStoreOptions {
  apiUrl: string;
  storeId: string;
  modelId?: string;
  timeoutMs: number;
  listObjectsMaxResults: number;
}

export function createOpenFgaClient(o: { apiUrl: string; storeId?: string; modelId?: string; timeoutMs: number }): OpenFgaClient {
  return new OpenFgaClient({
    apiUrl: o.apiUrl,
    storeId: o.storeId || undefined,
    authorizationModelId: o.modelId || undefined,
    credentials: { method: CredentialsMethod.None },
    // One quick retry: a decision is on a caller's hot path and a deny is the fallback anyway.
    retryParams: { maxRetry: 1, minWaitInMs: 25 },
    baseOptions: { headers: {}, timeout: o.timeoutMs },
  });
}

function translate(e: unknown): Error {
  if (e instanceof FgaApiValidationError) return new RelationshipRequestInvalid(`OpenFGA refused the request: ${e.apiErrorMessage ?? e.message}`.slice(0, 300));
  return new RelationshipStoreUnavailable(((e as Error)?.message ?? String(e)).slice(0, 300));
}

/** RelationshipStore on the real OpenFGA server through @openfga/sdk. */
export class OpenFgaRelationshipStore implements RelationshipStore {
  readonly client: OpenFgaClient;

  constructor(private readonly o: OpenFgaStoreOptions) {
    this.client = createOpenFgaClient(o);
  }

  private consistency(fresh: boolean): ConsistencyPreference {
    return fresh ? ConsistencyPreference.HigherConsistency : ConsistencyPreference.MinimizeLatency;
  }

  async check(t: RelationshipTuple, fresh: boolean): Promise<boolean> {
    try {
      const r = await this.client.check({ user: t.user, relation: t.relation, object: t.object }, { consistency: this.consistency(fresh) });
      return r.allowed === true;
    } catch (e) {
      throw translate(e);
    }
  }

  async batchCheck(items: { id: string; tuple: RelationshipTuple }[], fresh: boolean): Promise<Map<string, boolean | Error>> {
    let r;
    try {
      r = await this.client.batchCheck(
        { checks: items.map((i) => ({ user: i.tuple.user, relation: i.tuple.relation, object: i.tuple.object, correlationId: i.id })) },
        { consistency: this.consistency(fresh), maxBatchSize: 50 },
      );
    } catch (e) {
      throw translate(e);
    }
    const out = new Map<string, boolean | Error>();
    for (const item of r.result) {
      out.set(item.correlationId, item.error ? new RelationshipStoreUnavailable(item.error.message ?? 'check failed') : item.allowed === true);
    }
    return out;
  }

  async listObjects(user: string, relation: string, type: string, fresh: boolean): Promise<{ objects: string[]; truncated: boolean }> {
    const started = Date.now();
    try {
      const r = await this.client.listObjects({ user, relation, type }, { consistency: this.consistency(fresh) });
      const objects = r.objects ?? [];
      // OpenFGA cuts ListObjects at --listObjects-max-results (or its deadline) without saying so;
      // a result that reaches the cap, or that took as long as our own deadline, may be partial.
      const truncated = objects.length >= this.o.listObjectsMaxResults || Date.now() - started >= this.o.timeoutMs;
      return { objects, truncated };
    } catch (e) {
      throw translate(e);
    }
  }

  async write(tuples: RelationshipTuple[]): Promise<void> {
    try {
      await this.client.write({ writes: tuples.map((t) => ({ user: t.user, relation: t.relation, object: t.object })) }, { transaction: { disable: false, maxPerChunk: 100 } });
    } catch (e) {
      throw translate(e);
    }
  }

  async delete(tuples: RelationshipTuple[]): Promise<void> {
    try {
      await this.client.write({ deletes: tuples.map((t) => ({ user: t.user, relation: t.relation, object: t.object })) }, { transaction: { disable: false, maxPerChunk: 100 } });
    } catch (e) {
      throw translate(e);
    }
  }
}

/**
 * Follows OpenFGA's change feed (ReadChanges) from the moment it starts: every page with changes,
 * and every failure to read it, calls `onChange` so relationship answers cached by this instance
 * never outlive a write made through any instance (or directly against OpenFGA).
 */
export class OpenFgaChangeFeed {
  private token: string | undefined;
  /** Fixed when following starts and kept until OpenFGA hands out a token (it gives none while the feed is empty). */
  private readonly since = new Date().toISOString();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private healthy = false;

  constructor(
    private readonly client: OpenFgaClient,
    private readonly intervalMs: number,
    private readonly onChange: (why: 'changes' | 'feed_unavailable', count: number) => void,
  ) {}

  get isHealthy(): boolean {
    return this.healthy;
  }

  start(): void {
    this.running = true;
    const tick = async () => {
      if (!this.running) return;
      await this.poll();
      if (this.running) this.timer = setTimeout(tick, this.intervalMs);
    };
    void tick();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One read of the feed to its current end. Exposed for tests. */
  async poll(): Promise<void> {
    try {
      let count = 0;
      for (let page = 0; page < 100; page++) {
        const r = await this.client.readChanges(
          (this.token ? undefined : { startTime: this.since }) as ClientReadChangesRequest | undefined,
          { pageSize: 100, continuationToken: this.token },
        );
        const changes = r.changes ?? [];
        count += changes.length;
        if (r.continuation_token) this.token = r.continuation_token;
        if (changes.length < 100) break;
      }
      if (count > 0 || !this.healthy) this.onChange('changes', count);
      this.healthy = true;
    } catch {
      if (this.healthy) this.onChange('feed_unavailable', 0);
      this.healthy = false;
    }
  }
}
