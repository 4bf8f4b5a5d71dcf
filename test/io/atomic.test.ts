import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { fileSystemError, makeDir, writeFileAtomic, writeFilesAtomic } from '../../src/io/atomic.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorahub-atomic-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('atomic writes', () => {
  it('writeFileAtomic replaces content and leaves no temporary file', () => {
    const p = path.join(tmp, 'a.txt');
    writeFileAtomic(p, 'one');
    writeFileAtomic(p, [Buffer.from('tw'), Buffer.from('o')]);
    expect(fs.readFileSync(p, 'utf8')).toBe('two');
    expect(fs.readdirSync(tmp)).toEqual(['a.txt']);
  });

  it('writeFileAtomic into a missing folder → NOT_FOUND, nothing left behind', () => {
    const p = path.join(tmp, 'missing', 'a.txt');
    let err: unknown;
    try {
      writeFileAtomic(p, 'x');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LorahubError);
    expect((err as LorahubError).code).toBe('NOT_FOUND');
    expect((err as LorahubError).message).toContain(p);
  });

  it('writeFilesAtomic creates a new folder in one rename, or replaces files in an existing one', () => {
    const dir = path.join(tmp, 'nested', 'out');
    writeFilesAtomic(dir, [
      { name: 'x', data: 'x1' },
      { name: 'y', data: new Uint8Array([1, 2]) },
    ]);
    expect(fs.readdirSync(dir).sort()).toEqual(['x', 'y']);
    expect(fs.readdirSync(path.dirname(dir))).toEqual(['out']);
    fs.writeFileSync(path.join(dir, 'keep'), 'k');
    writeFilesAtomic(dir, [{ name: 'x', data: 'x2' }]);
    expect(fs.readFileSync(path.join(dir, 'x'), 'utf8')).toBe('x2');
    expect(fs.readdirSync(dir).sort()).toEqual(['keep', 'x', 'y']);
    expect(() => writeFilesAtomic(dir, [{ name: '../escape', data: '' }])).toThrow(LorahubError);
  });

  it('makeDir makes missing folders, and names the file in the way or the refusing place', () => {
    const deep = path.join(tmp, 'm', 'n', 'o');
    makeDir(deep);
    makeDir(deep); // already there: nothing to do
    expect(fs.statSync(deep).isDirectory()).toBe(true);
    const file = path.join(tmp, 'plain');
    fs.writeFileSync(file, '');
    expect(() => makeDir(file)).toThrow(`${file}: cannot create folder: not a directory (it is a file)`);
    expect(() => makeDir(path.join(file, 'x', 'y'))).toThrow(`${path.join(file, 'x', 'y')}: cannot create folder: not a directory (${file} is a file)`);
    // Node's own recursive mkdir spins forever here.
    expect(() => makeDir('/proc/lorahub-nope/x')).toThrow('/proc/lorahub-nope: cannot create folder: no such file or directory');
  });

  it('fileSystemError: strerror words, the path the user knows, BAD_FILE (NOT_FOUND for ENOENT); LorahubErrors pass', () => {
    const errno = (code: string) => Object.assign(new Error(`${code}: raw message, open '/x/.y.123.tmp'`), { code, syscall: 'open' });
    const full = fileSystemError('/x/y', 'write', errno('ENOSPC'));
    expect([full.code, full.message]).toEqual(['BAD_FILE', '/x/y: cannot write: no space left on device']);
    expect(fileSystemError('/x/y', 'write', errno('EROFS')).message).toBe('/x/y: cannot write: read-only file system');
    expect(fileSystemError('/x/y', 'write', errno('ENOENT')).code).toBe('NOT_FOUND');
    expect(fileSystemError('/x/y', 'write', errno('EWHATEVER')).message).toBe("/x/y: cannot write: EWHATEVER: raw message, open '/x/.y.123.tmp'");
    const mine = new LorahubError('LOCKED', 'held');
    expect(fileSystemError('/x', 'write', mine)).toBe(mine);
  });
});
