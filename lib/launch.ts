/**
 * `rils train --nproc N`: starts N local ranks of the same command with torchrun's variables, and
 * ends them all when one fails.
 * @internal
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

/** A free TCP port on 127.0.0.1 for the rendezvous (the OS picks it; a race with others is unlikely). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs `args` (a CLI command line without --nproc) as ranks 0 … nproc − 1 of one job on this
 * machine, each with an equal share of the cores unless `--threads` is given. Resolves with the
 * exit status for the launcher: 0 when every rank succeeded.
 */
export async function launchLocalRanks(script: string, args: string[], nproc: number, masterPort?: number): Promise<number> {
  const port = masterPort ?? (await freePort());
  const threads = args.includes('--threads') ? [] : ['--threads', String(Math.max(1, Math.floor(availableParallelism() / nproc)))];
  const children: ChildProcess[] = [];
  let failedStatus: number | null = null; // of the first rank that failed
  const exits = Array.from({ length: nproc }, (_, rank) => new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, script, ...args, ...threads], {
      stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'inherit'],
      env: {
        ...process.env, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(nproc),
        MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      },
    });
    children.push(child);
    child.on('exit', (code, signal) => {
      if ((code !== 0 || signal) && failedStatus === null) {
        failedStatus = code || 1;
        console.error(`rils: rank ${rank} (pid ${child.pid}) ${signal ? `was killed by ${signal}` : `exited with status ${code}`}; ` +
          'the other ranks stop once they notice');
        // They notice on their next collective; a rank stuck elsewhere is ended after a grace period.
        setTimeout(() => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM')), 90_000).unref();
      }
      resolve();
    });
  }));
  // Ctrl-C (from a terminal it reaches the ranks too; twice is harmless): every rank saves and stops.
  const forward = () => children.forEach((c) => c.exitCode === null && c.kill('SIGINT'));
  process.on('SIGINT', forward);
  await Promise.all(exits);
  process.off('SIGINT', forward);
  return failedStatus ?? 0;
}
