/**
 * The library holds no module its own default `compose` refuses (issue 16 A): a module made for the
 * same weights under another `base_model_name_or_path` composes (the name is a hint, the weights
 * are the identity); one of another rank is refused at `add` naming --force, kept out of the
 * sampling when forced, and composes by name only with --harmonize, which the error names.
 * Through the CLI entry point (in process: fast), with a temporary library on the t5-gated fixture.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { runCli, type CliResult } from '../cli/run.ts';
import { adapterDir, MODEL, tempDir } from './helpers.ts';

const root = tempDir('compat');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const lib = join(root, 'lib');
const OTHER_NAME = join(root, 'a2-elsewhere');
const RANK2 = join(root, 'rank2');

/** `m` cut to its first two rank components (a valid module of rank 2, scaling α/2). */
function rank2(m: LoraModule): LoraModule {
  const targets = new Map(
    [...m.targets].map(([p, t]) => {
      const b = new Float32Array(t.dOut * 2);
      for (let i = 0; i < t.dOut; i++) b.set(t.b.subarray(i * t.r, i * t.r + 2), i * 2);
      return [p, { ...t, r: 2, a: t.a.slice(0, 2 * t.dIn), b, scaling: m.config.lora_alpha / 2 }];
    }),
  );
  return { ...m, config: { ...m.config, r: 2 }, targets };
}

function oneErrorLine(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^lorahub: error: /);
  expect(lines[0]).toMatch(pattern);
}

async function listed(): Promise<string[]> {
  const r = await runCli(['modules', 'list', '--library', lib, '--json']);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { name: string }[]).map((e) => e.name);
}

const compose = (...args: string[]) =>
  runCli(['compose', '--task', 'boolean_expressions', '--library', lib, '--budget', '7', '--no-eval', '--workers', '1', '--out', join(root, `run${Math.random()}`), ...args]);

beforeAll(async () => {
  const a2 = await readAdapter(adapterDir(2));
  // The same weights saved on another machine: PEFT records wherever the base was loaded from.
  await writeAdapter(OTHER_NAME, { ...a2, config: { ...a2.config, base_model_name_or_path: '/home/someone/t5-gated' } });
  await writeAdapter(RANK2, rank2(await readAdapter(adapterDir(0))));
  expect((await runCli(['modules', 'set-base', MODEL, '--library', lib])).code).toBe(0);
  for (const d of [adapterDir(0), adapterDir(1)]) expect((await runCli(['modules', 'add', d, '--library', lib])).code).toBe(0);
});

describe('modules add and the default compose', () => {
  it('a module for the same base weights under another base name is added and composes by default', async () => {
    expect((await runCli(['modules', 'add', OTHER_NAME, '--library', lib])).code).toBe(0);
    // The pool is exactly these three, so any seed samples all of them.
    const r = await compose('--num-modules', '3', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout.trim().split('\n').pop() as string) as { modules: string[] }).modules.sort()).toEqual(['a0', 'a1', 'a2-elsewhere']);
  });

  it('a module of another rank is refused, naming the conflict, --force and --harmonize; nothing changes', async () => {
    const manifest = readFileSync(join(lib, 'manifest.json'));
    oneErrorLine(
      await runCli(['modules', 'add', RANK2, '--library', lib]),
      1,
      /module "rank2" \(.*\) does not compose with the library's modules for its base: module "rank2", key "[^"]+": rank 2, expected 4 \(as "a0"\); use --force to add it anyway \(compose then never samples it; give it to compose by name with --harmonize truncate\|pad\)$/,
    );
    expect(readFileSync(join(lib, 'manifest.json')).equals(manifest)).toBe(true);
    expect(await listed()).toEqual(['a0', 'a1', 'a2-elsewhere']);
    expect((await runCli(['modules', 'verify', '--library', lib])).code).toBe(0);
  });

  it('with --force it is added but never sampled; by name, compose names --harmonize, and composes with it', async () => {
    const forced = await runCli(['modules', 'add', RANK2, '--library', lib, '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(/^lorahub: warning: added despite: module "rank2", key .*: rank 2, expected 4 \(as "a0"\); compose will not sample it$/m);
    expect(await listed()).toEqual(['a0', 'a1', 'a2-elsewhere', 'rank2']);
    const info = await runCli(['modules', 'info', 'rank2', '--library', lib]);
    expect(info.stdout).toMatch(/not sampled by compose \(accepted with --force\): module "rank2"/);
    expect((await runCli(['modules', 'verify', '--library', lib])).code).toBe(0);

    // Four modules in the library, three that compose sample from.
    oneErrorLine(await compose('--num-modules', '4'), 2, /has 3 modules compatible with .*, fewer than --num-modules 4$/);
    oneErrorLine(
      await compose('--modules', 'a0,rank2'),
      1,
      /module "rank2", key "[^"]+": rank 2, expected 4 \(as "a0"\); pass --harmonize truncate\|pad to compose modules of different ranks$/,
    );
    oneErrorLine(
      await runCli(['compose-weights', '--library', lib, '--modules', 'a0,rank2', '--weights', '1,1', '--out', join(root, 'cw')]),
      1,
      /rank 2, expected 4 .*; pass --harmonize truncate\|pad/,
    );
    expect((await compose('--modules', 'a0,rank2', '--harmonize', 'pad')).code).toBe(0);
  });

  it('verify fails a library filled before add checked composition (a module that breaks the default compose)', async () => {
    const file = join(lib, 'manifest.json');
    const saved = readFileSync(file, 'utf8');
    const m = JSON.parse(saved) as { modules: Record<string, { notSampled?: string | null }> };
    delete m.modules.rank2.notSampled;
    writeFileSync(file, JSON.stringify(m));
    try {
      const r = await runCli(['modules', 'verify', '--library', lib]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^FAIL\s+rank2\n\s+breaks the default compose: module "rank2", key .*: rank 2, expected 4 \(as "a0"\) \(remove it, or add it again forcing it in/m);
    } finally {
      writeFileSync(file, saved);
    }
  });
});

describe('composition and the base name', () => {
  it('without a base to check against, modules that claim different bases are refused', async () => {
    // No --model and a library without a default base: the names are all there is.
    const empty = join(root, 'empty');
    mkdirSync(empty);
    oneErrorLine(
      await runCli(['compose-weights', '--library', empty, '--modules', `${adapterDir(0)},${OTHER_NAME}`, '--weights', '1,1', '--out', join(root, 'cw2')]),
      1,
      /module "a2-elsewhere" was made for base "\/home\/someone\/t5-gated", module "a0" for "\.\.\/model"; name the base model \(--model DIR\)/,
    );
    const withBase = await runCli(['compose-weights', '--model', MODEL, '--modules', `${adapterDir(0)},${OTHER_NAME}`, '--weights', '1,1', '--out', join(root, 'cw3')]);
    expect(withBase.code).toBe(0);
  });
});
