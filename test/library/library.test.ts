import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { archFromHfConfig } from '../../src/models/index.ts';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import { acquireLibraryLock } from '../../src/library/lock.ts';
import {
  BASE_FINGERPRINT_METADATA_KEY,
  loadBaseModel,
  modelFingerprint,
  openLibrary,
  resolveModules,
  type Library,
} from '../../src/library/index.ts';
import { adapterDir, MODEL, tempDir } from './helpers.ts';

const root = tempDir('lib');
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A new library with the fixture model as default base. */
async function newLibrary(withBase = true): Promise<Library> {
  const lib = await openLibrary(join(root, `lib${counter++}`), { create: true });
  if (withBase) await lib.setDefaultBase(MODEL);
  return lib;
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<LorahubError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LorahubError);
    expect((err as LorahubError).code).toBe(code);
    expect((err as Error).message).toMatch(message);
    return err as LorahubError;
  }
  throw new Error(`expected ${code}`);
}

describe('library round trip', () => {
  let lib: Library;
  let fp: string;
  beforeAll(async () => {
    lib = await newLibrary();
    fp = await modelFingerprint(MODEL);
    for (const k of [2, 0, 1]) await lib.addModule(adapterDir(k), { task: `task${k}`, metrics: { em: k / 10 } });
  });

  it('lists what was added, with the base fingerprint and PEFT facts', () => {
    expect(lib.defaultBase?.fingerprint).toBe(fp);
    const list = lib.listModules();
    expect(list.map((e) => e.name)).toEqual(['a0', 'a1', 'a2']);
    const a1 = lib.getModule('a1');
    expect(a1.task).toBe('task1');
    expect(a1.metrics).toEqual({ em: 0.1 });
    expect(a1.peft).toEqual({ r: 4, alpha: 32, targetModules: ['q', 'v'], useRslora: false, targetCount: 12, baseModelNameOrPath: '../model' });
    expect(a1.base).toEqual({ fingerprint: fp, checkedAgainst: fp, problems: [] });
    expect(Object.keys(a1.files)).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
  });

  it('stores the safetensors adapter bit for bit and records its sha256', async () => {
    const { createHash } = await import('node:crypto');
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'README.md']) {
      const src = readFileSync(join(adapterDir(0), f));
      expect(readFileSync(join(lib.moduleDir('a0'), f)).equals(src)).toBe(true);
      expect(lib.getModule('a0').files[f].sha256).toBe(createHash('sha256').update(src).digest('hex'));
    }
    expect(existsSync(join(lib.moduleDir('a0'), 'adapter_model.bin'))).toBe(false);
  });

  it('exports a module bit-identical to what was added', async () => {
    const dest = join(root, 'exported-a2');
    await lib.exportModule('a2', dest);
    for (const f of readdirSync(lib.moduleDir('a2'))) {
      expect(readFileSync(join(dest, f)).equals(readFileSync(join(lib.moduleDir('a2'), f)))).toBe(true);
    }
    expect(readdirSync(dest).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    await rejectsWith(lib.exportModule('a2', dest), 'BAD_ARGUMENT', /already exists/);
    // The exported folder is a plain PEFT adapter again.
    const m = await readAdapter(dest);
    expect(m.targets.size).toBe(12);
  });

  it('refuses a duplicate name unless --force, then replaces', async () => {
    await rejectsWith(lib.addModule(adapterDir(1)), 'BAD_ARGUMENT', /"a1" already exists/);
    const r = await lib.addModule(adapterDir(2), { name: 'a1', force: true, task: 'replaced' });
    expect(r.replaced).toBe(true);
    expect(lib.getModule('a1').task).toBe('replaced');
    expect(readFileSync(join(lib.moduleDir('a1'), 'adapter_model.safetensors')).equals(
      readFileSync(join(adapterDir(2), 'adapter_model.safetensors')),
    )).toBe(true);
    expect(lib.staleTemps()).toEqual([]);
  });

  it('records metrics by merging', async () => {
    await lib.recordMetrics('a0', { bbh: 0.25, em: 0.5 });
    lib.refresh();
    expect(lib.getModule('a0').metrics).toEqual({ em: 0.5, bbh: 0.25 });
  });

  it('verifies cleanly, then detects a modified file', async () => {
    const clean = await lib.verifyLibrary();
    expect(clean.ok).toBe(true);
    expect(clean.base?.ok).toBe(true);
    expect(clean.modules.map((m) => [m.name, m.ok])).toEqual([['a0', true], ['a1', true], ['a2', true]]);

    const victim = join(lib.moduleDir('a2'), 'adapter_model.safetensors');
    const bytes = readFileSync(victim);
    bytes[bytes.length - 1] ^= 0x01; // one bit of one float
    writeFileSync(victim, bytes);
    const report = await lib.verifyLibrary();
    expect(report.ok).toBe(false);
    const a2 = report.modules.find((m) => m.name === 'a2');
    expect(a2?.ok).toBe(false);
    expect(a2?.problems.join('\n')).toMatch(/adapter_model\.safetensors: sha256 mismatch/);
    expect(report.modules.filter((m) => m.ok).map((m) => m.name)).toEqual(['a0', 'a1']);
    await rejectsWith(lib.loadModule('a2'), 'INTEGRITY', /module "a2".*sha256 mismatch/);
  });

  it('removes a module (folder and manifest entry)', async () => {
    await lib.removeModule('a2');
    expect(lib.listModules().map((e) => e.name)).toEqual(['a0', 'a1']);
    expect(existsSync(lib.moduleDir('a2'))).toBe(false);
    await rejectsWith(lib.removeModule('a2'), 'NOT_FOUND', /"a2" is not in library/);
    expect((await openLibrary(lib.dir)).listModules().map((e) => e.name)).toEqual(['a0', 'a1']);
  });
});

describe('adding', () => {
  it('converts a .bin-only adapter to safetensors with the same tensors', async () => {
    const src = join(root, 'bin-only', 'old_peft_module');
    cpSync(adapterDir(2), src, { recursive: true });
    rmSync(join(src, 'adapter_model.safetensors'));
    const lib = await newLibrary();
    const { entry } = await lib.addModule(src, { task: 'legacy' });
    expect(entry.name).toBe('old_peft_module');
    expect(entry.convertedFrom).toBe('adapter_model.bin');
    expect(readdirSync(lib.moduleDir(entry.name)).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    const stored = await lib.loadModule(entry.name);
    const reference = await readAdapter(adapterDir(2), { weights: 'safetensors' });
    expect([...stored.targets.keys()]).toEqual([...reference.targets.keys()]);
    for (const [key, t] of reference.targets) {
      expect(stored.targets.get(key)?.a).toEqual(t.a);
      expect(stored.targets.get(key)?.b).toEqual(t.b);
    }
    expect((await lib.verifyLibrary()).ok).toBe(true);
  });

  it('refuses a module with wrong shapes for the base unless --force', async () => {
    const other = join(root, 'narrow-base');
    cpSync(MODEL, other, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...cfg, d_model: 32 }));
    const lib = await newLibrary(false);
    await lib.setDefaultBase(other);
    const err = await rejectsWith(lib.addModule(adapterDir(0)), 'SHAPE_MISMATCH', /module "a0"/);
    expect(err.message).toContain('key decoder.block.0.layer.0.SelfAttention.q: expected [dOut, dIn] = [64, 32] (base), got [64, 64] (module)');
    expect(err.message).toContain('and 11 more');
    expect(lib.listModules()).toEqual([]);
    expect(readdirSync(lib.dir).filter((e) => e !== 'manifest.json')).toEqual([]);

    const forced = await lib.addModule(adapterDir(0), { force: true });
    expect(forced.entry.base.fingerprint).toBeNull();
    expect(forced.entry.base.problems).toHaveLength(12);
    expect(forced.warnings.join('\n')).toMatch(/added despite/);
    // Never sampled for a base it does not fit.
    expect(() => lib.sampleCompatible(1, 0, lib.defaultBase?.fingerprint ?? '')).toThrow(/0 module\(s\) compatible/);
  });

  it('refuses a module declaring another base fingerprint, naming expected and actual', async () => {
    const m = await readAdapter(adapterDir(1));
    m.metadata = { [BASE_FINGERPRINT_METADATA_KEY]: 'sha256:0123456789abcdef' };
    const src = join(root, 'other-base-module');
    await writeAdapter(src, m);
    const lib = await newLibrary();
    const fp = await modelFingerprint(MODEL);
    const err = await rejectsWith(lib.addModule(src), 'INCOMPATIBLE', /module "other-base-module"/);
    expect(err.message).toContain(`made for base sha256:0123456789abcdef, but the base is ${fp}`);
  });

  it('checks against --base when the library has no default, and says when no base is known', async () => {
    const lib = await newLibrary(false);
    const unchecked = await lib.addModule(adapterDir(0));
    expect(unchecked.entry.base.fingerprint).toBeNull();
    expect(unchecked.warnings.join('\n')).toMatch(/no base model known.*"\.\.\/model" only/);
    const checked = await lib.addModule(adapterDir(1), { base: MODEL });
    expect(checked.entry.base.fingerprint).toBe(await modelFingerprint(MODEL));
  });

  it('rejects bad names and non-adapter folders', async () => {
    const lib = await newLibrary(false);
    await rejectsWith(lib.addModule(adapterDir(0), { name: '../evil' }), 'BAD_ARGUMENT', /invalid module name/);
    await rejectsWith(lib.addModule(adapterDir(0), { name: 'base' }), 'BAD_ARGUMENT', /invalid module name/);
    await rejectsWith(lib.addModule(MODEL), 'NOT_FOUND', /not a PEFT adapter folder/);
  });
});

describe('manifest and lock safety', () => {
  it('reports a hand-broken manifest and never overwrites it', async () => {
    const lib = await newLibrary();
    await lib.addModule(adapterDir(0));
    const file = join(lib.dir, 'manifest.json');
    const broken = readFileSync(file, 'utf8').replace('"modules": {', '"modules": {,');
    writeFileSync(file, broken);
    await rejectsWith(openLibrary(lib.dir), 'BAD_FILE', /manifest\.json: invalid JSON/);
    // A Library opened before the edit re-reads under the lock and refuses too.
    await rejectsWith(lib.addModule(adapterDir(1)), 'BAD_FILE', /manifest\.json: invalid JSON/);
    await rejectsWith(lib.removeModule('a0'), 'BAD_FILE', /manifest\.json: invalid JSON/);
    await rejectsWith(lib.recordMetrics('a0', { x: 1 }), 'BAD_FILE', /manifest\.json: invalid JSON/);
    expect(readFileSync(file, 'utf8')).toBe(broken);
    expect(existsSync(lib.moduleDir('a1'))).toBe(false);
    // Valid JSON that is not a manifest is reported with the field.
    writeFileSync(file, JSON.stringify({ format: 'lorahub-library', version: 1, defaultBase: null, modules: { a0: { name: 'a0' } } }));
    await rejectsWith(openLibrary(lib.dir), 'BAD_FILE', /manifest\.json: not a lorahub library manifest \(modules\.a0\./);
  });

  it('keeps fields it does not know when rewriting the manifest', async () => {
    const lib = await newLibrary();
    const file = join(lib.dir, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...m, futureField: { keep: true } }));
    await lib.addModule(adapterDir(0));
    expect((JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>).futureField).toEqual({ keep: true });
  });

  it('fails fast with a clear message while another process holds the lock', async () => {
    const lib = await newLibrary();
    const lock = await acquireLibraryLock(lib.dir);
    try {
      await rejectsWith(
        lib.addModule(adapterDir(0)),
        'LOCKED',
        new RegExp(`library .* is locked by another lorahub process \\(pid ${process.pid}\\); retry later`),
      );
    } finally {
      await lock.release();
    }
    await lib.addModule(adapterDir(0));
    expect(lib.listModules().map((e) => e.name)).toEqual(['a0']);
  });

  it('gives the lock back when its owner record cannot be written (a full disk)', async () => {
    const lib = await newLibrary();
    const fs = (await import('node:fs')).default;
    const full = vi.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    });
    try {
      await rejectsWith(lib.addModule(adapterDir(0)), 'BAD_FILE', /\.lock\.owner: cannot write: no space left on device$/);
    } finally {
      full.mockRestore();
    }
    // Not "locked by another lorahub process (pid unknown)" until the lock goes stale.
    await lib.addModule(adapterDir(0));
    expect(lib.listModules().map((e) => e.name)).toEqual(['a0']);
  });

  it('a writer that loses the race for the lock names the winner\'s pid, even before the winner recorded it', async () => {
    const { mkdirSync } = await import('node:fs');
    const { hostname } = await import('node:os');
    const lib = await newLibrary();
    // The winner has made .lock and not yet written .lock.owner; it does 50 ms later.
    mkdirSync(join(lib.dir, '.lock'));
    setTimeout(() => writeFileSync(join(lib.dir, '.lock.owner'), JSON.stringify({ pid: process.ppid, host: hostname(), since: 'x' })), 50);
    await rejectsWith(lib.addModule(adapterDir(0)), 'LOCKED', new RegExp(`locked by another lorahub process \\(pid ${process.ppid}\\)`));
    rmSync(join(lib.dir, '.lock'), { recursive: true });
    rmSync(join(lib.dir, '.lock.owner'));
  });

  it('with lockWaitMs, waits for a held lock and commits once it is released', async () => {
    const first = await newLibrary();
    const lock = await acquireLibraryLock(first.dir);
    const waiting = await openLibrary(first.dir, { lockWaitMs: 10_000 });
    const t0 = performance.now();
    setTimeout(() => void lock.release(), 300);
    await waiting.addModule(adapterDir(0));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(waiting.listModules().map((e) => e.name)).toEqual(['a0']);
    expect((await waiting.verifyLibrary()).ok).toBe(true);
  });

  it('with lockWaitMs, gives up after the wait with LOCKED naming it', async () => {
    const first = await newLibrary();
    const lock = await acquireLibraryLock(first.dir);
    try {
      const waiting = await openLibrary(first.dir, { lockWaitMs: 200 });
      const t0 = performance.now();
      await rejectsWith(waiting.addModule(adapterDir(0)), 'LOCKED', /is locked by another lorahub process .*retry later \(waited 0\.2 s\)/);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
    } finally {
      await lock.release();
    }
    expect((await openLibrary(first.dir)).listModules()).toEqual([]);
  });

  it('lets every one of several waiting writers commit in turn', async () => {
    const first = await newLibrary();
    const libs = await Promise.all([0, 1, 2].map(() => openLibrary(first.dir, { lockWaitMs: 30_000 })));
    await Promise.all(libs.map((l, k) => l.addModule(adapterDir(k))));
    const reopened = await openLibrary(first.dir);
    expect(reopened.listModules().map((e) => e.name)).toEqual(['a0', 'a1', 'a2']);
    expect((await reopened.verifyLibrary()).ok).toBe(true);
  });

  it('repairs a --force replacement killed between its renames', async () => {
    const { renameSync } = await import('node:fs');
    const lib = await newLibrary();
    await lib.addModule(adapterDir(0));
    // Killed after moving the registered a0 aside: a0 missing. (pids above Linux's pid_max: dead.)
    renameSync(lib.moduleDir('a0'), join(lib.dir, '.tmp-old-a0-4194305-deadbeef'));
    expect((await lib.verifyLibrary()).ok).toBe(false);
    await lib.addModule(adapterDir(1));
    expect((await lib.verifyLibrary()).ok).toBe(true);
    // Killed after moving the new version in, before the manifest commit: a0 holds a2's files.
    renameSync(lib.moduleDir('a0'), join(lib.dir, '.tmp-old-a0-4194306-deadbeef'));
    cpSync(adapterDir(2), lib.moduleDir('a0'), { recursive: true });
    await lib.removeModule('a1');
    const report = await lib.verifyLibrary();
    expect(report.ok).toBe(true);
    expect(report.modules.map((m) => m.name)).toEqual(['a0']);
    expect(readFileSync(join(lib.moduleDir('a0'), 'adapter_model.safetensors')).equals(
      readFileSync(join(adapterDir(0), 'adapter_model.safetensors')),
    )).toBe(true);
    expect(lib.staleTemps()).toEqual([]);
  });

  it('opening a library repairs what a dead writer left, and leaves live processes\' entries and unmarked folders alone', async () => {
    const { mkdirSync } = await import('node:fs');
    const lib = await newLibrary();
    await lib.addModule(adapterDir(0));
    // A dead `add` of a1 killed after its rename into place (commit marker, a1 unregistered) and a
    // dead `remove` of a0 killed after its commit (marker, a0 registered in this copy: kept).
    cpSync(adapterDir(1), lib.moduleDir('a1'), { recursive: true });
    writeFileSync(join(lib.dir, '.tmp-commit-a1-4194305-deadbeef'), '');
    writeFileSync(join(lib.dir, '.tmp-commit-a0-4194305-deadbeef'), '');
    // A folder copied in by hand (no marker), and a live process's staging folder (the test runner's).
    cpSync(adapterDir(2), lib.moduleDir('mine'), { recursive: true });
    const live = `.base.${process.ppid}.0123456789ab.tmp`;
    mkdirSync(join(lib.dir, live));
    const reopened = await openLibrary(lib.dir);
    expect(readdirSync(lib.dir).sort()).toEqual([live, 'a0', 'manifest.json', 'mine']);
    expect(reopened.staleTemps()).toEqual([live]);
    const report = await reopened.verifyLibrary();
    expect(report.ok).toBe(true);
    expect(report.unregistered).toEqual(['mine']);
  });

  it('lets exactly one of several concurrent writers commit, and the manifest stays valid', async () => {
    const first = await newLibrary();
    const libs = [first, await openLibrary(first.dir), await openLibrary(first.dir)];
    const results = await Promise.allSettled(libs.map((l, k) => l.addModule(adapterDir(k))));
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as LorahubError).code).toBe('LOCKED');
    }
    const reopened = await openLibrary(first.dir);
    expect(reopened.listModules()).toHaveLength(ok.length);
    expect((await reopened.verifyLibrary()).ok).toBe(true);
    expect(reopened.staleTemps()).toEqual([]);
  });

  it('breaks a lock whose owner process is dead and cleans stale temp folders', async () => {
    const lib = await newLibrary();
    const { mkdirSync } = await import('node:fs');
    const { hostname } = await import('node:os');
    mkdirSync(join(lib.dir, '.lock'));
    // pid 2^22 + 1 is above Linux's default pid_max (2^22): certainly not running.
    writeFileSync(join(lib.dir, '.lock.owner'), JSON.stringify({ pid: 4194305, host: hostname(), since: 'x' }));
    mkdirSync(join(lib.dir, '.tmp-add-a9-1-dead'));
    writeFileSync(join(lib.dir, '.tmp-add-a9-1-dead', 'adapter_model.safetensors'), 'partial');
    expect(lib.staleTemps()).toEqual(['.tmp-add-a9-1-dead']);
    expect(lib.listModules()).toEqual([]);
    await lib.addModule(adapterDir(0));
    expect(lib.staleTemps()).toEqual([]);
    expect(existsSync(join(lib.dir, '.lock'))).toBe(false);
  });
});

describe('resolving and sampling', () => {
  let lib: Library;
  beforeAll(async () => {
    lib = await newLibrary();
    for (const k of [0, 1, 2]) await lib.addModule(adapterDir(k));
    for (const k of [0, 1, 2]) await lib.addModule(adapterDir(k), { name: `copy${k}` });
  });

  it('resolves library names and adapter folders in the given order', async () => {
    const base = await loadBaseModel(MODEL);
    const mods = await lib.resolveModules(['a2', adapterDir(0), 'copy1'], { base });
    expect(mods.map((m) => m.name)).toEqual(['a2', 'a0', 'copy1']);
    await rejectsWith(lib.resolveModules(['nope']), 'NOT_FOUND', /module "nope": not in library .* and not an adapter folder/);
    await rejectsWith(lib.resolveModules(['a0', adapterDir(0)]), 'BAD_ARGUMENT', /"a0" is given twice/);
    await rejectsWith(resolveModules(['a0']), 'NOT_FOUND', /module "a0": not an adapter folder/);
  });

  it('refuses modules that do not fit the base they will run on', async () => {
    const base = await loadBaseModel(MODEL);
    const narrow = { ...base, fingerprint: 'sha256:other', arch: archFromHfConfig({ ...base.arch.config.raw, d_model: 32 }) };
    await rejectsWith(lib.resolveModules(['a0'], { base: narrow }), 'INCOMPATIBLE', /module "a0" does not fit base/);
    expect(await lib.resolveModules(['a0'], { base: narrow, allowIncompatible: true })).toHaveLength(1);
  });

  it('samples compatible modules deterministically from a seed', async () => {
    const fp = await modelFingerprint(MODEL);
    const names = (n: number, seed: number) => lib.sampleCompatible(n, seed, fp).map((e) => e.name);
    expect(names(3, 42)).toEqual(names(3, 42));
    expect(new Set(names(6, 7))).toEqual(new Set(['a0', 'a1', 'a2', 'copy0', 'copy1', 'copy2']));
    // Pinned: a change in the sampler would silently change every "random N modules" experiment.
    expect(names(3, 42)).toEqual(['a1', 'a0', 'copy2']);
    const seen = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((s) => names(3, s).join(',')));
    expect(seen.size).toBeGreaterThan(1);
    expect(() => names(7, 1)).toThrow(/6 module\(s\) compatible .* 7 requested/);
    expect(() => lib.sampleCompatible(2, 1, 'sha256:unknown')).toThrow(/0 module\(s\) compatible/);
  });
});
