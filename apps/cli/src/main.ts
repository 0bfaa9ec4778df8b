import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';

/** A command module: `apps/cli/src/commands/<area>.ts` exporting `register(program)`. */
export interface CommandModule {
  register(program: Command): void;
}

/** `npx soma …`: the operator command line. Each area's commands live in their own module. */
async function main(): Promise<void> {
  const program = new Command('soma').description('Soma security suite operator CLI').showHelpAfterError();
  const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = (await readdir(commandsDir)).filter((f) => /\.(js|ts)$/.test(f) && !/\.(spec|d)\.(js|ts)$/.test(f)).sort();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(commandsDir, file)).href)) as Partial<CommandModule>;
    mod.register?.(program);
  }
  await program.parseAsync(process.argv);
}

main().catch((error: unknown) => {
  process.stderr.write(`soma: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
