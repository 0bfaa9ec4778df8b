import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import type { PolicyEvaluator, PolicyOutcome } from '../domain/ports.js';

/**
 * The same Rego, compiled by `opa build -t wasm`, evaluated in-process: no network hop and no OPA
 * server to fail. The file is reloaded when it changes (the build script rewrites it).
 */
export class OpaWasmEvaluator implements PolicyEvaluator {
  readonly mode = 'wasm' as const;
  private policy: LoadedPolicy | undefined;
  private entrypoints = new Set<string>();
  private fingerprint = '';
  private loadedRevision = '';
  private readonly encoder = new TextEncoder();

  constructor(private readonly wasmPath: string) {}

  get revision(): string {
    return this.loadedRevision;
  }

  get loadedEntrypoints(): string[] {
    return [...this.entrypoints];
  }

  /** Load or reload; returns true when a new policy was loaded. Throws when the file is missing or invalid. */
  async load(): Promise<boolean> {
    const s = await stat(this.wasmPath);
    const fingerprint = `${s.mtimeMs}:${s.size}`;
    if (fingerprint === this.fingerprint && this.policy) return false;
    const bytes = await readFile(this.wasmPath);
    const revision = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    this.fingerprint = fingerprint;
    if (revision === this.loadedRevision && this.policy) return false;
    const policy = await loadPolicy(bytes, { initial: 5, maximum: 1024 });
    const dataFile = join(dirname(this.wasmPath), 'data.json');
    const data = await readFile(dataFile, 'utf8').catch(() => undefined);
    if (data) policy.setData(JSON.parse(data) as object);
    this.policy = policy;
    this.entrypoints = new Set(Object.keys((policy.entrypoints ?? {}) as Record<string, number>));
    this.loadedRevision = revision;
    return true;
  }

  async evaluate(path: string, inputJson: string): Promise<PolicyOutcome> {
    const policy = this.policy;
    if (!policy) return { kind: 'unavailable', detail: 'no wasm policy loaded' };
    if (!this.entrypoints.has(path)) return { kind: 'unavailable', detail: `${path} is not an entrypoint of the wasm policy` };
    try {
      // A byte buffer is taken as JSON text by opa-wasm: no parse/stringify round trip.
      const results = policy.evaluate(this.encoder.encode(inputJson).buffer, path) as { result?: unknown }[];
      const first = results[0];
      return first === undefined || first.result === undefined ? { kind: 'undefined' } : { kind: 'result', value: first.result };
    } catch (e) {
      return { kind: 'unavailable', detail: (e as Error).message };
    }
  }
}
