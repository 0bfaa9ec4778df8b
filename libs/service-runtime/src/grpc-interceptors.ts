import { Metadata, ServerInterceptingCall, status, type ServerInterceptor } from '@grpc/grpc-js';
import { GRPC_REASON_KEY } from '@soma/contracts';

/**
 * grpc-js answers a request message that is not a valid protobuf encoding of its type (random bytes, a truncated
 * encoding, a wrong wire type) with INTERNAL before any handler or interceptor sees it. It is the caller's fault:
 * the deserializers are made to return a marker instead of throwing (`tolerantDeserializers`), and the interceptor
 * answers the marker with INVALID_ARGUMENT and the same reason metadata as every other refusal (docs/adr/0003).
 */
const MALFORMED = Symbol.for('soma.malformed-request-message');

function isMalformed(message: unknown): boolean {
  return typeof message === 'object' && message !== null && MALFORMED in message;
}

interface MethodDefinitionLike {
  requestDeserialize?: (bytes: Buffer) => unknown;
}

/** Wrap every service method's request deserializer of a loaded package definition (before the server adds it). */
export function tolerantDeserializers(packageDefinition: Record<string, unknown>): void {
  for (const definition of Object.values(packageDefinition)) {
    if (!definition || typeof definition !== 'object' || 'format' in definition) continue; // message and enum types
    for (const method of Object.values(definition as Record<string, MethodDefinitionLike>)) {
      const original = method?.requestDeserialize;
      if (typeof original !== 'function') continue;
      method.requestDeserialize = (bytes: Buffer) => {
        try {
          return original(bytes);
        } catch {
          return { [MALFORMED]: true };
        }
      };
    }
  }
}

export const malformedMessageInterceptor: ServerInterceptor = (_method, call) => {
  let refused = false;
  const intercepting: ServerInterceptingCall = new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMessage: (message, nextMessage) => {
          if (!isMalformed(message)) return nextMessage(message);
          refused = true;
          const metadata = new Metadata();
          metadata.set(GRPC_REASON_KEY, 'INVALID_ARGUMENT');
          intercepting.sendStatus({ code: status.INVALID_ARGUMENT, details: 'INVALID_ARGUMENT: the request message is not a valid encoding of its type', metadata });
        },
        onReceiveHalfClose: (nextHalfClose) => {
          if (!refused) nextHalfClose();
        },
      }),
  });
  return intercepting;
};
