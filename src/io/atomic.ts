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

/** Whether process `pid` exists on this host (EPERM: it exists, but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const TEMP_RE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Deletes the temporary files and folders that atomic writes into `dir` left when their process
 * was killed (`.<name>.<pid>.<hex>.tmp` of a pid that no longer runs); a live writer's are kept.
 */
export function removeAbandonedTemps(dir: string): string[] {
  const gone = fs.readdirSync(dir).filter((e) => {
    const m = TEMP_RE.exec(e);
    return m !== null && Number(m[1]) !== process.pid && !processAlive(Number(m[1]));
  });
  for (const e of gone) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  return gone;
}

/**
 * What an errno means, in strerror's words (what `mkdir -p` or `cp` would print), so that a
 * failed write reads "out/report.json: cannot write: no space left on device", not Node's
 * "ENOSPC: no space left on device, open 'out/.report.json.123.ab12.tmp'".
 */
const ERRNO_PHRASES: Record<string, string> = {
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  EDQUOT: 'disk quota exceeded',
  EEXIST: 'already exists',
  EIO: 'input/output error',
  EISDIR: 'is a directory',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  ENOTDIR: 'not a directory',
  ENOTEMPTY: 'directory not empty',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EXDEV: 'on another file system',
};

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A failed file-system call as the one-line error the CLI prints: `<path>: cannot <what>: <problem>`.
 * `path` is the file or folder the user knows (the target, never our temporary name). A
 * LorahubError passes through unchanged; ENOENT is NOT_FOUND, every other errno BAD_FILE (exit 1:
 * the place is the problem, not the command line).
 */
export function fileSystemError(path: string, what: string, err: unknown): LorahubError {
  if (err instanceof LorahubError) return err;
  const code = errnoCode(err);
  const reason = (code && ERRNO_PHRASES[code]) ?? (err instanceof Error ? err.message : String(err));
  return new LorahubError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_FILE', `${path}: cannot ${what}: ${reason}`, { cause: err });
}

/** Whether `err` is an errno error of Node's fs (and so belongs in {@link fileSystemError}). */
export function isFileSystemError(err: unknown): err is NodeJS.ErrnoException {
  return !(err instanceof LorahubError) && errnoCode(err) !== undefined && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** stat that treats "nothing there" (ENOENT, or ENOTDIR: a file where a folder would be) as undefined. */
export function statIfAny(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fileSystemError(p, 'read', err);
  }
}

/**
 * `mkdir -p` that fails fast, naming the folder and the problem. Node 20's recursive mkdirSync
 * spins forever when mkdir(2) answers ENOENT although the parent exists (it does under /proc: the
 * `compose --out /proc/x` that hung at 100% CPU, deaf to SIGTERM), so the missing folders are made
 * one plain mkdir at a time, top down.
 */
export function makeDir(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let d = abs; ; d = path.dirname(d)) {
    const st = statIfAny(d);
    if (st) {
      if (!st.isDirectory()) {
        const culprit = d === abs ? 'it is a file' : `${d} is a file`;
        throw new LorahubError('BAD_FILE', `${dir}: cannot create folder: not a directory (${culprit})`);
      }
      break;
    }
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      // Another process made it in between: what we wanted.
      if (errnoCode(err) === 'EEXIST' && statIfAny(d)?.isDirectory()) continue;
      throw fileSystemError(d === abs ? dir : d, 'create folder', err);
    }
  }
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
  writeAtomicAs(target, data, target);
}

/** {@link writeFileAtomic}, with errors naming `shown` (the final path of a file staged elsewhere). */
function writeAtomicAs(target: string, data: Uint8Array | string | Uint8Array[], shown: string): void {
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
    throw fileSystemError(shown, 'write', err);
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
      throw new LorahubError('INTERNAL', `${dir}: invalid file name ${JSON.stringify(f.name)}`);
    }
  }
  if (fs.existsSync(dir)) {
    for (const f of files) writeFileAtomic(path.join(dir, f.name), f.data);
    return;
  }
  const parent = path.dirname(path.resolve(dir));
  makeDir(parent);
  const tmpDir = tempNameFor(path.resolve(dir));
  try {
    fs.mkdirSync(tmpDir);
    for (const f of files) writeAtomicAs(path.join(tmpDir, f.name), f.data, path.join(dir, f.name));
    fs.renameSync(tmpDir, dir);
  } catch (err) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    throw fileSystemError(dir, 'write folder', err);
  }
  fsyncDir(parent);
}
