import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allMethods, grpcFrame, h2Call, outOfRange, rawCall, sampleRequest, wrongWireTypes, type MethodInfo } from '../support/grpc.js';
import { SERVER_FAILURE_CODES, type HostileContext } from '../support/context.js';

const RUNS = Number(process.env['HOSTILE_FC_RUNS'] ?? 25);

/**
 * Malformed protobuf and out-of-range fields on every method of every service (enumerated from the protos):
 * random bytes, truncated encodings, every wrong wire type per field, truncated gRPC frames at the HTTP/2 level,
 * and per-field extreme values with an admin credential (so the handlers, not only authentication, see them).
 * Malformed bytes must be INVALID_ARGUMENT; nothing may be INTERNAL/UNKNOWN; every process stays up.
 */
export function grpcMalformedSuite(ctx: () => HostileContext): void {
  describe('malformed protobuf and out-of-range fields on every gRPC method', () => {
    const methods = allMethods();
    const address = (m: MethodInfo) => ctx().stack.get(m.service).grpcAddress;
    const summary = { calls: 0, byCode: new Map<string, number>() };
    const note = (m: MethodInfo, what: string, code: number, details: string, wrong: string[], mustBeInvalid: boolean) => {
      summary.calls++;
      summary.byCode.set(status[code] ?? String(code), (summary.byCode.get(status[code] ?? String(code)) ?? 0) + 1);
      ctx().error(details);
      if (SERVER_FAILURE_CODES.has(code) || (code === status.UNAVAILABLE && !/\(request_id=/.test(details))) wrong.push(`${m.path} ${what}: ${status[code]} ${details}`);
      else if (mustBeInvalid && code !== status.INVALID_ARGUMENT) wrong.push(`${m.path} ${what}: expected INVALID_ARGUMENT, got ${status[code]} ${details}`);
    };

    it('covers every method of every service in the protos', () => {
      const services = new Set(methods.map((m) => m.service));
      expect([...services].sort()).toEqual(['audit', 'auth', 'authz', 'retention', 'secrets']);
      expect(methods.length).toBeGreaterThanOrEqual(38);
      for (const m of methods) expect(m.request.fieldsArray, m.path).toBeDefined();
    });

    it('random bytes as the request message: INVALID_ARGUMENT when undecodable, never INTERNAL', async () => {
      const wrong: string[] = [];
            for (const m of methods) {
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.boolean(), async (bytes, withCredential) => {
            const body = Buffer.from(bytes);
            let decodable = true;
            try {
              m.request.decode(body);
            } catch {
              decodable = false;
            }
            const r = await rawCall(address(m), m.path, body, withCredential ? ctx().credentialFor(m.service) : undefined);
            note(m, `random ${body.toString('hex').slice(0, 32)}`, r.code, r.details, wrong, !decodable);
          }),
          { numRuns: RUNS },
        );
      }
      expect(wrong).toEqual([]);
    });

    it('truncated encodings of a well-formed request at every length', async () => {
      const wrong: string[] = [];
            for (const m of methods) {
        const full = sampleRequest(m.request);
        const cuts = [...new Set([1, 2, 3, Math.floor(full.length / 2), full.length - 1].filter((n) => n > 0 && n < full.length))];
        for (const cut of cuts) {
          const body = full.subarray(0, cut);
          let decodable = true;
          try {
            m.request.decode(body);
          } catch {
            decodable = false;
          }
          const r = await rawCall(address(m), m.path, body, ctx().credentialFor(m.service));
          note(m, `truncated at ${cut}/${full.length}`, r.code, r.details, wrong, !decodable);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('every field with every wrong wire type', async () => {
      const wrong: string[] = [];
            for (const m of methods) {
        for (const f of m.request.fieldsArray) {
          for (const body of wrongWireTypes(f)) {
            let decodable = true;
            try {
              m.request.decode(body);
            } catch {
              decodable = false;
            }
            const r = await rawCall(address(m), m.path, body, ctx().credentialFor(m.service));
            note(m, `field ${f.name} wrong wire ${body.toString('hex').slice(0, 16)}`, r.code, r.details, wrong, !decodable);
          }
        }
      }
      expect(wrong).toEqual([]);
    });

    it('every field with out-of-range and degenerate values (admin credential, so handlers see them)', async () => {
      const wrong: string[] = [];
            for (const m of methods) {
        for (const f of m.request.fieldsArray) {
          for (const { what, bytes } of outOfRange(f)) {
            const r = await rawCall(address(m), m.path, bytes, ctx().credentialFor(m.service));
            note(m, `field ${f.name}: ${what}`, r.code, r.details, wrong, false);
          }
        }
      }
      expect(wrong).toEqual([]);
    });

    it('truncated and lying gRPC frames at the HTTP/2 level', async () => {
      const wrong: string[] = [];
      for (const m of methods) {
        const msg = sampleRequest(m.request);
        const cases: Array<[string, Buffer]> = [
          ['length prefix larger than the body', grpcFrame(msg, msg.length + 100)],
          ['half a prefix', grpcFrame(msg).subarray(0, 3)],
          ['compressed flag without grpc-encoding', Buffer.concat([Buffer.from([1]), grpcFrame(msg).subarray(1)])],
          ['two messages on a unary call', Buffer.concat([grpcFrame(msg), grpcFrame(msg)])],
          ['prefix claiming 4 GiB', Buffer.concat([Buffer.from([0, 0xff, 0xff, 0xff, 0xff]), msg])],
        ];
        for (const [what, payload] of cases) {
          const r = await h2Call(address(m), m.path, payload);
          summary.calls++;
          ctx().error(r.message);
          if (r.grpcStatus === null || SERVER_FAILURE_CODES.has(r.grpcStatus)) {
            // grpc-js answers protocol violations in the frame layer itself; the service must still not crash (checked below).
            if (!(r.grpcStatus === status.INTERNAL && /frame|message|decompress|length|stream|unary/i.test(r.message)) && r.grpcStatus !== null) wrong.push(`${m.path} ${what}: ${r.grpcStatus} ${r.message}`);
          }
        }
      }
      expect(wrong).toEqual([]);
    });

    it('every service process is still alive and healthy, and printed the call counts', async () => {
      for (const svc of ['auth', 'authz', 'secrets', 'audit', 'retention']) {
        const i = ctx().stack.get(svc);
        expect(i.alive(), svc).toBe(true);
        expect((await fetch(`${i.httpUrl}/healthz`)).status, svc).toBe(200);
      }
      console.log(`[hostile] malformed gRPC: ${methods.length} methods, ${summary.calls} calls, by status ${JSON.stringify(Object.fromEntries(summary.byCode))}`);
      expect(summary.calls).toBeGreaterThan(methods.length * 10);
    });
  });
}
