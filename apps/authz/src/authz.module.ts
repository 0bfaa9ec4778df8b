import { type DynamicModule, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AuthClient } from '@soma/auth-client';
import { Counter } from '@soma/observability';
import { grpcClientCredentials, SomaRuntimeModule, type ServiceDependencies } from '@soma/service-runtime';
import type { AuthzConfig } from './authz.config.js';
import { AUTHZ_DECISIONS, CALLER_ACCESS, POLICY_WATCHER } from './authz.tokens.js';
import { AuthzDecisions } from './domain/authz-decisions.js';
import { CallerAccess } from './domain/caller-access.js';
import { AuthServiceCallerAuthenticator } from './infra/auth-caller-authenticator.js';
import type { PolicyEvaluator } from './domain/ports.js';
import { OpaHttpClient, OpaHttpEvaluator } from './infra/opa-http-evaluator.js';
import { OpaWasmEvaluator } from './infra/opa-wasm-evaluator.js';
import { OpenFgaChangeFeed, OpenFgaRelationshipStore } from './infra/openfga-store.js';
import { PolicyWatcher } from './infra/policy-watcher.js';
import { AuthzGrpcController } from './transport/grpc/authz.grpc.controller.js';
import { PoliciesHttpController } from './transport/http/policies.controller.js';

const LIFECYCLE = Symbol('authz:lifecycle');

/** Starts and stops the background followers (policy fingerprint, OpenFGA change feed) with the app. */
class AuthzLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly watcher: PolicyWatcher,
    private readonly feed: OpenFgaChangeFeed | undefined,
    private readonly opa: OpaHttpClient | undefined,
    private readonly auth: AuthClient | undefined,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.watcher.start();
    this.feed?.start();
  }

  onApplicationShutdown(): void {
    this.watcher.stop();
    this.feed?.stop();
    this.opa?.close();
    this.auth?.close();
  }
}

/** Composition root of the authz service: wires domain, transports and infrastructure. */
@Module({})
export class AuthzModule {
  static register(deps: ServiceDependencies<AuthzConfig>): DynamicModule {
    const { config: c, runtime, events } = deps;
    const log = runtime.logger.child({ component: 'authz' });
    const registers = [runtime.metrics];
    const decisions = new Counter({ name: 'soma_authz_decisions_total', help: 'Authorization decisions by kind, reason and cache use', labelNames: ['kind', 'reason', 'cached'], registers });
    const auditFailures = new Counter({ name: 'soma_authz_audit_failures_total', help: 'Decision events that could not be buffered', labelNames: ['type'], registers });
    const policyReloads = new Counter({ name: 'soma_authz_policy_changes_total', help: 'Policy set changes seen (reloads and engine outages)', registers });
    const relationInvalidations = new Counter({ name: 'soma_authz_relationship_invalidations_total', help: 'Relationship cache invalidations from the OpenFGA change feed', labelNames: ['why'], registers });

    const callerAuth = c.AUTHZ_CALLER_AUTH ?? (c.NODE_ENV === 'production' ? 'required' : 'off');
    const auth = callerAuth === 'required' ? new AuthClient({ address: c.AUTH_GRPC_ADDRESS, deadlineMs: c.AUTH_DEADLINE_MS, credentials: grpcClientCredentials(c) }) : undefined;
    const access = new CallerAccess({
      mode: callerAuth,
      authenticator: auth ? new AuthServiceCallerAuthenticator(auth, c.AUTH_DEADLINE_MS) : undefined,
      cacheTtlMs: c.AUTHZ_CALLER_CACHE_TTL_MS,
    });
    if (callerAuth === 'off') log.warn('AUTHZ_CALLER_AUTH=off: callers are not authenticated (set AUTHZ_CALLER_AUTH=required outside development)');

    const opa = c.AUTHZ_POLICY_MODE === 'server' ? new OpaHttpClient(c.OPA_URL, c.OPA_TIMEOUT_MS) : undefined;
    const wasm = c.AUTHZ_POLICY_MODE === 'wasm' ? new OpaWasmEvaluator(c.OPA_WASM_PATH) : undefined;
    const evaluator: PolicyEvaluator = opa ? new OpaHttpEvaluator(opa) : wasm!;

    const relationships = c.OPENFGA_ENABLED
      ? new OpenFgaRelationshipStore({
          apiUrl: c.OPENFGA_API_URL,
          storeId: c.OPENFGA_STORE_ID,
          modelId: c.OPENFGA_MODEL_ID,
          timeoutMs: c.OPENFGA_TIMEOUT_MS,
          listObjectsMaxResults: c.OPENFGA_LIST_OBJECTS_MAX_RESULTS,
        })
      : undefined;

    const authz = new AuthzDecisions({
      policy: evaluator,
      relationships,
      audit: events,
      toolPolicyPath: c.AUTHZ_TOOL_POLICY_PATH,
      cacheTtlMs: c.AUTHZ_DECISION_CACHE_TTL_MS,
      cacheMax: c.AUTHZ_DECISION_CACHE_MAX,
      grantedEvents: c.AUTHZ_GRANTED_EVENTS,
      grantedSampleRate: c.AUTHZ_GRANTED_SAMPLE_RATE,
      onDecision: (kind, reason, cached) => decisions.inc({ kind, reason, cached: cached ? 'true' : 'false' }),
      onAuditFailure: (error, type) => {
        auditFailures.inc({ type });
        log.error({ type, reason: (error as Error)?.message }, 'could not buffer an authz security event');
      },
    });

    const watcher = new PolicyWatcher(
      opa ? { kind: 'server', client: opa } : { kind: 'wasm', evaluator: wasm!, path: c.OPA_WASM_PATH },
      c.OPA_POLICY_POLL_MS,
      {
        observed: (revision) => {
          log.info({ revision, mode: c.AUTHZ_POLICY_MODE }, 'policy set loaded');
          authz.policyObserved(revision);
        },
        changed: (revision, policies) => {
          policyReloads.inc();
          if (revision) log.info({ revision, policies: policies.length }, 'policy set changed: decision cache dropped');
          else log.warn({ mode: c.AUTHZ_POLICY_MODE }, 'policy engine unreachable: decision cache dropped, decisions deny until it is back');
          authz.policyChanged(revision, policies);
        },
      },
    );
    runtime.readiness.register('policy-engine', async () => (watcher.healthy ? null : `policy engine (${c.AUTHZ_POLICY_MODE}) not loaded: ${watcher.view().error ?? 'unknown'}`));

    const feed = relationships
      ? new OpenFgaChangeFeed(relationships.client, c.OPENFGA_CHANGES_POLL_MS, (why, count) => {
          relationInvalidations.inc({ why });
          log.debug({ why, count }, 'relationship cache dropped');
          authz.relationshipsChanged();
        })
      : undefined;
    if (feed) runtime.readiness.register('openfga', async () => (feed.isHealthy ? null : 'OpenFGA change feed unreachable'));

    return {
      module: AuthzModule,
      imports: [SomaRuntimeModule.forRoot(runtime)],
      controllers: [AuthzGrpcController, PoliciesHttpController],
      providers: [
        { provide: AUTHZ_DECISIONS, useValue: authz },
        { provide: POLICY_WATCHER, useValue: watcher },
        { provide: CALLER_ACCESS, useValue: access },
        { provide: LIFECYCLE, useFactory: () => new AuthzLifecycle(watcher, feed, opa, auth) },
      ],
    };
  }
}


