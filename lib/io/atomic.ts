/**
 * Writing a file so that no crash leaves it half-written: a temporary file next to the target, fsync,
 * rename over the target, fsync of the folder. The write lands where the user points (through
 * symbolic links), only ever replaces a regular file, and fails with a typed error naming the user's
 * path. A temporary file left by a killed writer is removed by the next write of the same target.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, readlink, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { closeSync, openSync, rmSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

import { RilsInputError } from '../errors.js';

/** A temporary file whose writer is alive, or whose host cannot tell, is kept this long (ms). */
const STALE_AFTER_MS = 60 * 60 * 1000;
/** This machine in temporary file names: a writer's pid can only be checked on its own machine. */
const HOST =
  hostname()
    .replace(/[^A-Za-z0-9-]/g, '-')
    .slice(0, 32) || 'host';
/** `<target>.<host>.<pid>.<random>.rils-tmp`, and the `<target>.<12 hex>.tmp` of earlier versions. */
const TEMP = /^\.(?:([A-Za-z0-9-]+)\.(\d+)\.[0-9a-f]+\.rils-tmp|[0-9a-f]{12}\.tmp)$/;

const REASONS: Record<string, string> = {
  ENOENT: 'its folder does not exist',
  ENOTDIR: 'a part of its path is not a folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EFBIG: 'the file is too large for the file system',
  EIO: 'an input/output error',
  EISDIR: 'it is a folder',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'its name is too long',
  EMFILE: 'too many open files',
};

/** A failed write as a typed error naming the user's path (never the internal temporary file). */
function writeError(path: string, error: unknown, temp: string): RilsInputError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const reason =
    code !== undefined && Object.hasOwn(REASONS, code)
      ? `${REASONS[code]} (${code})`
      : String((error as Error | null)?.message ?? error).replaceAll(temp, path);
  const typed = new RilsInputError(`Cannot write ${path}: ${reason}; the file is left as it was`);
  typed.cause = error;
  return typed;
}

/** What a file system node that is not a regular file is, for messages. */
export function describeNode(info: Stats): string {
  if (info.isDirectory()) return 'a folder';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isFIFO()) return 'a named pipe (FIFO)';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The file a write of `path` must replace: `path` itself, or where its symbolic links lead (the link
 * stays a link, its target gets the new content). An existing target that is not a regular file
 * (a folder, a device, a FIFO) is refused: renaming over it would replace the node itself.
 */
async function writeTarget(path: string): Promise<{ target: string; mode?: number }> {
  let target = resolve(path);
  for (let hops = 0; hops <= 40; hops++) {
    let info: Stats;
    try {
      info = await lstat(target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { target }; // a new file
      throw writeError(path, error, target);
    }
    if (info.isSymbolicLink()) {
      target = resolve(
        dirname(target),
        await readlink(target).catch((error: unknown) => Promise.reject(writeError(path, error, target))),
      );
      continue;
    }
    if (info.isFile()) return { target, mode: info.mode & 0o7777 };
    const where = target === resolve(path) ? '' : ` (through symbolic links: ${target})`;
    throw new RilsInputError(
      `Expected a regular file or a new file for ${path} but it is ${describeNode(info)}${where}; nothing was written`,
    );
  }
  throw writeError(path, Object.assign(new Error('too many symbolic links'), { code: 'ELOOP' }), target);
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes the temporary files of earlier writes of `target` that cannot finish: their writer (on this
 * machine) is gone, or they are older than an hour. Best effort: a file that cannot be removed stays.
 */
async function removeStaleTemps(target: string): Promise<void> {
  const dir = dirname(target);
  const prefix = basename(target);
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const m = name.startsWith(prefix) ? TEMP.exec(name.slice(prefix.length)) : null;
      if (!m) return;
      const file = join(dir, name);
      const info = await lstat(file).catch(() => undefined);
      if (!info?.isFile()) return;
      const pid = Number(m[2]);
      const gone = m[1] === HOST && pid !== process.pid && processGone(pid);
      if (gone || Date.now() - info.mtimeMs > STALE_AFTER_MS) await rm(file, { force: true }).catch(() => undefined);
    }),
  );
}

/**
 * The temporary files being written now. One that is still here when the process exits (a
 * process.exit() during a save, an uncaught exception) is removed then: 'exit' listeners run on
 * every exit that is no signal or crash. Each name is added before its file is created.
 */
const writing = new Set<string>();
let removedAtExit = false;

function removeAtExit(temp: string): void {
  if (!removedAtExit) {
    process.on('exit', () => {
      for (const t of writing) rmSync(t, { force: true });
    });
    removedAtExit = true;
  }
  writing.add(temp);
}

/**
 * Writes `path` atomically: `write` fills a new temporary file in the target's folder, which is then
 * synced and renamed over the target (a regular file keeps its permission bits). On any failure the
 * temporary file is removed and a {@link RilsInputError} names `path` and the cause.
 */
export async function writeFileAtomic(path: string, write: (file: FileHandle) => Promise<void>): Promise<void> {
  const { target, mode } = await writeTarget(path);
  await removeStaleTemps(target);
  const temp = `${target}.${HOST}.${process.pid}.${randomBytes(4).toString('hex')}.rils-tmp`;
  removeAtExit(temp);
  let file: FileHandle | undefined;
  try {
    // Created here, on this thread: an exit from now on finds it to remove. An asynchronous create
    // could still be in flight on the thread pool at exit and make the file after the removal.
    closeSync(openSync(temp, 'wx'));
    file = await open(temp, 'r+');
    if (mode !== undefined) await file.chmod(mode);
    await write(file);
    await file.sync();
    await file.close();
    file = undefined;
    await rename(temp, target);
  } catch (error) {
    await file?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw writeError(path, error, temp);
  } finally {
    writing.delete(temp);
  }
  await syncFolder(dirname(target));
}

/** Makes a rename durable before a later step relies on it. File systems without folder fsync are fine. */
async function syncFolder(dir: string): Promise<void> {
  const folder = await open(dir, 'r').catch(() => undefined);
  await folder?.sync().catch(() => undefined);
  await folder?.close().catch(() => undefined);
}
