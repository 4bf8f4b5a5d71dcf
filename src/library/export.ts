/** `lorahub modules export`: a module back out as a plain PEFT adapter folder. */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { fileSystemError, isFileSystemError, makeDir } from '../io/atomic.ts';
import { basename, join, resolve } from 'node:path';
import { LorahubError } from '../errors.ts';
import { compareFiles, copyFileDurable, fsyncPath, tempName } from './files.ts';
import type { LibraryReader } from './reader.ts';

/**
 * Copies a module's stored files to `destDir` (which must not exist), bit for bit: the source is
 * checked against the manifest first and the copy against it afterwards, then renamed into place.
 */
export async function exportModule(lib: LibraryReader, name: string, destDir: string): Promise<string> {
  const entry = lib.getModule(name);
  const src = lib.moduleDir(name);
  const dest = resolve(destDir);
  if (existsSync(dest)) throw new LorahubError('BAD_ARGUMENT', `${destDir} already exists; export needs a new folder`);
  const check = await compareFiles(src, entry.files);
  if (check.problems.length > 0) {
    throw new LorahubError('INTEGRITY', `module "${name}" does not match the manifest: ${check.problems.join('; ')}`);
  }
  const parent = resolve(dest, '..');
  makeDir(parent);
  const tmp = join(parent, tempName('export', basename(dest)));
  try {
    mkdirSync(tmp);
    for (const f of Object.keys(entry.files)) copyFileDurable(join(src, f), join(tmp, f), join(dest, f));
    const copied = await compareFiles(tmp, entry.files);
    if (copied.problems.length > 0) {
      throw new LorahubError('INTEGRITY', `export of "${name}" to ${destDir} is corrupt: ${copied.problems.join('; ')}`);
    }
    renameSync(tmp, dest);
    fsyncPath(parent, true);
  } catch (err) {
    throw isFileSystemError(err) ? fileSystemError(destDir, 'export to', err) : err;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dest;
}
