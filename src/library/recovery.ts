/**
 * Putting a library back in a committed state after a writer died in the middle of its work
 * (library.ts describes the protocol). Every step runs with the library lock held, so no other
 * library writer owns a temporary entry then; entries of a live process that writes into the
 * folder without the lock (`train-base --out <library>/base` stages `.base.<pid>.….tmp` there) are
 * left alone. Each step only moves or deletes folders so that they match the manifest, never the
 * manifest itself, and is safe to repeat when recovery itself is killed.
 */
import { closeSync, existsSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compareFiles, fsyncPath, isTempEntry, tempName, tempOwner } from './files.ts';
import { processAlive } from '../io/atomic.ts';
import type { LibraryReader } from './reader.ts';

/** tempName('old', name): the registered version of a module that `add --force` moved aside. */
const OLD_TEMP_RE = /^\.tmp-old-(.+)-\d+-[0-9a-f]{8}$/;
/** tempName('commit', name): `<name>` may hold a folder the manifest does not describe (markChange). */
const COMMIT_TEMP_RE = /^\.tmp-commit-(.+)-\d+-[0-9a-f]{8}$/;

/**
 * Leaves the marker under which a change may move `<name>`'s folder and commit the manifest;
 * the change deletes it (the returned path) once folder and manifest agree again. While it exists,
 * `<name>` may hold the new version before the commit, or a removed module after it.
 */
export function markChange(dir: string, name: string): string {
  const marker = join(dir, tempName('commit', name));
  closeSync(openSync(marker, 'wx'));
  fsyncPath(dir, true);
  return marker;
}

/** Temporary entries in `dir` whose maker is gone (or unknown): what recovery deals with. */
export function abandonedTemps(dir: string): string[] {
  return readdirSync(dir).filter((e) => {
    if (!isTempEntry(e)) return false;
    const pid = tempOwner(e);
    return pid === undefined || pid === process.pid || !processAlive(pid);
  });
}

/**
 * Deletes what killed writers left, with the lock held: for each commit marker, a folder `<name>`
 * the manifest does not describe; a version of `<name>` that `add --force` moved aside is put back
 * when it, not `<name>`, matches the manifest (or `<name>` is unregistered and gone: a replaced
 * folder that was never registered); every other abandoned temporary entry is deleted.
 */
export async function recoverFolders(lib: LibraryReader): Promise<void> {
  const temps = abandonedTemps(lib.dir);
  for (const e of temps) {
    const marked = COMMIT_TEMP_RE.exec(e);
    if (marked && !(await storedAsRecorded(lib, marked[1]))) rmSync(lib.moduleDir(marked[1]), { recursive: true, force: true });
  }
  for (const e of temps) {
    const path = join(lib.dir, e);
    const old = OLD_TEMP_RE.exec(e);
    if (old && existsSync(path) && (await shouldRestore(lib, old[1], path))) {
      rmSync(lib.moduleDir(old[1]), { recursive: true, force: true });
      renameSync(path, lib.moduleDir(old[1]));
      continue;
    }
    rmSync(path, { recursive: true, force: true });
  }
}

/** Whether folder `<name>` holds exactly the files the manifest records for it. */
async function storedAsRecorded(lib: LibraryReader, name: string): Promise<boolean> {
  const dir = lib.moduleDir(name);
  if (!lib.hasModule(name) || !existsSync(dir)) return false;
  return (await compareFiles(dir, lib.getModule(name).files)).problems.length === 0;
}

/** Whether `saved`, a version of `<name>` moved aside by a killed `add --force`, is the one to keep. */
async function shouldRestore(lib: LibraryReader, name: string, saved: string): Promise<boolean> {
  if (!lib.hasModule(name)) return !existsSync(lib.moduleDir(name));
  if (await storedAsRecorded(lib, name)) return false;
  return (await compareFiles(saved, lib.getModule(name).files)).problems.length === 0;
}
