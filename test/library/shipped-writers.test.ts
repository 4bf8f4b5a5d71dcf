/**
 * Commands that write a library never change the shipped one (the package's own modules/) by
 * default: run from the repository root, where ./modules IS the shipped library, they stop with a
 * usage error that says to pass --library DIR (or LORAHUB_LIBRARY), and modules/ is unchanged.
 * Naming a library (flag or environment) still works from there. Through the real CLI (spawned:
 * the working folder and the environment are what is tested).
 *
 * Every refused command here would fail anyway if the guard were missing (a module that does not
 * fit the shipped base, a module that is not there, a base folder that does not exist), so a
 * regression shows as a wrong message, never as a changed modules/.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adapterDir, MODEL, REPO, runCli, tempDir } from './helpers.ts';

const root = tempDir('shipped-writers');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SHIPPED = join(REPO, 'modules');
const NO_ENV = { LORAHUB_LIBRARY: '' };

describe('writers and the shipped library', () => {
  it('modules add/remove/set-base and train from the repository root are refused; modules/ is unchanged', async () => {
    const manifest = readFileSync(join(SHIPPED, 'manifest.json'));
    const entries = readdirSync(SHIPPED).sort();
    const results = await Promise.all([
      runCli(['modules', 'add', adapterDir(0)], NO_ENV),
      runCli(['modules', 'remove', 'no-such-module'], NO_ENV),
      runCli(['modules', 'set-base', join(root, 'no-such-model')], NO_ENV),
      runCli(['train', '--task', 'bool_and', '--steps', '1'], NO_ENV),
    ]);
    for (const r of results) {
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(
        `lorahub: error: ${SHIPPED} is the library this package ships, which commands that write leave alone: ` +
          'pass --library DIR (or set LORAHUB_LIBRARY) for the library to change (naming this folder changes it on purpose)',
      );
    }
    expect(readFileSync(join(SHIPPED, 'manifest.json')).equals(manifest)).toBe(true);
    expect(readdirSync(SHIPPED).sort()).toEqual(entries);
    const list = await runCli(['modules', 'list', '--json'], NO_ENV);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as unknown[]).length).toBeGreaterThan(0);
  });

  it('a library named by --library or LORAHUB_LIBRARY is written from the repository root', async () => {
    const byFlag = join(root, 'by-flag');
    const byEnv = join(root, 'by-env');
    const [flag, env] = await Promise.all([
      runCli(['modules', 'set-base', MODEL, '--library', byFlag], NO_ENV),
      runCli(['modules', 'set-base', MODEL], { LORAHUB_LIBRARY: byEnv }),
    ]);
    expect(flag.code).toBe(0);
    expect(env.code).toBe(0);
    expect(existsSync(join(byFlag, 'manifest.json'))).toBe(true);
    expect(existsSync(join(byEnv, 'manifest.json'))).toBe(true);
  });
});
