#!/usr/bin/env node
// `npx soma …` runs the built CLI (npm run build first; npm start and npm test build it).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist/apps/cli/src/main.js');
if (!existsSync(entry)) {
  process.stderr.write('soma: the CLI is not built yet; run `npm run build` first\n');
  process.exit(1);
}
await import(pathToFileURL(entry).href);
