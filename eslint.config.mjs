import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

/** Infrastructure and transport packages the domain may not touch (it holds the rules, nothing else). */
const INFRA_PACKAGES = ['pg', 'pg-*', 'ioredis', 'kafkajs', '@grpc/*', '@nestjs/microservices', '@openfga/sdk', 'better-sqlite3', 'express', 'undici'];

export default [
  { ignores: ['dist/**', '.local/**', 'node_modules/**', '.nx/**', 'bench/results/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      // A service never imports another; services and libs talk through scope:shared only.
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:auth', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:authz', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:secrets', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:audit', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:retention', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'type:lib', notDependOnLibsWithTags: ['type:app', 'type:runtime'] },
            { sourceTag: 'type:app', notDependOnLibsWithTags: ['type:app'] },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    // The domain holds the rules: no database, cache, broker, RPC framework or sibling layers.
    files: ['apps/*/src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: INFRA_PACKAGES, message: 'domain code may not import infrastructure or transport packages; define a port in domain/ and implement it in infra/' },
            { group: ['**/infra/**', '../infra/*', '../transport/*', '**/transport/**'], message: 'domain code may not import infra/ or transport/' },
            { group: ['@soma/service-runtime', '@soma/events', '@soma/postgres'], message: 'domain code may not import runtime or infrastructure libs' },
          ],
        },
      ],
    },
  },
  {
    // Services never spawn shells.
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='exec'][callee.object.name='child_process']", message: 'use execFile/spawn with an argument array' },
        { selector: "ImportSpecifier[imported.name='exec']", message: 'use execFile/spawn with an argument array, never a shell string' },
        { selector: "ImportSpecifier[imported.name='execSync']", message: 'use execFileSync with an argument array, never a shell string' },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
];
