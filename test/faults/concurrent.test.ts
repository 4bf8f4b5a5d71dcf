/**
 * Two writers at once, through the CLI: while one `modules add` holds the library lock (held in the
 * middle of its work by test/faults/hooks/fs-faults.mjs), another fails at once naming the
 * holder's pid, a writer that waits (what `train` does) commits after it, readers see the old
 * state and leave the holder's work alone; and of writers racing for real, each either commits or
 * fails naming a pid. Nothing is lost: every module a writer was told it added is there.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLibrary } from '../../src/library/index.ts';
import { adapterDir, runCli as spawnCli, tempDir } from '../library/helpers.ts';
import { copyLibrary, expectIntact, makeTemplate, runCli } from './helpers.ts';
import { startWithFault } from './hooks/spawn.ts';

const root = tempDir('faults-concurrent');
afterAll(() => rmSync(root, { recursive: true, force: true }));
let template: string;
beforeAll(async () => {
  template = await makeTemplate(join(root, 'template'));
});
const [A0, A1, A2] = [0, 1, 2].map(adapterDir);
const locked = (lib: string, pid: number) => `lorahub: error: library ${lib} is locked by another lorahub process (pid ${pid}); retry later`;

describe('concurrent writers', () => {
  it('one holds the lock: another fails naming its pid, a waiting one commits after it, readers see the old state', async () => {
    const lib = copyLibrary(template, join(root, 'held'));
    // Held with the lock, its copy of a1 done and not yet renamed into place.
    const holder = startWithFault(['modules', 'add', A1, '--library', lib], { op: 'rename', match: /\/\.tmp-add-a1-[^/]* -> /, action: 'stop' });
    try {
      await holder.stopped;
      const second = await spawnCli(['modules', 'add', A2, '--library', lib]);
      expect(second.stderr.trimEnd().split('\n')).toEqual([locked(lib, holder.child.pid as number)]);
      expect(second.code).toBe(1);

      // A reader sees the old state and leaves the holder's temporary folder alone.
      const list = await runCli(['modules', 'list', '--library', lib, '--json']);
      expect(list.code).toBe(0);
      expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((e) => e.name)).toEqual(['a0']);
      expect(readdirSync(lib).filter((e) => e.startsWith('.tmp-add-a1-'))).toHaveLength(1);

      // A writer that waits for the lock (train's lockWaitMs) goes through once the holder is done.
      const waiting = (await openLibrary(lib, { lockWaitMs: 20_000 })).addModule(A2);
      await new Promise((r) => setTimeout(r, 300));
      holder.child.kill('SIGCONT');
      const done = await holder.exited;
      expect(done.stderr).not.toMatch(/lorahub: (internal )?error/);
      expect(done.code).toBe(0);
      await waiting;
    } finally {
      if (holder.child.exitCode === null && holder.child.signalCode === null) holder.child.kill('SIGKILL');
    }
    await expectIntact(lib, ['a0', 'a1', 'a2'], { a0: A0, a1: A1, a2: A2 });
  });

  it('racing writers: each commits or fails naming a pid, and every commit is kept', async () => {
    const lib = join(root, 'race');
    await makeTemplate(lib);
    await runCli(['modules', 'remove', 'a0', '--library', lib]);
    const sources = [A0, A1, A2];
    const runs = await Promise.all(sources.map((src) => spawnCli(['modules', 'add', src, '--library', lib])));
    const added = sources.map((_, k) => `a${k}`).filter((_, k) => runs[k].code === 0);
    expect(added.length).toBeGreaterThanOrEqual(1);
    for (const r of runs) {
      if (r.code !== 0) {
        expect(r.code).toBe(1);
        expect(r.stderr.trimEnd()).toMatch(new RegExp(`^lorahub: error: library ${lib} is locked by another lorahub process \\(pid \\d+\\); retry later$`));
      }
    }
    await expectIntact(lib, added, Object.fromEntries(added.map((n) => [n, adapterDir(Number(n.slice(1)))])));
    // The ones refused go through when retried.
    for (const [k, r] of runs.entries()) if (r.code !== 0) expect((await runCli(['modules', 'add', sources[k], '--library', lib])).code).toBe(0);
    await expectIntact(lib, ['a0', 'a1', 'a2']);
  });
});
