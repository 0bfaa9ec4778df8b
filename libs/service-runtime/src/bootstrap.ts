import 'reflect-metadata';
import { ReflectionService } from '@grpc/reflection';
import { type DynamicModule, Global, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { type GrpcOptions, Transport } from '@nestjs/microservices';
import { HealthImplementation } from 'grpc-health-check';
import helmet from 'helmet';
import { GrpcServices, PROTO_LOADER_OPTIONS, protoPath, protoRoot, type SomaServiceName } from '@soma/contracts';
import { createLogger, createMetricsRegistry, initTracing, ReadinessRegistry, type Logger, type Registry } from '@soma/observability';
import { SomaExceptionFilter, type GrpcStatusMapper, type HttpStatusMapper } from './error-filters.js';
import { malformedMessageInterceptor, tolerantDeserializers } from './grpc-interceptors.js';
import { HealthController } from './health.controller.js';
import { TraceContextInterceptor } from './trace-context.js';
import { serviceInfoController } from './service-info.controller.js';
import { NestPinoLogger } from './nest-logger.js';
import { LOGGER, METRICS, READINESS, SERVICE_NAME } from './tokens.js';
import { clientCertificateGuard, grpcServerCredentials, httpsServerOptions, type ServerTls } from './tls.js';

export interface ServiceRuntime {
  service: SomaServiceName;
  instanceId: string;
  logger: Logger;
  metrics: Registry;
  readiness: ReadinessRegistry;
}

/** Create what every service process shares before its module is built. */
export function createServiceRuntime(service: SomaServiceName, logLevel = 'info', tracing = true, instanceId = String(process.pid)): ServiceRuntime {
  if (tracing) initTracing(service);
  return { service, instanceId, logger: createLogger({ service, level: logLevel }), metrics: createMetricsRegistry(service), readiness: new ReadinessRegistry() };
}

/** Global module exposing the runtime (logger, metrics, readiness) and the health endpoints. */
@Global()
@Module({})
export class SomaRuntimeModule {
  static forRoot(runtime: ServiceRuntime): DynamicModule {
    return {
      module: SomaRuntimeModule,
      controllers: [HealthController, serviceInfoController(GrpcServices[runtime.service].service, { service: runtime.service, instanceId: runtime.instanceId })],
      providers: [
        { provide: LOGGER, useValue: runtime.logger },
        { provide: METRICS, useValue: runtime.metrics },
        { provide: READINESS, useValue: runtime.readiness },
        { provide: SERVICE_NAME, useValue: runtime.service },
      ],
      exports: [LOGGER, METRICS, READINESS, SERVICE_NAME],
    };
  }
}

export interface ServiceListenOptions {
  runtime: ServiceRuntime;
  appModule: Type<unknown>;
  host: string;
  grpcPort: number;
  httpPort: number;
  grpcStatusOf: GrpcStatusMapper;
  httpStatusOf: HttpStatusMapper;
  corsOrigins?: string[];
  corsAllowCredentials?: boolean;
  /** Largest HTTP request body accepted. */
  bodyLimit?: string;
  /**
   * Behind a reverse proxy: take the client address from the X-Forwarded-For entry the nearest proxy added
   * (one hop: Express `trust proxy` = 1). Never more: entries further left are the client's to forge.
   */
  trustProxy?: boolean;
  /** Serve both listeners over TLS (mutual TLS on gRPC when it carries a CA); plain text when absent. */
  tls?: ServerTls;
}

export interface RunningService {
  app: NestExpressApplication;
  grpcHealth: HealthImplementation;
  grpcUrl: string;
  httpUrl: string;
  close(): Promise<void>;
}

/**
 * Start one service: its gRPC server (own package + grpc.health.v1 + reflection) and its HTTP server
 * (health, metrics, REST) with security headers, CORS, problem+json errors and graceful shutdown.
 */
export async function listenService(options: ServiceListenOptions): Promise<RunningService> {
  const { runtime, host } = options;
  const grpc = GrpcServices[runtime.service];
  const grpcHealth = new HealthImplementation({ '': 'NOT_SERVING', [`${grpc.package}.${grpc.service}`]: 'NOT_SERVING' });
  const app = await NestFactory.create<NestExpressApplication>(options.appModule, {
    logger: new NestPinoLogger(runtime.logger),
    bodyParser: true,
    rawBody: false,
    cors: options.corsOrigins?.length ? { origin: options.corsOrigins, credentials: options.corsAllowCredentials ?? false } : false,
    ...(options.tls ? { httpsOptions: httpsServerOptions(options.tls) } : {}),
  });
  if (options.tls?.httpClientAuth) app.use(clientCertificateGuard());
  app.use(helmet());
  app.disable('x-powered-by');
  if (options.trustProxy) app.set('trust proxy', 1);
  app.useBodyParser('json', { limit: options.bodyLimit ?? '256kb' });
  app.useGlobalFilters(new SomaExceptionFilter(runtime.logger, options.grpcStatusOf, options.httpStatusOf));
  // Handlers run in the caller's trace (traceparent), so security events and logs carry its trace_id.
  app.useGlobalInterceptors(new TraceContextInterceptor());
  const grpcOptions: GrpcOptions = {
    transport: Transport.GRPC,
    options: {
      url: `${host}:${options.grpcPort}`,
      package: grpc.package,
      protoPath: protoPath(runtime.service),
      loader: { ...PROTO_LOADER_OPTIONS, includeDirs: [protoRoot()] },
      maxReceiveMessageLength: 4 * 1024 * 1024,
      // Passed through to the grpc-js Server: undecodable request messages become INVALID_ARGUMENT, not INTERNAL
      // (with tolerantDeserializers below).
      channelOptions: { interceptors: [malformedMessageInterceptor] } as NonNullable<GrpcOptions['options']['channelOptions']>,
      ...(options.tls ? { credentials: grpcServerCredentials(options.tls) } : {}),
      gracefulShutdown: true,
      onLoadPackageDefinition: (pkg: unknown, server: unknown) => {
        tolerantDeserializers(pkg as Record<string, unknown>);
        grpcHealth.addToServer(server as Parameters<HealthImplementation['addToServer']>[0]);
        new ReflectionService(pkg as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server as Parameters<ReflectionService['addToServer']>[0]);
      },
    },
  };
  app.connectMicroservice(grpcOptions, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.listen(options.httpPort, host);
  grpcHealth.setStatus('', 'SERVING');
  grpcHealth.setStatus(`${grpc.package}.${grpc.service}`, 'SERVING');
  const running: RunningService = {
    app,
    grpcHealth,
    grpcUrl: `${host}:${options.grpcPort}`,
    httpUrl: `${options.tls ? 'https' : 'http'}://${host}:${options.httpPort}`,
    close: async () => {
      grpcHealth.setStatus('', 'NOT_SERVING');
      await app.close();
    },
  };
  runtime.logger.info({ grpc: running.grpcUrl, http: running.httpUrl, tls: options.tls ? (options.tls.grpcClientAuth ? 'mutual' : 'server') : 'off' }, `${runtime.service} listening`);
  return running;
}
