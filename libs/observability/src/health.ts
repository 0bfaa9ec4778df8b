/** A readiness check: resolves to null when healthy, or a short reason (no secrets) when not. */
export type ReadinessCheck = () => Promise<string | null>;

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; reason?: string }>;
}

/** The dependencies a service needs to serve; `/readyz` runs every check with a bound on time. */
export class ReadinessRegistry {
  private readonly checks = new Map<string, ReadinessCheck>();

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  async report(timeoutMs = 2000): Promise<ReadinessReport> {
    const entries = await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve('timed out'), timeoutMs);
        });
        try {
          const reason = await Promise.race([check().catch((e: Error) => e.message || 'failed'), timeout]);
          return [name, reason ? { ok: false, reason } : { ok: true }] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    return { ready: entries.every(([, r]) => r.ok), checks };
  }
}
