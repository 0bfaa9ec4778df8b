import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const lib = (name: string) => fileURLToPath(new URL(`./libs/${name}/src/index.ts`, import.meta.url));
const alias = Object.fromEntries(
  ['config', 'contracts', 'events', 'masking', 'observability', 'service-runtime', 'fernet', 'auth-client', 'authz-client', 'postgres', 'expiring-cache'].map((n) => [`@soma/${n}`, lib(n)]),
);

// SWC instead of esbuild: NestJS needs emitDecoratorMetadata, which esbuild does not emit.
const plugins = [swc.vite({ module: { type: 'es6' }, jsc: { target: 'es2022', parser: { syntax: 'typescript', decorators: true }, transform: { legacyDecorator: true, decoratorMetadata: true } } })];

export default defineConfig({
  plugins,
  resolve: { alias },
  test: {
    globals: true,
    // Integration files share the real servers; running files one at a time keeps them independent.
    fileParallelism: false,
    reporters: ['default'],
    projects: [
      { plugins, resolve: { alias }, test: { name: 'unit', globals: true, include: ['apps/**/src/**/*.spec.ts', 'libs/**/src/**/*.spec.ts'], environment: 'node' } },
      {
        plugins,
        resolve: { alias },
        test: {
          name: 'integration',
          globals: true,
          include: ['test/**/*.test.ts'],
          environment: 'node',
          // Real servers are shared: tests get generous timeouts (files run one at a time, see below).
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
