import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';

describe('auth smoke', () => {
  let h: AuthHarness;
  beforeAll(async () => {
    h = await startAuthHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });
  it('issues a token and authenticates it over gRPC', async () => {
    const { token } = await h.issueToken({ tenant: 'acme', sub: 'alice', scopes: ['a:b'] });
    const p = await h.client().authenticate(`Bearer ${token}`);
    expect(p).toMatchObject({ sub: 'alice', tenant: 'acme', scopes: ['a:b'], method: 'jwt' });
    const { key } = await h.createApiKey({ tenant: 'acme', scopes: ['x'] });
    const q = await h.client().authenticate(key);
    expect(q).toMatchObject({ tenant: 'acme', method: 'api_key', scopes: ['x'] });
  });
});
