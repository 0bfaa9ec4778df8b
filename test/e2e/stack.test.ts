import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './support/stack.js';

describe('e2e stack harness', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ name: 'harness' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs all five services as child processes on their own ports, each answering GetServiceInfo', async () => {
    for (const svc of ['auth', 'authz', 'secrets', 'audit', 'retention'] as const) {
      const i = stack.get(svc);
      expect(i.alive()).toBe(true);
      expect(i.grpcPort).not.toBe({ auth: 20020, authz: 20030, secrets: 20040, audit: 20050, retention: 20060 }[svc]);
      const info = await stack.grpc(svc).call<{ service: string; instance_id: string }>('GetServiceInfo', {});
      expect(JSON.stringify(info)).toContain(stack.runId);
    }
    expect(stack.adminToken()).toMatch(/^eyJ/);
  });
});
