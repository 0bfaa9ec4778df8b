// A small promise-based gRPC client for the setup calls of the benchmarks (issuing tokens, creating
// keys, putting secrets): never on the measured path, which ghz drives.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { PROTO_ROOT } from './common.mjs';

export function grpcClient(address, protoFile, serviceName) {
  const def = protoLoader.loadSync(join(PROTO_ROOT, protoFile), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] });
  const Ctor = serviceName.split('.').reduce((o, k) => o[k], grpc.loadPackageDefinition(def));
  const client = new Ctor(address, grpc.credentials.createInsecure());
  return {
    /** Setup calls retry UNAVAILABLE a few times: a shared, overloaded machine makes the services' own dependency timeouts fire. */
    async call(method, req, bearer, deadlineMs = 15_000) {
      for (let attempt = 1; ; attempt++) {
        const md = new grpc.Metadata();
        if (bearer) md.set('authorization', `Bearer ${bearer}`);
        try {
          return await new Promise((resolve, reject) => {
            client[method](req, md, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
          });
        } catch (e) {
          if (e?.code !== grpc.status.UNAVAILABLE || attempt >= 5) throw e;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    },
    close: () => client.close(),
  };
}
