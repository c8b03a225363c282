// Runs the CLIP reference (../shared/reference/clip_ref.py, Debian's /usr/bin/python3 with python3-torch):
// the checkpoints users download, written as PyTorch writes them.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/reference/clip_ref.py');

/** `clip_ref.py ...args`, to its end (rejects with its stderr on failure). */
export async function clipRef(...args: string[]): Promise<string> {
  return (await exec('/usr/bin/python3', [script, ...args], { maxBuffer: 1 << 24 })).stdout;
}
