import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

/**
 * Channel credentials of the operator CLI's gRPC calls, from the same variables the services read: with
 * TLS_ENABLED=true it trusts TLS_CA_PATH (or the system store) and presents TLS_CERT_PATH/TLS_KEY_PATH when set —
 * needed under mutual TLS, where the services refuse a client without a certificate of the suite CA.
 * Plain text otherwise (loopback development).
 */
export function cliChannelCredentials(env: NodeJS.ProcessEnv = process.env): grpc.ChannelCredentials {
  if (env['TLS_ENABLED'] !== 'true') return grpc.credentials.createInsecure();
  const read = (variable: string): Buffer | null => {
    const path = env[variable];
    if (!path) return null;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${variable}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const cert = read('TLS_CERT_PATH');
  const key = read('TLS_KEY_PATH');
  if (Boolean(cert) !== Boolean(key)) throw new Error('TLS_CERT_PATH and TLS_KEY_PATH: set both or neither');
  return grpc.credentials.createSsl(read('TLS_CA_PATH'), key, cert);
}
