import { execFileSync } from 'node:child_process';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/infra.js';

/**
 * The architecture rules are enforced by lint (and so by the build): these tests feed ESLint code that
 * breaks each rule, at the path where it would live, and expect the rule to fire.
 */
let eslint: ESLint;
beforeAll(() => {
  // The Nx rule reads the project graph; make sure it exists as it does in `npm run lint`.
  execFileSync('npx', ['nx', 'show', 'projects'], { cwd: REPO_ROOT, env: { ...process.env, NX_DAEMON: 'false' }, stdio: 'ignore' });
  eslint = new ESLint({ cwd: REPO_ROOT });
});

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${REPO_ROOT}/${filePath}` });
  return (result?.messages ?? []).map((m) => m.ruleId ?? 'parse-error');
}

describe('module boundaries', () => {
  it('refuses a service importing another service', async () => {
    const ids = await ruleIds(`import { authzService } from '../../authz/src/authz.service-definition.js';\nexport const x = authzService;\n`, 'apps/auth/src/probe.ts');
    expect(ids).toContain('@nx/enforce-module-boundaries');
  });

  it('refuses infrastructure packages in the domain', async () => {
    for (const pkg of ['pg', 'ioredis', 'kafkajs', '@grpc/grpc-js', '@nestjs/microservices']) {
      const ids = await ruleIds(`import * as m from '${pkg}';\nexport const x = m;\n`, 'apps/auth/src/domain/probe.ts');
      expect(ids, pkg).toContain('no-restricted-imports');
    }
  });

  it('refuses the domain reaching into infra/ or transport/', async () => {
    const ids = await ruleIds(`import * as r from '../infra/redis.js';\nexport const x = r;\n`, 'apps/auth/src/domain/probe.ts');
    expect(ids).toContain('no-restricted-imports');
  });

  it('refuses shell-string execution in services', async () => {
    const ids = await ruleIds(`import { exec } from 'node:child_process';\nexport const x = exec;\n`, 'apps/secrets/src/infra/probe.ts');
    expect(ids).toContain('no-restricted-syntax');
  });

  it('accepts shared libraries and infrastructure in infra/', async () => {
    const ids = await ruleIds(`import { Pool } from 'pg';\nimport { maskApiKey } from '@soma/masking';\nexport const x = [Pool, maskApiKey];\n`, 'apps/auth/src/infra/probe.ts');
    expect(ids).toEqual([]);
  });
});
