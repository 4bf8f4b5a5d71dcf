/**
 * LoRAHub on a decoder-only base through the real CLI: `compose` on the llama-gqa and gpt2
 * fixtures from their token-id few-shot sets (prompt ids with bos, target ids with eos, as the
 * fixture READMEs lay them out), on both engines: the base objective (w = 0) is the reference's,
 * the search improves on it, and the composed adapter loads back (merge writes a checkpoint).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../helpers.ts';
import { runCli } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-causal-compose-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Objective {
  examples: { prompt_ids: number[][]; target_ids: number[][] };
  evaluations: { weights: number[]; objective: number }[];
  batch_size: number;
}

describe.each(['llama-gqa', 'gpt2'].flatMap((fixture) => ['ort', 'tfjs'].map((engine) => ({ fixture, engine }))))('compose on $fixture ($engine)', ({ fixture, engine }) => {
  const F = join(FIXTURES, fixture);
  const fx = (JSON.parse(readFileSync(join(F, 'adapter_cases.json'), 'utf8')) as { objective: Objective }).objective;
  const data = join(tmp, `${fixture}-${engine}.jsonl`);
  writeFileSync(data, fx.examples.prompt_ids.map((p, i) => JSON.stringify({ input_ids: p, labels: fx.examples.target_ids[i] })).join('\n'));
  const modules = ['a0', 'a1', 'a2'].map((a) => join(F, 'adapters', a)).join(',');
  const out = join(tmp, `${fixture}-${engine}`);

  it('starts from the reference objective at w = 0, improves on it, and the result merges', async () => {
    const r = await runCli([
      '--engine', engine, 'compose', '--model', join(F, 'model'), '--modules', modules, '--data', data,
      '--loss-normalization', 'reference', '--batch-size', String(fx.batch_size), '--budget', '40', '--seed', '1', '--no-eval', '--out', out, '--json',
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { base_objective: number; objective: number; weights: number[]; single_module_result: string | null };
    expect(report.single_module_result).toBeNull(); // no selection: nothing scored alone to fall back on
    const zero = fx.evaluations.find((e) => e.weights.every((w) => w === 0)) as { objective: number };
    expect(Math.abs(report.base_objective - zero.objective)).toBeLessThan(1e-5);
    expect(report.objective).toBeLessThan(report.base_objective);
    const merged = await runCli(['merge', '--model', join(F, 'model'), '--adapter', join(out, 'adapter'), '--out', join(out, 'merged')]);
    expect(merged.code).toBe(0);
  });
});
