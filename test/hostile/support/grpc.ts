/**
 * gRPC tooling for hostile input: every method of every service, enumerated from the loaded protos under
 * libs/contracts/proto (a new method or service is covered without touching the tests), raw-byte calls that bypass
 * the client-side serializer, wire-level encoders for wrong wire types and out-of-range values, and a dynamic
 * promise client.
 */
import { connect, constants as h2 } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { GrpcServices, protoPath, protoRoot, type SomaServiceName } from '@soma/contracts';

export interface MethodInfo {
  service: SomaServiceName;
  name: string;
  /** `/soma.auth.v1.AuthService/IssueToken` */
  path: string;
  request: protobuf.Type;
}

let root: protobuf.Root | undefined;

/** All protos of the suite in one root (the services' files and their imports). */
export function protoRootObject(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => (target.startsWith('/') ? target : `${protoRoot()}/${target}`);
  r.loadSync((Object.keys(GrpcServices) as SomaServiceName[]).map((s) => protoPath(s)), { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

/** Every unary method of every Soma service, straight from the protos. */
export function allMethods(): MethodInfo[] {
  const r = protoRootObject();
  const out: MethodInfo[] = [];
  for (const [svc, g] of Object.entries(GrpcServices) as Array<[SomaServiceName, (typeof GrpcServices)[SomaServiceName]]>) {
    const service = r.lookupService(`${g.package}.${g.service}`);
    for (const m of service.methodsArray) {
      m.resolve();
      out.push({ service: svc, name: m.name, path: `/${g.package}.${g.service}/${m.name}`, request: m.resolvedRequestType! });
    }
  }
  return out;
}

export interface CallOutcome {
  code: grpc.status;
  details: string;
  metadata: Record<string, unknown>;
}

const identity = (b: Buffer) => b;

const rawClients = new Map<string, grpc.Client>();

/** One unary call with the given request bytes as the message (no serializer on our side); one channel per address. */
export function rawCall(address: string, path: string, body: Buffer, credential?: string, deadlineMs = 15_000): Promise<CallOutcome> {
  let client = rawClients.get(address);
  if (!client) {
    client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
    rawClients.set(address, client);
  }
  const md = new grpc.Metadata();
  if (credential) md.set('authorization', `Bearer ${credential}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, body, md, { deadline: Date.now() + deadlineMs }, (err) => {
      if (!err) resolve({ code: grpc.status.OK, details: '', metadata: {} });
      else resolve({ code: err.code, details: err.details, metadata: err.metadata?.getMap() ?? {} });
    });
  });
}

export function closeRawClients(): void {
  for (const c of rawClients.values()) c.close();
  rawClients.clear();
}

/**
 * A gRPC request whose length prefix promises more bytes than the stream carries (truncated frame), or any other
 * hand-made body, sent over plain HTTP/2. Returns the grpc-status the server answers with (trailers or headers).
 */
export function h2Call(address: string, path: string, payload: Buffer, credential?: string): Promise<{ grpcStatus: number | null; httpStatus: number | null; message: string }> {
  return new Promise((resolve) => {
    const session = connect(`http://${address}`);
    const done = (v: { grpcStatus: number | null; httpStatus: number | null; message: string }) => {
      session.close();
      resolve(v);
    };
    session.on('error', (e) => done({ grpcStatus: null, httpStatus: null, message: `session error ${e.message}` }));
    const headers: Record<string, string> = { [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: path, 'content-type': 'application/grpc', te: 'trailers' };
    if (credential) headers['authorization'] = `Bearer ${credential}`;
    const req = session.request(headers);
    let httpStatus: number | null = null;
    let grpcStatus: number | null = null;
    let message = '';
    req.setTimeout(10_000, () => {
      req.close();
      done({ grpcStatus, httpStatus, message: 'timeout' });
    });
    req.on('response', (hdrs) => {
      httpStatus = Number(hdrs[h2.HTTP2_HEADER_STATUS]);
      if (hdrs['grpc-status'] !== undefined) grpcStatus = Number(hdrs['grpc-status']);
      if (hdrs['grpc-message']) message = decodeURIComponent(String(hdrs['grpc-message']));
    });
    req.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = Number(t['grpc-status']);
      if (t['grpc-message']) message = decodeURIComponent(String(t['grpc-message']));
    });
    req.on('data', () => undefined);
    req.on('end', () => done({ grpcStatus, httpStatus, message }));
    req.on('error', (e) => done({ grpcStatus, httpStatus, message: `stream error ${e.message}` }));
    req.end(payload);
  });
}

/** The 5-byte gRPC message prefix (uncompressed) followed by the message. */
export function grpcFrame(message: Buffer, claimedLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(claimedLength, 1);
  return Buffer.concat([head, message]);
}

// --- wire encoders -------------------------------------------------------------------------------------------

function varint(n: bigint): Buffer {
  const bytes: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    bytes.push(b);
  } while (v);
  return Buffer.from(bytes);
}
const tag = (field: number, wire: number) => varint(BigInt((field << 3) | wire));
export const wire = {
  varint: (field: number, v: bigint) => Buffer.concat([tag(field, 0), varint(v)]),
  fixed64: (field: number, v = 0x7ff8000000000001n) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    return Buffer.concat([tag(field, 1), b]);
  },
  bytes: (field: number, data: Buffer) => Buffer.concat([tag(field, 2), varint(BigInt(data.length)), data]),
  fixed32: (field: number, v = 0xffffffff) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return Buffer.concat([tag(field, 5), b]);
  },
  /** Deprecated group wire types, never used by proto3. */
  startGroup: (field: number) => tag(field, 3),
  endGroup: (field: number) => tag(field, 4),
};

const WIRE_OF: Record<string, number> = {
  double: 1, fixed64: 1, sfixed64: 1, float: 5, fixed32: 5, sfixed32: 5,
  int32: 0, int64: 0, uint32: 0, uint64: 0, sint32: 0, sint64: 0, bool: 0,
  string: 2, bytes: 2,
};

/** The wire type a field is declared with (messages, maps, packed repeated scalars: 2). */
export function declaredWire(f: protobuf.Field): number {
  if (f.map || f.resolvedType instanceof protobuf.Type) return 2;
  if (f.resolvedType instanceof protobuf.Enum) return f.repeated ? 2 : 0;
  if (f.repeated && f.type !== 'string' && f.type !== 'bytes') return 2;
  return WIRE_OF[f.type] ?? 2;
}

/** Encodings of one field with each wire type other than the declared one. */
export function wrongWireTypes(f: protobuf.Field): Buffer[] {
  const declared = declaredWire(f);
  const all: Array<[number, Buffer]> = [
    [0, wire.varint(f.id, 1n)],
    [1, wire.fixed64(f.id)],
    [2, wire.bytes(f.id, Buffer.from([0xff, 0xfe, 0x00]))],
    [5, wire.fixed32(f.id)],
    [3, Buffer.concat([wire.startGroup(f.id), wire.endGroup(f.id)])],
  ];
  return all.filter(([w]) => w !== declared).map(([, b]) => b);
}

const INVALID_UTF8 = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xed, 0xa0, 0x80]);

/** Out-of-range and degenerate values for one field, as wire bytes (all with the declared wire type). */
export function outOfRange(f: protobuf.Field): Array<{ what: string; bytes: Buffer }> {
  const id = f.id;
  if (f.map) {
    const entry = (k: Buffer, v: Buffer) => wire.bytes(id, Buffer.concat([wire.bytes(1, k), wire.bytes(2, v)]));
    return [
      { what: 'map with 5000 entries', bytes: Buffer.concat(Array.from({ length: 5000 }, (_, i) => entry(Buffer.from(`k${i}`), Buffer.from('v')))) },
      { what: 'map key of 100 kB', bytes: entry(Buffer.alloc(100_000, 0x6b), Buffer.from('v')) },
      { what: 'map entry with invalid UTF-8', bytes: entry(INVALID_UTF8, INVALID_UTF8) },
    ];
  }
  if (f.resolvedType instanceof protobuf.Type) {
    const nested = Buffer.concat(f.resolvedType.fieldsArray.map((n) => (declaredWire(n) === 0 ? wire.varint(n.id, -1n) : declaredWire(n) === 2 ? wire.bytes(n.id, Buffer.alloc(70_000, 0x41)) : Buffer.alloc(0))));
    const repeated = f.repeated ? [{ what: '10000 repeated messages', bytes: Buffer.concat(Array.from({ length: 10_000 }, () => wire.bytes(id, Buffer.alloc(0)))) }] : [];
    return [{ what: 'nested message with extreme values', bytes: wire.bytes(id, nested) }, { what: 'nested message of garbage', bytes: wire.bytes(id, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x08])) }, ...repeated];
  }
  if (f.resolvedType instanceof protobuf.Enum) {
    return [{ what: 'undefined enum value 99', bytes: wire.varint(id, 99n) }, { what: 'negative enum value', bytes: wire.varint(id, -1n) }];
  }
  const repeatedStrings = (f.repeated && f.type === 'string') ? [{ what: '10000 repeated strings', bytes: Buffer.concat(Array.from({ length: 10_000 }, (_, i) => wire.bytes(id, Buffer.from(`s${i}`)))) }] : [];
  switch (f.type) {
    case 'string':
    case 'bytes':
      return [
        { what: 'string of 1 MiB', bytes: wire.bytes(id, Buffer.alloc(1024 * 1024, 0x61)) },
        { what: 'invalid UTF-8', bytes: wire.bytes(id, INVALID_UTF8) },
        { what: 'NUL and control characters', bytes: wire.bytes(id, Buffer.from('a\u0000b\u0001\u001b[31m\r\n')) },
        ...repeatedStrings,
      ];
    case 'int32': case 'sint32': case 'sfixed32':
      return [
        { what: 'int32 max', bytes: wire.varint(id, 2147483647n) }, { what: 'int32 min', bytes: wire.varint(id, -2147483648n) },
        { what: '-1', bytes: wire.varint(id, -1n) }, { what: 'varint beyond 32 bits', bytes: wire.varint(id, 1n << 40n) },
      ];
    case 'uint32': case 'fixed32':
      return [{ what: 'uint32 max', bytes: wire.varint(id, 4294967295n) }, { what: 'varint beyond 32 bits', bytes: wire.varint(id, 1n << 40n) }];
    case 'int64': case 'sint64': case 'uint64': case 'sfixed64': case 'fixed64':
      return [{ what: 'int64 max', bytes: wire.varint(id, 9223372036854775807n) }, { what: 'int64 min', bytes: wire.varint(id, -9223372036854775808n) }];
    case 'bool':
      return [{ what: 'bool 2^40', bytes: wire.varint(id, 1n << 40n) }];
    default:
      return [{ what: `${f.type} degenerate`, bytes: wire.varint(id, -1n) }];
  }
}

/** A plausible, well-typed request for a method (used to make truncations of real encodings). */
export function sampleRequest(t: protobuf.Type): Buffer {
  const obj: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    if (f.map) obj[f.name] = { k: 'v' };
    else if (f.resolvedType instanceof protobuf.Type) obj[f.name] = f.repeated ? [{}] : {};
    else if (f.resolvedType instanceof protobuf.Enum) obj[f.name] = 1;
    else if (f.type === 'string') obj[f.name] = f.repeated ? ['acme', 'x'] : `value-of-${f.name}`;
    else if (f.type === 'bool') obj[f.name] = true;
    else obj[f.name] = f.repeated ? [7] : 7;
  }
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

/** A promise client for any Soma service, by name (dynamic: the method name is a string). */
export class DynamicClient {
  private readonly client: grpc.Client;
  constructor(private readonly service: SomaServiceName, address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }
  private type(method: string): { req: protobuf.Type; res: protobuf.Type; path: string } {
    const g = GrpcServices[this.service];
    const m = protoRootObject().lookupService(`${g.package}.${g.service}`).methods[method];
    if (!m) throw new Error(`no method ${method} on ${this.service}`);
    m.resolve();
    return { req: m.resolvedRequestType!, res: m.resolvedResponseType!, path: `/${g.package}.${g.service}/${method}` };
  }
  call<T = Record<string, unknown>>(method: string, request: Record<string, unknown>, credential?: string, extra: Record<string, string> = {}): Promise<T> {
    const { req, res, path } = this.type(method);
    const md = new grpc.Metadata();
    if (credential) md.set('authorization', `Bearer ${credential}`);
    for (const [k, v] of Object.entries(extra)) md.set(k, v);
    const err = req.verify(request);
    if (err) return Promise.reject(new Error(`bad test request for ${method}: ${err}`));
    const body = Buffer.from(req.encode(req.fromObject(request)).finish());
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(path, identity, identity, body, md, { deadline: Date.now() + 15_000 }, (e, out) => {
        if (e) reject(e);
        else resolve(res.toObject(res.decode(out!), { longs: String, enums: String, defaults: true }) as T);
      });
    });
  }
  /** The error of a call that must fail (rejects if it succeeds). */
  async failure(method: string, request: Record<string, unknown>, credential?: string, extra: Record<string, string> = {}): Promise<grpc.ServiceError> {
    try {
      await this.call(method, request, credential, extra);
    } catch (e) {
      if ((e as grpc.ServiceError).code !== undefined) return e as grpc.ServiceError;
      throw e;
    }
    throw new Error(`${this.service}.${method} succeeded but was expected to fail`);
  }
  close(): void {
    this.client.close();
  }
}
