import 'reflect-metadata';
import type { DynamicModule } from '@nestjs/common';
import { CommonConfig, ConfigError, describeConfig, kafkaSslOf, loadConfig } from '@soma/config';
import type { SomaServiceName } from '@soma/contracts';
import { SecurityEventPublisher, ensureTopics } from '@soma/events';
import { Kafka, logLevel } from 'kafkajs';
import { join } from 'node:path';
import { createServiceRuntime, listenService, type RunningService, type ServiceRuntime } from './bootstrap.js';
import type { GrpcStatusMapper, HttpStatusMapper } from './error-filters.js';
import { loadServerTls } from './tls.js';

export interface ServiceDependencies<C> {
  config: Readonly<C>;
  runtime: ServiceRuntime;
  events: SecurityEventPublisher;
}

export interface SomaServiceDefinition<C extends CommonConfig> {
  service: SomaServiceName;
  configClass: new () => C;
  ports: (config: Readonly<C>) => { grpc: number; http: number };
  module: (deps: ServiceDependencies<C>) => DynamicModule;
  grpcStatusOf: GrpcStatusMapper;
  httpStatusOf: HttpStatusMapper;
  cors?: (config: Readonly<C>) => { origins: string[]; allowCredentials: boolean };
  /** Whether the HTTP listener sits behind one trusted reverse proxy (client address from X-Forwarded-For). */
  trustProxy?: (config: Readonly<C>) => boolean;
}

export interface StartedService<C> extends ServiceDependencies<C> {
  server: RunningService;
  stop(): Promise<void>;
}

/** Exit status for a configuration that stops start-up (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

/**
 * The composition root every service's main.ts calls: validate config once into a typed object,
 * open the durable event publisher, make sure the topics exist, build the module, listen.
 */
export async function startSomaService<C extends CommonConfig>(def: SomaServiceDefinition<C>, env = process.env): Promise<StartedService<C>> {
  const config = await loadConfig(def.configClass, env);
  // Certificate files are read before anything opens, so a bad TLS setup stops start-up cleanly (exit 78).
  const tls = loadServerTls(config);
  const kafkaSsl = kafkaSslOf(config);
  const runtime = createServiceRuntime(def.service, config.LOG_LEVEL, config.OTEL_ENABLED, config.INSTANCE_ID);
  runtime.logger.info({ config: describeConfig(def.configClass, config) }, `${def.service} starting`);
  const events = new SecurityEventPublisher({
    service: def.service,
    brokers: config.KAFKA_BROKERS,
    ssl: kafkaSsl,
    logger: runtime.logger,
    bufferPath: config.EVENT_BUFFER_PATH ?? join(config.EVENT_BUFFER_DIR, `${def.service}.sqlite`),
    capacity: config.EVENT_BUFFER_MAX_EVENTS,
    sync: config.EVENT_BUFFER_SYNC,
    metrics: runtime.metrics,
  });
  runtime.readiness.register('security-event-buffer', async () => events.readiness());
  void ensureTopicsQuietly(config, runtime);
  events.start();
  const deps: ServiceDependencies<C> = { config, runtime, events };
  const ports = def.ports(config);
  const cors = def.cors?.(config);
  let server: Awaited<ReturnType<typeof listenService>>;
  try {
    server = await listenService({
      runtime,
      appModule: def.module(deps) as never,
      host: config.BIND_HOST,
      grpcPort: ports.grpc,
      httpPort: ports.http,
      grpcStatusOf: def.grpcStatusOf,
      httpStatusOf: def.httpStatusOf,
      corsOrigins: cors?.origins,
      corsAllowCredentials: cors?.allowCredentials,
      trustProxy: def.trustProxy?.(config) ?? false,
      tls,
    });
  } catch (error) {
    // A module that fails to build (bad config it checks itself, a port in use) must not leave the
    // publisher running: its buffer file holds an exclusive lock that the next start would trip on.
    await events.stop().catch(() => undefined);
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await server.close();
      await events.stop();
      runtime.logger.flush();
    })());
  return { ...deps, server, stop };
}

/** Topics are created by the project; a broker that is down now is handled by the event buffer. */
async function ensureTopicsQuietly(config: CommonConfig, runtime: ServiceRuntime): Promise<void> {
  const ssl = kafkaSslOf(config);
  const admin = new Kafka({ clientId: `soma-${runtime.service}-admin`, brokers: config.KAFKA_BROKERS, ...(ssl ? { ssl } : {}), logLevel: logLevel.NOTHING, retry: { retries: 1 } }).admin();
  try {
    await admin.connect();
    const created = await ensureTopics(admin, config.KAFKA_REPLICATION_FACTOR);
    if (created.length) runtime.logger.info({ topics: created }, 'created kafka topics');
  } catch (e) {
    runtime.logger.warn({ reason: (e as Error).message }, 'could not check kafka topics now; events stay buffered until the broker answers');
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Run a service's main: a bad configuration prints what is wrong (never values) and exits 78. */
export function runServiceMain<C extends CommonConfig>(def: SomaServiceDefinition<C>): void {
  startSomaService(def).then(
    (started) => {
      const shutdown = (signal: string) => {
        started.runtime.logger.info({ signal }, `${def.service} stopping`);
        started.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    },
    (error: unknown) => {
      if (error instanceof ConfigError) {
        process.stderr.write(`soma-${def.service}: cannot start. ${error.message}\n`);
        process.exit(EXIT_CONFIG);
      }
      process.stderr.write(`soma-${def.service}: cannot start: ${(error as Error)?.message ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
