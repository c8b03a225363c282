/**
 * `rils train --nproc N`: starts N local ranks of the same command with torchrun's variables, and
 * ends them all when one fails.
 * @internal
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism, constants } from 'node:os';

/**
 * After the first rank fails, the others get this long to notice (on their next collective) and exit
 * with their own error, then SIGTERM; what still runs {@link KILL_AFTER_MS} later gets SIGKILL (a
 * stopped or hung process cannot act on SIGTERM). The launcher exits within about 7 s of the failure.
 */
const TERM_AFTER_MS = 4_000;
const KILL_AFTER_MS = 3_000;

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

/** A rank's end, as the launcher reports it. */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with status ${code}`;
}

/** The launcher's status for a rank's end: its own, or 128 + the signal's number, as shells report it. */
function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return signal ? 128 + (constants.signals[signal] ?? 0) : code || 1;
}

/** The ranks of one job and how they are stopped once one has failed. */
class Ranks {
  readonly children: ChildProcess[] = [];
  /** The first rank that failed, when one has. */
  failed: { rank: number; status: number; how: string } | undefined;
  readonly #timers: NodeJS.Timeout[] = [];

  /** Records a rank's end; the first failure starts stopping the others. */
  exited(rank: number, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if ((code === 0 && !signal) || this.failed) return;
    this.failed = { rank, status: exitStatus(code, signal), how: describeExit(code, signal) };
    console.error(
      `rils: rank ${rank} (pid ${child.pid}) ${this.failed.how}; the other ranks get ` +
        `${TERM_AFTER_MS / 1000} s to stop on their own, then SIGTERM, then SIGKILL`,
    );
    this.#timers.push(setTimeout(() => this.#signal('SIGTERM'), TERM_AFTER_MS));
    this.#timers.push(setTimeout(() => this.#signal('SIGKILL'), TERM_AFTER_MS + KILL_AFTER_MS));
  }

  /** Sends `signal` to every rank still running (and SIGCONT after SIGTERM, so that a stopped one acts on it). */
  #signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    this.children.forEach((c, rank) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      console.error(`rils: rank ${rank} (pid ${c.pid}) is still running: ${signal}`);
      c.kill(signal);
      if (signal === 'SIGTERM') c.kill('SIGCONT');
    });
  }

  /** Forwards Ctrl-C (from a terminal it reaches the ranks too; twice is harmless): every rank saves and stops. */
  readonly interrupt = (): void => {
    this.children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGINT'));
  };

  done(): void {
    this.#timers.forEach(clearTimeout);
  }
}

/**
 * Runs `args` (a CLI command line without --nproc) as ranks 0 … nproc − 1 of one job on this
 * machine, each with an equal share of the cores unless `--threads` is given. Resolves with the
 * exit status for the launcher once every rank has ended: 0 when every rank succeeded, else the
 * status of the rank that failed first (named on stderr), the others stopped within seconds.
 */
export async function launchLocalRanks(
  script: string,
  args: string[],
  nproc: number,
  masterPort?: number,
): Promise<number> {
  const port = masterPort ?? (await freePort());
  const threads = args.includes('--threads')
    ? []
    : ['--threads', String(Math.max(1, Math.floor(availableParallelism() / nproc)))];
  const ranks = new Ranks();
  const exits = Array.from(
    { length: nproc },
    (_, rank) =>
      new Promise<void>((resolve) => {
        const child = spawn(process.execPath, [...process.execArgv, script, ...args, ...threads], {
          stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'inherit'],
          env: {
            ...process.env,
            RANK: String(rank),
            LOCAL_RANK: String(rank),
            WORLD_SIZE: String(nproc),
            MASTER_ADDR: '127.0.0.1',
            MASTER_PORT: String(port),
          },
        });
        ranks.children.push(child);
        child.on('exit', (code, signal) => {
          ranks.exited(rank, child, code, signal);
          resolve();
        });
      }),
  );
  process.on('SIGINT', ranks.interrupt);
  await Promise.all(exits);
  process.off('SIGINT', ranks.interrupt);
  ranks.done();
  if (!ranks.failed) return 0;
  console.error(`rils: the job failed: rank ${ranks.failed.rank} failed first (it ${ranks.failed.how})`);
  return ranks.failed.status;
}
