import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { HttpsOptions } from '@nestjs/common';
import type { ServerOptions as NodeHttpsOptions } from 'node:https';
import { ConfigError } from '@soma/config';

/** The TLS part of a service's configuration (CommonConfig carries these properties). */
export interface TlsSettings {
  TLS_ENABLED: boolean;
  TLS_CERT_PATH?: string;
  TLS_KEY_PATH?: string;
  TLS_CA_PATH?: string;
  TLS_HTTP_CLIENT_AUTH?: 'none' | 'require';
}

/**
 * Certificate material a server listens with. With a CA, the gRPC listener is mutual TLS: a peer
 * without a client certificate issued by that CA cannot complete the handshake.
 */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** gRPC: client certificates required (mutual TLS) — the service-to-service channel. */
  grpcClientAuth: boolean;
  /** HTTP: REST routes need a verified client certificate; probes and metrics stay reachable. */
  httpClientAuth: boolean;
}

/** HTTP paths a kubelet or Prometheus reaches without a client certificate. */
export const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** Oldest protocol accepted on either listener. */
const MIN_TLS_VERSION = 'TLSv1.2' as const;

function readPem(variable: string, path: string | undefined, problems: string[]): Buffer | undefined {
  if (!path) {
    problems.push(`${variable} is required when TLS_ENABLED=true`);
    return undefined;
  }
  try {
    const pem = readFileSync(path);
    if (!pem.includes('-----BEGIN ')) problems.push(`${variable}: the file is not PEM`);
    return pem;
  } catch (e) {
    // The path is configuration, not a secret; the file's content never appears here.
    problems.push(`${variable}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

/**
 * Read the certificate, key and optional CA named by the config. TLS off gives `undefined`; TLS on
 * with a missing or unreadable file is a configuration error (start-up stops, exit 78), never a
 * silent fallback to plain text.
 */
export function loadServerTls(settings: TlsSettings): ServerTls | undefined {
  if (!settings.TLS_ENABLED) {
    const stray = (['TLS_CERT_PATH', 'TLS_KEY_PATH', 'TLS_CA_PATH'] as const).filter((k) => settings[k]);
    if (stray.length) throw new ConfigError([`${stray.join(', ')} set but TLS_ENABLED is not true: refusing to serve plain text by accident`]);
    return undefined;
  }
  const problems: string[] = [];
  const cert = readPem('TLS_CERT_PATH', settings.TLS_CERT_PATH, problems);
  const key = readPem('TLS_KEY_PATH', settings.TLS_KEY_PATH, problems);
  const ca = settings.TLS_CA_PATH ? readPem('TLS_CA_PATH', settings.TLS_CA_PATH, problems) : undefined;
  const httpClientAuth = settings.TLS_HTTP_CLIENT_AUTH === 'require';
  if (httpClientAuth && !settings.TLS_CA_PATH) problems.push('TLS_HTTP_CLIENT_AUTH=require needs TLS_CA_PATH (the CA client certificates are checked against)');
  if (problems.length || !cert || !key) throw new ConfigError(problems);
  return { cert, key, ...(ca ? { ca } : {}), grpcClientAuth: ca !== undefined, httpClientAuth };
}

/** gRPC server credentials: TLS, and mutual TLS when a CA is configured. */
export function grpcServerCredentials(tls: ServerTls): ServerCredentials {
  return ServerCredentials.createSsl(tls.ca ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.grpcClientAuth);
}

/**
 * HTTPS options. With TLS_HTTP_CLIENT_AUTH=require a client certificate is requested, but the handshake
 * does not reject its absence: `/healthz` and `/readyz` must stay reachable by kubelet probes, which present
 * none. Routes are then guarded by {@link clientCertificateGuard}.
 */
export function httpsServerOptions(tls: ServerTls): HttpsOptions {
  const options: NodeHttpsOptions = {
    cert: tls.cert,
    key: tls.key,
    minVersion: MIN_TLS_VERSION,
    ...(tls.ca && tls.httpClientAuth ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false } : {}),
  };
  // Nest hands these to https.createServer unchanged; its own type only lacks newer fields (minVersion).
  return options as HttpsOptions;
}

interface GuardRequest {
  path?: string;
  url?: string;
  socket: unknown;
}
interface GuardResponse {
  status(code: number): GuardResponse;
  type(t: string): GuardResponse;
  send(body: string): unknown;
}

/**
 * Express middleware for `TLS_HTTP_CLIENT_AUTH=require`: every route but the probes needs a client
 * certificate that verified against TLS_CA_PATH during the handshake; otherwise 401 problem+json.
 */
export function clientCertificateGuard(): (req: GuardRequest, res: GuardResponse, next: () => void) => void {
  return (req, res, next) => {
    const path = req.path ?? (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (PROBE_PATHS.has(path) || (req.socket as TLSSocket).authorized === true) return next();
    res
      .status(401)
      .type('application/problem+json')
      .send(JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401, code: 'client_certificate_required', detail: 'a client certificate issued by the suite CA is required' }));
  };
}

/**
 * Client credentials for calling another suite service over gRPC: trust the suite CA and present this
 * service's own certificate (its identity under mutual TLS). Plain text when TLS is off.
 */
export function grpcClientCredentials(settings: TlsSettings): ChannelCredentials {
  if (!settings.TLS_ENABLED) return credentials.createInsecure();
  const problems: string[] = [];
  const ca = settings.TLS_CA_PATH ? readPem('TLS_CA_PATH', settings.TLS_CA_PATH, problems) : undefined;
  const cert = settings.TLS_CERT_PATH ? readPem('TLS_CERT_PATH', settings.TLS_CERT_PATH, problems) : undefined;
  const key = settings.TLS_KEY_PATH ? readPem('TLS_KEY_PATH', settings.TLS_KEY_PATH, problems) : undefined;
  if (problems.length) throw new ConfigError(problems);
  return credentials.createSsl(ca ?? null, key ?? null, cert ?? null);
}
