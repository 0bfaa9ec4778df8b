import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { infra, REPO_ROOT } from '../support/infra.js';

const run = promisify(execFile);
const RUN_DIR = join(REPO_ROOT, '.local/run');

/** pid of every server that infra/local started, from its pid files. */
function serverPids(): Map<string, number> {
  const pids = new Map<string, number>();
  if (!existsSync(RUN_DIR)) return pids;
  for (const file of readdirSync(RUN_DIR).filter((f) => f.endsWith('.pid'))) {
    const name = file.replace(/\.pid$/, '');
    if (['auth', 'authz', 'secrets', 'audit', 'retention'].includes(name)) continue; // services, not infrastructure
    const pid = Number(readFileSync(join(RUN_DIR, file), 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(pid) && pid > 0) pids.set(name, pid);
  }
  return pids;
}

/**
 * Whether a process runs. A zombie does not: it has exited and holds nothing but its pid until the
 * reaper (pid 1 here, which reaps orphans on its own schedule) collects it.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Processes whose command line points into this checkout's .local folder (the servers' binaries, data, configs). */
async function processesUsingLocal(): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,args='], { maxBuffer: 8 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((l) => l.includes(join(REPO_ROOT, '.local')) || l.includes(`${REPO_ROOT}/infra/policy`))
    .filter((l) => !l.includes('ps -eo'));
}

describe('infra/local scripts', () => {
  afterAll(async () => {
    await infra('up');
  });

  it('up twice in a row is harmless: the second run keeps the same server processes and succeeds', async () => {
    await infra('up');
    const before = serverPids();
    expect([...before.keys()].sort()).toEqual(['kafka', 'opa', 'openfga', 'postgres', 'redis']);
    await infra('up');
    const after = serverPids();
    expect(after).toEqual(before);
    for (const pid of after.values()) expect(alive(pid)).toBe(true);
    await expect(infra('status')).resolves.toBeTruthy();
  });

  it('down stops every server and leaves no process behind; up brings them back', async () => {
    const before = serverPids();
    await infra('down');
    for (const [name, pid] of before) expect(alive(pid), `${name} (pid ${pid}) still alive`).toBe(false);
    expect(await processesUsingLocal()).toEqual([]);
    await expect(infra('status')).rejects.toBeTruthy(); // status exits non-zero when servers are down
    await infra('up');
    for (const pid of serverPids().values()) expect(alive(pid)).toBe(true);
  });
});
