import { type BeforeApplicationShutdown, type DynamicModule, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AuthClient } from '@soma/auth-client';
import { ConfigError } from '@soma/config';
import { createPgPool } from '@soma/postgres';
import { grpcClientCredentials, SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import { GdprService } from './domain/gdpr.service.js';
import { parsePolicies, PolicyConfigError } from './domain/policy.js';
import { RetentionRunner } from './domain/retention-runner.js';
import { parseSubjectTables } from './domain/subject-tables.js';
import { AuthServiceAuthenticator, AuthServiceCredentials } from './infra/auth-adapters.js';
import { OutboxRetentionEvents } from './infra/event-adapter.js';
import { PgAuditSubjects } from './infra/pg-audit-subjects.js';
import { PgConsentStore } from './infra/pg-consent-store.js';
import { PgPlatformStore } from './infra/pg-platform-store.js';
import { PgRetentionStore } from './infra/pg-retention-store.js';
import { PromRetentionMetrics } from './infra/prom-metrics.js';
import { RetentionScheduler } from './infra/retention-scheduler.js';
import { SystemClock } from './infra/system-clock.js';
import type { RetentionConfig } from './retention.config.js';
import { AUTHENTICATOR, GDPR_SERVICE, LIFECYCLE, RETENTION_RUNNER } from './retention.tokens.js';
import { RetentionGrpcController } from './transport/grpc/retention.grpc.controller.js';

/**
 * Starts the scheduler with the app. On shutdown, first (before the gRPC server drains its calls) every run
 * in progress, RunPolicy ones included, is told to stop after its current batch; then the scheduler stops
 * and pool and auth channel close.
 */
class RetentionLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(private readonly runner: RetentionRunner, private readonly scheduler: RetentionScheduler | undefined, private readonly close: () => Promise<void>) {}

  onApplicationBootstrap(): void {
    this.scheduler?.start();
  }

  beforeApplicationShutdown(): void {
    this.runner.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.scheduler?.stop();
    await this.close();
  }
}

/** A policy list that cannot be used stops start-up like any other bad setting (exit 78). */
function asConfigError<T>(variable: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof PolicyConfigError) throw new ConfigError([`${variable}: ${e.message}`]);
    throw e;
  }
}

/** Composition root of the retention service: wires domain, transports and infrastructure. */
@Module({})
export class RetentionModule {
  static register(deps: ServiceDependencies<RetentionConfig>): DynamicModule {
    const { config: c, runtime, events: publisher } = deps;
    const log = runtime.logger.child({ component: 'retention' });
    // Invalid policy or subject-table JSON stops start-up here, before anything listens.
    const policies = asConfigError('RETENTION_POLICIES', () => parsePolicies(c.RETENTION_POLICIES, { auditLogMaxAgeDays: c.RETENTION_AUDIT_LOG_MAX_AGE_DAYS }));
    const subjectTables = asConfigError('RETENTION_SUBJECT_TABLES', () => parseSubjectTables(c.RETENTION_SUBJECT_TABLES));

    const pool = createPgPool(c, { applicationName: 'soma-retention', onIdleError: (e) => log.warn({ err: { type: e.name } }, 'idle postgres connection failed') });
    runtime.readiness.register('postgres', async () => {
      await pool.query('SELECT 1');
      return null;
    });
    const auth = new AuthClient({ address: c.AUTH_GRPC_ADDRESS, deadlineMs: c.AUTH_DEADLINE_MS, credentials: grpcClientCredentials(c) });
    const clock = new SystemClock();
    const metrics = new PromRetentionMetrics(runtime.metrics);
    const events = new OutboxRetentionEvents(publisher);

    const store = new PgRetentionStore(pool, { platformSchema: c.RETENTION_PLATFORM_SCHEMA, auditSchema: c.RETENTION_AUDIT_SCHEMA, auditRole: c.RETENTION_AUDIT_ROLE });
    const runner = new RetentionRunner(policies, store, events, metrics, clock);
    const gdpr = new GdprService({
      platform: new PgPlatformStore(pool, c.RETENTION_PLATFORM_SCHEMA, subjectTables),
      credentials: new AuthServiceCredentials(auth, c.RETENTION_AUTH_CREDENTIAL),
      audit: new PgAuditSubjects(pool, c.RETENTION_AUDIT_SCHEMA, c.RETENTION_AUDIT_ROLE, c.AUDIT_KEK),
      consent: new PgConsentStore(pool, c.RETENTION_SCHEMA),
      events,
      metrics,
      clock,
      exportMaxRows: c.RETENTION_EXPORT_MAX_ROWS,
    });
    const scheduler = c.RETENTION_SCHEDULER_ENABLED ? new RetentionScheduler(runner, log, c.RETENTION_SCHEDULER_FIRST_RUN_SECONDS * 1000) : undefined;
    const lifecycle = new RetentionLifecycle(runner, scheduler, async () => {
      auth.close();
      await pool.end();
    });
    log.info({ policies: policies.map((p) => `${p.name}:${p.maxAgeDays}d:${p.mode}:${p.schedule}`), scheduler: Boolean(scheduler) }, 'retention policies loaded');

    return {
      module: RetentionModule,
      imports: [SomaRuntimeModule.forRoot(runtime)],
      controllers: [RetentionGrpcController],
      providers: [
        { provide: RETENTION_RUNNER, useValue: runner },
        { provide: GDPR_SERVICE, useValue: gdpr },
        { provide: AUTHENTICATOR, useValue: new AuthServiceAuthenticator(auth) },
        { provide: LIFECYCLE, useValue: lifecycle },
      ],
    };
  }
}
