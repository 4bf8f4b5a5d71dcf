/**
 * `lorahub modules …` through the real entry point (node bin/lorahub.mjs), including a process
 * SIGKILLed in the middle of `add` (more kill points: test/faults/library-kill.test.ts).
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLibraryLock } from '../../src/library/lock.ts';
import { killAtFault } from '../faults/hooks/spawn.ts';
import { adapterDir, MODEL, runCli, tempDir } from './helpers.ts';

const root = tempDir('cli');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('lorahub modules (CLI)', () => {
  const lib = join(root, 'lib');

  it('sets the base, adds, lists, shows, exports and removes', async () => {
    expect((await runCli(['modules', 'set-base', MODEL, '--library', lib])).code).toBe(0);
    const add = await runCli(['modules', 'add', adapterDir(0), '--library', lib, '--task', 'greet', '--metric', 'em=0.5']);
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^added a0 \(r=4, 12 layers, base sha256:[0-9a-f]{64}\)/);
    expect((await runCli(['modules', 'add', adapterDir(1), '--library', lib])).code).toBe(0);

    const list = await runCli(['modules', 'list', '--library', lib]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0].split(/\s+/)).toEqual(['NAME', 'TASK', 'BASE', 'RANK', 'ALPHA', 'TARGETS', 'SIZE', 'METRICS']);
    expect(lines[1]).toMatch(/^a0\s+greet\s+[0-9a-f]{12}\s+4\s+32\s+q,v \(12\)\s+27\.7 KiB\s+em=0\.5$/);
    expect(lines[2]).toMatch(/^a1\s+-\s/);

    const json = JSON.parse((await runCli(['modules', 'list', '--library', lib, '--json'])).stdout) as Array<{ name: string; size: number }>;
    expect(json.map((e) => e.name)).toEqual(['a0', 'a1']);
    expect(json[0].size).toBeGreaterThan(27_000);

    const info = JSON.parse((await runCli(['modules', 'info', 'a0', '--library', lib, '--json'])).stdout) as { targets: string[]; task: string };
    expect(info.task).toBe('greet');
    expect(info.targets).toHaveLength(12);

    const dest = join(root, 'exported');
    expect((await runCli(['modules', 'export', 'a1', dest, '--library', lib])).code).toBe(0);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'README.md']) {
      expect(readFileSync(join(dest, f)).equals(readFileSync(join(adapterDir(1), f)))).toBe(true);
    }

    expect((await runCli(['modules', 'remove', 'a1', '--library', lib])).code).toBe(0);
    const missing = await runCli(['modules', 'info', 'a1', '--library', lib]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/lorahub: error: module "a1" is not in library/);
  });

  it('verify exits 1 with a per-module report when a file was modified', async () => {
    expect((await runCli(['modules', 'verify', '--library', lib])).code).toBe(0);
    const file = join(lib, 'a0', 'adapter_config.json');
    const original = readFileSync(file);
    writeFileSync(file, original.toString().replace('"r": 4', '"r": 4 '));
    const r = await runCli(['modules', 'verify', '--library', lib]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+a0\n\s+adapter_config\.json: sha256 mismatch/);
    expect(r.stderr).toMatch(/lorahub: error: library .* failed verification: a0/);
    const j = await runCli(['modules', 'verify', '--library', lib, '--json']);
    expect(j.code).toBe(1);
    expect((JSON.parse(j.stdout) as { ok: boolean }).ok).toBe(false);
    writeFileSync(file, original);
  });

  it('reports an invalid manifest with the file name and leaves it alone', async () => {
    const broken = join(root, 'broken');
    expect((await runCli(['modules', 'add', adapterDir(2), '--library', broken])).code).toBe(0);
    const file = join(broken, 'manifest.json');
    writeFileSync(file, '{"format": "lorahub-library", "version": 1,,}');
    for (const args of [['list'], ['verify'], ['add', adapterDir(0)], ['remove', 'a2']]) {
      const r = await runCli(['modules', ...args, '--library', broken]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/lorahub: error: .*broken\/manifest\.json: invalid JSON/);
    }
    expect(readFileSync(file, 'utf8')).toBe('{"format": "lorahub-library", "version": 1,,}');
  });

  it('fails fast when another process holds the lock', async () => {
    const lock = await acquireLibraryLock(lib);
    try {
      const r = await runCli(['modules', 'add', adapterDir(2), '--library', lib]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`lorahub: error: library ${lib} is locked by another lorahub process (pid ${process.pid}); retry later`);
    } finally {
      await lock.release();
    }
  });

  it('survives SIGKILL in the middle of add: the next command cleans up, lists and verifies cleanly', async () => {
    const killed = join(root, 'killed');
    expect((await runCli(['modules', 'set-base', MODEL, '--library', killed])).code).toBe(0);
    expect((await runCli(['modules', 'add', adapterDir(0), '--library', killed])).code).toBe(0);
    const manifestBefore = readFileSync(join(killed, 'manifest.json'));

    // Held (test/faults/hooks/fs-faults.mjs) after the module folder is copied and before it is
    // renamed into place, and killed there.
    await killAtFault(['modules', 'add', adapterDir(1), '--library', killed], {
      op: 'rename',
      match: /\/\.tmp-add-a1-[^/]* -> /,
      action: 'stop',
    });

    // What the killed run left: its temp folder, complete, and its lock; the manifest is untouched.
    const temps = readdirSync(killed).filter((e) => e.startsWith('.tmp-add-a1-'));
    expect(temps).toHaveLength(1);
    expect(readdirSync(join(killed, temps[0])).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    expect(readFileSync(join(killed, 'manifest.json')).equals(manifestBefore)).toBe(true);
    expect(existsSync(join(killed, '.lock'))).toBe(true);
    expect(existsSync(join(killed, 'a1'))).toBe(false);

    // The next command that opens the library breaks the dead owner's lock and removes the temp folder.
    const list = await runCli(['modules', 'list', '--library', killed, '--json']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((e) => e.name)).toEqual(['a0']);
    expect(readdirSync(killed).filter((e) => e.startsWith('.'))).toEqual([]);
    const verify = await runCli(['modules', 'verify', '--library', killed]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^ok\s+a0$/m);
    expect(verify.stdout).not.toMatch(/temporary entr/);

    const again = await runCli(['modules', 'add', adapterDir(1), '--library', killed]);
    expect(again.code).toBe(0);
    expect(readdirSync(killed).filter((e) => e.startsWith('.')).sort()).toEqual([]);
    const after = await runCli(['modules', 'verify', '--library', killed, '--json']);
    expect(after.code).toBe(0);
    expect((JSON.parse(after.stdout) as { modules: Array<{ name: string; ok: boolean }> }).modules).toMatchObject([
      { name: 'a0', ok: true },
      { name: 'a1', ok: true },
    ]);
  });

  it('exits 2 on a usage error', async () => {
    const r = await runCli(['modules', 'add']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument 'dir'/);
  });
});
