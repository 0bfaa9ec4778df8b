import { afterAll, beforeAll, describe, vi } from 'vitest';
import { startStack, type Stack } from '../e2e/support/stack.js';
import { captureTopics, CAPTURED_TOPICS, holdInfraShared, newContext, PATIENT_ENV, type HostileContext, type KafkaCapture } from './support/context.js';
import { closeRawClients } from './support/grpc.js';
import { bruteForceSuite } from './suites/brute-force.js';
import { eventFuzzSuite } from './suites/event-fuzz.js';
import { grpcMalformedSuite } from './suites/grpc-malformed.js';
import { httpFuzzSuite } from './suites/http-fuzz.js';
import { injectionSuite } from './suites/injection.js';
import { jwtSuite } from './suites/jwt.js';
import { leakSuite } from './suites/leaks.js';

/**
 * Hostile input against the five services running as their own processes on the real infrastructure.
 * One stack for the whole file so that the last suite can grep everything the run captured (every log line
 * at LOG_LEVEL=trace, security.events, security.audit and the DLQ, every table of the stack's database, every
 * error message returned) for every secret and credential the run used.
 */
// Each suite makes hundreds to thousands of calls; on a loaded shared machine one can take minutes. No timing is judged.
vi.setConfig({ testTimeout: 600_000 });

let stack: Stack | undefined;
let kafka: KafkaCapture | undefined;
let context: HostileContext | undefined;
let releaseInfra: (() => void) | undefined;
const ctx = (): HostileContext => {
  if (!context) throw new Error('the hostile stack did not start');
  return context;
};

beforeAll(async () => {
  releaseInfra = await holdInfraShared();
  kafka = await captureTopics(CAPTURED_TOPICS);
  stack = await startStack({ name: 'hostile', logLevel: 'trace', env: PATIENT_ENV });
  // Audit verifies bearer credentials with auth when it knows where auth is: give it the stack's auth instance.
  if (!stack.get('audit').env['AUTH_GRPC_ADDRESS']) {
    await stack.kill('audit', 'SIGTERM');
    await stack.restart('audit', { AUTH_GRPC_ADDRESS: stack.get('auth').grpcAddress });
  }
  context = await newContext(stack, kafka);
  for (const [i, v] of stack.secretValues().entries()) context.secret(`stack secret ${i}`, v);
}, 300_000);

afterAll(async () => {
  closeRawClients();
  await stack?.stop();
  await kafka?.stop();
  releaseInfra?.();
});

describe('hostile input', () => {
  jwtSuite(ctx);
  grpcMalformedSuite(ctx);
  httpFuzzSuite(ctx);
  injectionSuite(ctx);
  bruteForceSuite(ctx);
  eventFuzzSuite(ctx);
  leakSuite(ctx);
});
