/**
 * A full disk (ENOSPC from test/faults/hooks/fs-faults.mjs) at each write of `modules add`:
 * copying the weights, converting a .bin adapter, the manifest, the lock's owner record. Each is
 * one `lorahub: error:` line naming the path the user knows and the problem, exit 1, no partial
 * module left, and the library as it was and writable. (compose's adapter save:
 * test/faults/compose.test.ts.)
 */
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterDir, runCli as spawnCli, tempDir } from '../library/helpers.ts';
import { copyLibrary, expectIntact, makeTemplate, manifestOf, runCli } from './helpers.ts';
import { faultEnv, lorahubLines, type Fault } from './hooks/spawn.ts';

const root = tempDir('faults-enospc');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let template: string;
/** An adapter as PEFT 0.3 saved it (adapter_model.bin only): `add` converts it to safetensors. */
const legacy = join(root, 'legacy');
beforeAll(async () => {
  template = await makeTemplate(join(root, 'template'));
  cpSync(adapterDir(1), legacy, { recursive: true });
  rmSync(join(legacy, 'adapter_model.safetensors'));
});
const A1 = adapterDir(1);

interface Case {
  what: string;
  src: string;
  fault: Fault;
  /** The error line, given the library folder. */
  error: (lib: string) => string;
}

const cases: Case[] = [
  {
    what: 'copying the weights in',
    src: A1,
    fault: { op: 'copyFile', match: /adapter_model\.safetensors -> /, action: 'enospc' },
    error: (lib) => `${lib}/a1/adapter_model.safetensors: cannot copy from ${A1}/adapter_model.safetensors: no space left on device`,
  },
  {
    what: 'converting a .bin adapter to safetensors',
    src: legacy,
    fault: { op: 'write', match: /\.tmp-add-legacy-/, bytes: 1000, action: 'enospc' },
    error: (lib) => `${lib}/legacy: cannot write: no space left on device`,
  },
  {
    what: 'writing the manifest (after the module folder was renamed into place)',
    src: A1,
    fault: { op: 'write', match: /\.manifest\.json\./, bytes: 100, action: 'enospc' },
    error: (lib) => `${lib}/manifest.json: cannot write: no space left on device`,
  },
  {
    what: "writing the lock's owner record",
    src: A1,
    fault: { op: 'write', match: /\.lock\.owner\./, action: 'enospc' },
    error: (lib) => `${lib}/.lock.owner: cannot write: no space left on device`,
  },
];

describe('modules add on a full disk', () => {
  cases.forEach((c, i) => {
    it(`${c.what}: one error line, exit 1, the library as it was and writable`, async () => {
      const lib = copyLibrary(template, join(root, `lib${i}`));
      const before = manifestOf(lib);
      const r = await spawnCli(['modules', 'add', c.src, '--library', lib], faultEnv(c.fault));
      expect(lorahubLines(r.stderr)).toEqual([`lorahub: error: ${c.error(lib)}`]);
      expect(r.code).toBe(1);
      // Nothing half-written: no module folder, no temporary entry, no lock.
      expect(readdirSync(lib).sort()).toEqual(['a0', 'manifest.json']);
      expect(manifestOf(lib).equals(before)).toBe(true);
      await expectIntact(lib, ['a0']);
      // Space again: the same add goes through at once (no lock left behind).
      const again = await runCli(['modules', 'add', c.src, '--library', lib]);
      expect(again.stderr).toBe('');
      expect(again.code).toBe(0);
    });
  });
});
