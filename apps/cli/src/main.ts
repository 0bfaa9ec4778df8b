import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';

/** A command module: `apps/cli/src/commands/<area>.ts` exporting `register(program)`, which adds the command `<area>`. */
export interface CommandModule {
  register(program: Command): void;
}

/** `npx soma …`: the operator command line. Each area's commands live in their own module. */
async function main(): Promise<void> {
  const program = new Command('soma').description('Soma security suite operator CLI').showHelpAfterError();
  const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = (await readdir(commandsDir)).filter((f) => /\.(js|ts)$/.test(f) && !/\.(spec|d)\.(js|ts)$/.test(f)).sort();
  // A module is named after its top-level command (`soma api-keys …` lives in api-keys.ts). Loading only the
  // one asked for keeps each invocation cheap (every module pulls in its own clients); --help and unknown
  // commands load them all so that commander can list them.
  const asked = process.argv[2];
  const only = files.filter((f) => f.replace(/\.(js|ts)$/, '') === asked);
  for (const file of only.length === 1 ? only : files) {
    const mod = (await import(pathToFileURL(join(commandsDir, file)).href)) as Partial<CommandModule>;
    mod.register?.(program);
  }
  await program.parseAsync(process.argv);
}

main().catch((error: unknown) => {
  process.stderr.write(`soma: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
