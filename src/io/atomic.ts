/**
 * Atomic file and folder writes: a reader (another process, or a crash-interrupted run) sees either
 * the old content or the complete new content, never a half-written file.
 *
 * A file is written to a temporary name in the SAME folder (rename(2) is only atomic within one file
 * system), fsync'ed so the data is on disk before the rename makes it visible, then renamed over the
 * target; the folder is fsync'ed afterwards so the rename itself survives a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LorahubError } from '../errors.ts';

/** Writes in 1 GiB pieces: fs.writeSync cannot take more than 2 GiB at once. */
const WRITE_CHUNK = 1 << 30;

function tempNameFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  // A leading dot keeps half-written files out of casual listings; pid + random avoids collisions
  // between concurrent writers of the same target.
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

function ioError(target: string, what: string, err: unknown): LorahubError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = err instanceof Error ? err.message : String(err);
  return new LorahubError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_FILE', `${target}: cannot ${what}: ${reason}`, {
    cause: err,
  });
}

/** Best effort: some file systems (and Windows) refuse to open or fsync a directory. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Durability of the rename is an optimisation here, not a correctness requirement.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) {
    const n = fs.writeSync(fd, data, done, Math.min(WRITE_CHUNK, data.byteLength - done));
    done += n;
  }
}

/**
 * Writes `data` to `target` atomically (temp file in the same folder + fsync + rename).
 * The folder must exist. Pieces are written in order, so a large file never needs one big buffer.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string | Uint8Array[]): void {
  const tmp = tempNameFor(target);
  const pieces = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : Array.isArray(data) ? data : [data];
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    for (const piece of pieces) writeAll(fd, piece);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw ioError(target, 'write', err);
  }
  fsyncDir(path.dirname(target));
}

export interface FileToWrite {
  /** Plain file name inside the folder (no separators). */
  name: string;
  data: Uint8Array | string | Uint8Array[];
}

/**
 * Writes a set of files into `dir`.
 *
 * - If `dir` does not exist, every file is written into a temporary sibling folder which is then
 *   renamed to `dir`: other processes see no folder, or the complete one.
 * - If `dir` exists (re-saving over an adapter, keeping e.g. its README.md), each file is replaced
 *   atomically, in the order given, so callers put the file that "commits" the set last (PEFT's
 *   loader reads adapter_config.json first, so it goes last).
 */
export function writeFilesAtomic(dir: string, files: FileToWrite[]): void {
  for (const f of files) {
    if (f.name.includes('/') || f.name.includes(path.sep) || f.name === '..' || f.name === '.') {
      throw new LorahubError('BAD_ARGUMENT', `${dir}: invalid file name ${JSON.stringify(f.name)}`);
    }
  }
  if (fs.existsSync(dir)) {
    for (const f of files) writeFileAtomic(path.join(dir, f.name), f.data);
    return;
  }
  const parent = path.dirname(path.resolve(dir));
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (err) {
    throw ioError(parent, 'create folder', err);
  }
  const tmpDir = tempNameFor(path.resolve(dir));
  try {
    fs.mkdirSync(tmpDir);
    for (const f of files) writeFileAtomic(path.join(tmpDir, f.name), f.data);
    fs.renameSync(tmpDir, dir);
  } catch (err) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    if (err instanceof LorahubError) throw err;
    throw ioError(dir, 'write folder', err);
  }
  fsyncDir(parent);
}
