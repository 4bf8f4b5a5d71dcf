/**
 * The shipped default (issue 6): modules/ holds a base model and one module per upstream task,
 * intact (hashes), in PEFT's format, within the size budget, and found by read-only commands from
 * any folder. A fresh clone must be able to run `lorahub compose --task boolean_expressions`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SELECT } from '../src/adapt/run.ts';
import { SafetensorsFile } from '../src/io/safetensors.ts';
import { openLibrary, SHIPPED_LIBRARY_DIR, shippedBytes } from '../src/library/index.ts';
import { listTasks } from '../src/tasks/index.ts';
import { runCli } from './cli/run.ts';
import { REPO, T5_GATED } from './helpers.ts';

function keyLayout(file: string): string[] {
  const f = SafetensorsFile.open(file);
  try {
    // Block numbers aside: the same targets give the same key names.
    return [...new Set(f.names().map((k) => k.replace(/\.\d+\./g, '.N.')))].sort();
  } finally {
    f.close();
  }
}

describe('the shipped default library', () => {
  it('is this repository\'s modules/ folder', () => {
    expect(SHIPPED_LIBRARY_DIR.replace(/\/$/, '')).toBe(join(REPO, 'modules'));
  });

  it('has a base model and one module per upstream task, every file matching its recorded hash, ≤ 30 MB', async () => {
    const lib = await openLibrary(SHIPPED_LIBRARY_DIR);
    expect(lib.defaultBaseDir()).toBeDefined();
    const names = lib.listModules().map((e) => e.name).sort();
    const upstream = listTasks().filter((t) => t.kind === 'upstream').map((t) => t.name).sort();
    expect(names).toEqual(upstream);
    const report = await lib.verifyLibrary();
    expect(report.ok).toBe(true);
    expect(shippedBytes(SHIPPED_LIBRARY_DIR)).toBeLessThanOrEqual(30 * 2 ** 20);
  });

  it('stores modules with the fixture adapters\' config fields and PEFT key layout (loadable by Python PEFT)', async () => {
    const lib = await openLibrary(SHIPPED_LIBRARY_DIR);
    const fixtureConfig = JSON.parse(readFileSync(join(T5_GATED, 'adapters', 'a0', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const fixtureKeys = keyLayout(join(T5_GATED, 'adapters', 'a0', 'adapter_model.safetensors'));
    for (const entry of lib.listModules()) {
      const dir = lib.moduleDir(entry.name);
      expect(readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(config).sort(), entry.name).toEqual(Object.keys(fixtureConfig).sort());
      expect(config.peft_type).toBe('LORA');
      expect(config.task_type).toBe(fixtureConfig.task_type);
      // Same targets (q, v) as fixture a0, so the same key names up to block numbers.
      expect(keyLayout(join(dir, 'adapter_model.safetensors')), entry.name).toEqual(fixtureKeys);
    }
  });

  it('is what read-only commands use from any folder when no library is named', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'bin', 'lorahub.mjs'), 'modules', 'list', '--json'], {
      cwd: tmpdir(),
      env: { ...process.env, LORAHUB_LIBRARY: '' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const listed = (JSON.parse(r.stdout) as { name: string }[]).map((e) => e.name);
    expect(listed).toContain('bool_and');
  }, 60_000);

  it("carries the formats: the True/False modules alone answer BBH's bare prompt far better than the base (fourth edition)", async () => {
    // The base never trained on the bare "<expr> is" (formats are module-only) and, with no
    // mixed-operator True/False task in its mixture, answers 18.4% of the 250 generated test inputs;
    // the modules trained with the terse formats answer 78.0% (bool_and) and 82.4% (bool_not_chain).
    // A rebuild without formats loses that margin.
    const eval250 = async (extra: string[]) => {
      const r = await runCli(['eval', '--task', 'boolean_expressions', '--json', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { accuracy: number }).accuracy;
    };
    const base = await eval250([]);
    expect(base).toBeLessThan(0.5);
    for (const m of ['bool_and', 'bool_not_chain']) expect((await eval250(['--adapter', m])) - base, m).toBeGreaterThan(0.3);
  }, 120_000);

  it('composes for boolean_expressions with no --model or --modules (a short search)', async () => {
    const out = join(tmpdir(), `lorahub-shipped-${process.pid}`);
    const r = await runCli(['compose', '--task', 'boolean_expressions', '--budget', '13', '--workers', '1', '--no-eval', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
      weights: number[];
      modules: string[];
      evaluations: number;
      selection: { pool: number; scores: { module: string }[] };
    };
    // The default selection: the modules of the library with the lowest few-shot loss alone; on
    // this task the three True/False evaluation skills come first.
    const upstream = listTasks().filter((t) => t.kind === 'upstream').length;
    expect(result.selection.pool).toBe(upstream);
    expect(result.modules).toHaveLength(DEFAULT_SELECT);
    expect(result.selection.scores.slice(0, 3).map((s) => s.module).sort()).toEqual(['bool_and', 'bool_not_chain', 'bool_or']);
    expect(result.weights).toHaveLength(DEFAULT_SELECT);
    expect(result.evaluations).toBe(13);
  }, 120_000);
});
