// Runs the rils command line (from source, through tsx) in a child process.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI's entry module. */
export const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lib/cli/index.ts');

/** What a finished command printed, and its exit status. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rils ...args` to the end, failing or not, with extra environment variables. */
export function rilsRun(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import=tsx', cli, ...args],
      { timeout: 240_000, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}
