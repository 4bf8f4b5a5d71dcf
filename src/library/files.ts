/** File-system steps of the library's copy-then-rename protocol. */
import { chmodSync, closeSync, copyFileSync, fsyncSync, openSync, readdirSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileSystemError } from '../io/atomic.ts';
import type { FileRecord } from './manifest.ts';
import { sha256File } from './hash.ts';

/**
 * Prefix of every temporary entry the library makes in its folder (in-progress adds, folders being
 * replaced or removed). A dot keeps them out of listings; the next mutating command, which holds
 * the lock and so knows no other writer is running, deletes them.
 */
export const TEMP_PREFIX = '.tmp-';

/** `.tmp-<what>-<name>-<pid>-<random>`: unique per process and call. */
export function tempName(what: string, name: string): string {
  return `${TEMP_PREFIX}${what}-${name}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Entries a killed run may leave: our `.tmp-*` folders and io/atomic.ts's `.<file>.<pid>.<hex>.tmp`. */
export function isTempEntry(entry: string): boolean {
  return entry.startsWith(TEMP_PREFIX) || (entry.startsWith('.') && entry.endsWith('.tmp'));
}

/**
 * The process that made temporary entry `entry`, from its name: tempName's
 * `.tmp-<what>-<name>-<pid>-<hex>`, io/atomic.ts's `.<file>.<pid>.<hex>.tmp` and lock.ts's
 * `.lock.owner.<pid>.claim.tmp`; undefined for any other name.
 */
export function tempOwner(entry: string): number | undefined {
  const m = /-(\d+)-[0-9a-f]{8}$/.exec(entry) ?? /\.(\d+)\.(?:[0-9a-f]{12}|claim)\.tmp$/.exec(entry);
  return m ? Number(m[1]) : undefined;
}

/**
 * fsync a file or folder. A file's failure is thrown as the errno error (the caller names the path
 * the user knows: never our temporary name); folders are best effort (some file systems refuse to
 * open them).
 */
export function fsyncPath(path: string, isDir = false): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch (err) {
    if (!isDir) throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Copies one file and makes it durable before anything renames it into view. The copy is made
 * owner-writable: copyFile keeps the source's mode, and read-only sources (a mounted hub cache)
 * would otherwise give read-only library files. A failure (a full disk, a source that cannot be
 * read) names `shown`, the file's final path, not `dst` in a temporary folder.
 */
export function copyFileDurable(src: string, dst: string, shown: string = dst): void {
  try {
    copyFileSync(src, dst);
    chmodSync(dst, 0o644);
    fsyncPath(dst);
  } catch (err) {
    throw fileSystemError(shown, `copy from ${src}`, err);
  }
}

/** Regular files directly inside `dir`, sorted. Sub-folders are not part of a PEFT adapter. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
}

/**
 * Bytes a library folder ships: everything under it except training checkpoints (`*.ckpt`,
 * `.build/`), which build-default leaves there and git ignores.
 */
export function shippedBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.endsWith('.ckpt') || e.name === '.build') continue;
    const p = join(dir, e.name);
    n += e.isDirectory() ? shippedBytes(p) : statSync(p).size;
  }
  return n;
}

/** sha256 + size of every file in `dir`. */
export async function hashFolder(dir: string): Promise<Record<string, FileRecord>> {
  const out: Record<string, FileRecord> = {};
  for (const f of listFiles(dir)) out[f] = await sha256File(join(dir, f));
  return out;
}

/** Mismatches between recorded and actual files of a folder: one message per file. */
export async function compareFiles(dir: string, recorded: Record<string, FileRecord>): Promise<{ problems: string[]; extra: string[] }> {
  const problems: string[] = [];
  for (const [f, rec] of Object.entries(recorded)) {
    const path = join(dir, f);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st || !st.isFile()) {
      problems.push(`${f}: missing`);
      continue;
    }
    const actual = await sha256File(path);
    if (actual.sha256 !== rec.sha256 || actual.bytes !== rec.bytes) {
      problems.push(
        `${f}: sha256 mismatch (recorded ${rec.sha256.slice(0, 12)}…, ${rec.bytes} bytes; found ${actual.sha256.slice(0, 12)}…, ${actual.bytes} bytes)`,
      );
    }
  }
  const extra = listFiles(dir).filter((f) => !(f in recorded));
  return { problems, extra };
}
