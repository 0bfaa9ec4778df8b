import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from './config.errors.js';

/** The TLS settings of the suite's clients of Kafka and Redis (CommonConfig's KAFKA_TLS_* and REDIS_TLS_*). */
export interface ClientTlsSettings {
  KAFKA_TLS_ENABLED?: boolean;
  KAFKA_TLS_CA_PATH?: string;
  KAFKA_TLS_CERT_PATH?: string;
  KAFKA_TLS_KEY_PATH?: string;
  REDIS_URL?: string;
  REDIS_TLS_CA_PATH?: string;
  REDIS_TLS_CERT_PATH?: string;
  REDIS_TLS_KEY_PATH?: string;
}

function read(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`${variable}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
}

/** Server verification always on: the CA (or the system trust store without one), the client pair only together. */
function clientTls(prefix: 'KAFKA' | 'REDIS', ca?: string, cert?: string, key?: string): ConnectionOptions {
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError([`${prefix}_TLS_CERT_PATH and ${prefix}_TLS_KEY_PATH: set both or neither`]);
  return {
    rejectUnauthorized: true,
    ...(ca ? { ca: read(`${prefix}_TLS_CA_PATH`, ca) } : {}),
    ...(cert && key ? { cert: read(`${prefix}_TLS_CERT_PATH`, cert), key: read(`${prefix}_TLS_KEY_PATH`, key) } : {}),
  };
}

/** kafkajs' `ssl` option: undefined (plain text) unless KAFKA_TLS_ENABLED; the files are refused without it. */
export function kafkaSslOf(c: ClientTlsSettings): ConnectionOptions | undefined {
  if (!c.KAFKA_TLS_ENABLED) {
    const stray = (['KAFKA_TLS_CA_PATH', 'KAFKA_TLS_CERT_PATH', 'KAFKA_TLS_KEY_PATH'] as const).filter((k) => c[k]);
    if (stray.length) throw new ConfigError([`${stray.join(', ')} set but KAFKA_TLS_ENABLED is not true: the connection would be plain text`]);
    return undefined;
  }
  return clientTls('KAFKA', c.KAFKA_TLS_CA_PATH, c.KAFKA_TLS_CERT_PATH, c.KAFKA_TLS_KEY_PATH);
}

/** ioredis' `tls` option: TLS when REDIS_URL is rediss://; the REDIS_TLS_* files are refused with redis://. */
export function redisTlsOf(c: ClientTlsSettings): ConnectionOptions | undefined {
  const tls = (c.REDIS_URL ?? '').startsWith('rediss://');
  if (!tls) {
    const stray = (['REDIS_TLS_CA_PATH', 'REDIS_TLS_CERT_PATH', 'REDIS_TLS_KEY_PATH'] as const).filter((k) => c[k]);
    if (stray.length) throw new ConfigError([`${stray.join(', ')} set but REDIS_URL is not rediss://: the connection would be plain text`]);
    return undefined;
  }
  return clientTls('REDIS', c.REDIS_TLS_CA_PATH, c.REDIS_TLS_CERT_PATH, c.REDIS_TLS_KEY_PATH);
}
