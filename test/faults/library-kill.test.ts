/**
 * kill -9 in the middle of `modules add`, `add --force`, `remove` and `set-base`, at the steps of
 * the library's protocol where a folder and the manifest disagree (rename into place, moving a
 * replaced version aside, manifest written but not renamed, manifest committed but folder not gone):
 * afterwards `modules list` and `modules verify` succeed and show the library as it was before the
 * command or as the command left it, never in between; the leftovers (temporary folders, the dead
 * process's lock) are gone after the next command that opens the library; and the library takes
 * the next write. The kill points come from test/faults/hooks/fs-faults.mjs (no hook in lorahub).
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../../src/library/index.ts';
import { adapterDir, MODEL, tempDir } from '../library/helpers.ts';
import { copyLibrary, expectIntact, makeTemplate, manifestOf, runCli } from './helpers.ts';
import { killAtFault, type Fault } from './hooks/spawn.ts';

const root = tempDir('faults-kill');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let template: string;
/** Another folder holding the fixture model: a different default base for set-base. */
const otherBase = join(root, 'other-base');
beforeAll(async () => {
  template = await makeTemplate(join(root, 'template'));
  cpSync(MODEL, otherBase, { recursive: true });
});

const [A0, A1, A2] = [0, 1, 2].map(adapterDir);

interface Scenario {
  what: string;
  command: (lib: string) => string[];
  fault: Fault;
  /** The state the library must show afterwards: 'old' (as before the command) or 'new'. */
  state: 'old' | 'new';
  modules: readonly string[];
  sources: Readonly<Record<string, string>>;
  /** Run the command again afterwards (no fault): it must go through and leave `then` stored. */
  then?: Readonly<Record<string, string>>;
}

const add = (lib: string) => ['modules', 'add', A1, '--library', lib];
const replace = (lib: string) => ['modules', 'add', A2, '--name', 'a0', '--force', '--library', lib];
const oldState = { state: 'old', modules: ['a0'], sources: { a0: A0 } } as const;

// The kill between copy and rename of `add` is in test/library/cli.test.ts.
const scenarios: Scenario[] = [
  {
    what: 'add, after the rename into place and before the manifest commit',
    command: add,
    fault: { op: 'rename', match: /\/\.tmp-add-a1-[^/]* -> .*\/a1$/, when: 'after', action: 'stop' },
    ...oldState,
  },
  {
    what: 'add --force, between moving the registered version aside and moving the new one in',
    command: replace,
    fault: { op: 'rename', match: /\/a0 -> .*\/\.tmp-old-a0-/, when: 'after', action: 'stop' },
    ...oldState,
    then: { a0: A2 },
  },
  {
    what: 'add --force, after moving the new version in and before the manifest commit',
    command: replace,
    fault: { op: 'rename', match: /\/\.tmp-add-a0-[^/]* -> .*\/a0$/, when: 'after', action: 'stop' },
    ...oldState,
  },
  {
    what: 'remove, after the manifest commit and before the folder is moved away',
    command: (lib) => ['modules', 'remove', 'a0', '--library', lib],
    fault: { op: 'rename', match: / -> .*\/manifest\.json$/, when: 'after', action: 'stop' },
    state: 'new',
    modules: [],
    sources: {},
  },
  {
    what: 'set-base, with the new manifest written and not yet renamed',
    command: (lib) => ['modules', 'set-base', otherBase, '--library', lib],
    fault: { op: 'rename', match: /\/\.manifest\.json\.[^/]*\.tmp -> /, when: 'before', action: 'stop' },
    ...oldState,
  },
];

describe('kill -9 during a library write leaves the old or the new state', () => {
  scenarios.forEach((s, i) => {
    it(`${s.what} → ${s.state} state`, async () => {
      const lib = copyLibrary(template, join(root, `lib${i}`));
      const before = manifestOf(lib);
      await killAtFault(s.command(lib), s.fault);
      // The dead process left its lock and temporary entries behind.
      expect(existsSync(join(lib, '.lock'))).toBe(true);
      expect(readdirSync(lib).filter((e) => e.startsWith('.tmp-') || e.endsWith('.tmp')).length).toBeGreaterThan(0);

      const report = await expectIntact(lib, [...s.modules], s.sources);
      if (s.state === 'old') expect(manifestOf(lib).equals(before)).toBe(true);
      expect(report.base?.dir).toBe(MODEL);
      // Nothing of the dead process is left, its lock included.
      expect(readdirSync(lib).filter((e) => e.startsWith('.'))).toEqual([]);

      if (s.then) {
        const again = await runCli(s.command(lib));
        expect(again.stderr).toBe('');
        expect(again.code).toBe(0);
        const verify = await runCli(['modules', 'verify', '--library', lib, '--json']);
        expect(verify.code).toBe(0);
        expect((JSON.parse(verify.stdout) as VerifyReport).modules.map((m) => [m.name, m.ok])).toEqual(Object.keys(s.then).map((n) => [n, true]));
        for (const [name, src] of Object.entries(s.then)) {
          expect(readFileSync(join(lib, name, 'adapter_model.safetensors')).equals(readFileSync(join(src, 'adapter_model.safetensors')))).toBe(true);
        }
      }
    });
  });
});
