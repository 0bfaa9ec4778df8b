import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { GrpcServices, protoPath, protoRoot, type SomaServiceName } from './proto.js';

/**
 * The proto-loader options every client of the suite uses: field names as in the .proto (snake_case),
 * 64-bit integers as strings (no precision loss), enums as their names, defaults filled in.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({ keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });

const definitions = new Map<SomaServiceName, grpc.GrpcObject>();

/** The loaded package definition of one service's .proto (parsed once per process). */
export function grpcPackageOf(service: SomaServiceName): grpc.GrpcObject {
  let def = definitions.get(service);
  if (!def) {
    def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(service), { ...PROTO_LOADER_OPTIONS, includeDirs: [protoRoot()] }));
    definitions.set(service, def);
  }
  return def;
}

/** The generated client constructor of `soma.<service>.v1.<Service>Service`, for `new Ctor(address, credentials)`. */
export function grpcClientConstructor(service: SomaServiceName): grpc.ServiceClientConstructor {
  const { package: pkg, service: name } = GrpcServices[service];
  let node: unknown = grpcPackageOf(service);
  for (const part of [...pkg.split('.'), name]) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function') throw new Error(`${pkg}.${name} not found in ${GrpcServices[service].file}`);
  return node as grpc.ServiceClientConstructor;
}
