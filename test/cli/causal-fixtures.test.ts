/**
 * The decoder-only fixtures (llama-gqa, gpt2) through the real CLI on both engines: `score` with
 * and without an adapter read from .safetensors and from .bin, `generate`, and `compose-weights`
 * reproduce what transformers + PEFT + lorahub recorded (the engine-level checks are
 * test/engine/causal.test.ts; this proves the commands a user runs).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { FIXTURES } from '../helpers.ts';
import { runCli } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-causal-fixtures-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Expected {
  per_example_loss_sum: number[];
  generated_new_tokens: number[][];
}
interface Case {
  name: string;
  prompt_ids: number[][];
  target_ids: number[][];
  expected: Expected;
}
interface AdapterCases {
  single_adapter: { adapter: string; cases: (Expected & { name: string })[] }[];
  composition: { weights: number[]; composed_state_dict: Record<string, { shape: number[]; values: unknown }> };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);

describe.each(['llama-gqa', 'gpt2'].flatMap((fixture) => ['ort', 'tfjs'].map((engine) => ({ fixture, engine }))))('$fixture through the CLI ($engine)', ({ fixture, engine }) => {
  const F = join(FIXTURES, fixture);
  const model = join(F, 'model');
  const cases = (JSON.parse(readFileSync(join(F, 'cases.json'), 'utf8')) as { cases: Case[] }).cases;
  const ac = JSON.parse(readFileSync(join(F, 'adapter_cases.json'), 'utf8')) as AdapterCases;
  const dir = join(tmp, `${fixture}-${engine}`);
  cpSync(join(F, 'adapters'), join(dir, 'adapters'), { recursive: true });
  // a0 as a .bin-only folder: the pickle reader's path.
  rmSync(join(dir, 'adapters', 'a0', 'adapter_model.safetensors'));
  const lines = cases.flatMap((c) => c.prompt_ids.map((p, b) => ({ input_ids: p, labels: c.target_ids[b] })));
  const data = join(dir, 'ids.jsonl');
  writeFileSync(data, lines.map((l) => JSON.stringify(l)).join('\n'));
  const prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, lines.map((l) => JSON.stringify({ input_ids: l.input_ids })).join('\n'));
  const cli = (...args: string[]) => runCli(['--engine', engine, ...args]);
  const sums = (stdout: string) => stdout.trim().split('\n').map((l) => { const r = JSON.parse(l) as { loss: number; tokens: number }; return r.loss * r.tokens; });

  it('score: per-example losses of the base and of a0 (.bin) and a1 (.safetensors)', async () => {
    const runs: [string[], Expected[]][] = [
      [[], cases.map((c) => c.expected)],
      [['--adapter', join(dir, 'adapters', 'a0')], ac.single_adapter[0].cases],
      [['--adapter', join(F, 'adapters', 'a1')], ac.single_adapter[1].cases],
    ];
    for (const [extra, want] of runs) {
      const r = await cli('score', '--model', model, '--data', data, '--json', ...extra);
      expect(r.stderr, extra.join(' ')).toBe('');
      const got = sums(r.stdout);
      const expected = want.flatMap((w) => w.per_example_loss_sum);
      expect(got).toHaveLength(expected.length);
      got.forEach((s, i) => expect(rel(s, expected[i]), `${extra.join(' ')} example ${i}`).toBeLessThan(1e-5));
    }
  });

  it('generate: the fixture greedy ids, with and without an adapter', async () => {
    for (const [extra, want] of [[[], cases.map((c) => c.expected)], [['--adapter', join(dir, 'adapters', 'a0')], ac.single_adapter[0].cases]] as [string[], Expected[]][]) {
      const r = await cli('generate', '--model', model, '--data', prompts, '--max-new-tokens', '8', '--json', ...extra);
      expect(r.stderr).toBe('');
      const ids = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { output_ids: number[] }).output_ids);
      expect(ids).toEqual(want.flatMap((w) => w.generated_new_tokens));
    }
  });

  it('compose-weights: the composed tensors are lorahub’s, bit for bit', async () => {
    const out = join(dir, 'composed');
    const mods = ['a0', 'a1', 'a2'].map((a) => join(dir, 'adapters', a)).join(',');
    const r = await cli('compose-weights', '--model', model, '--modules', mods, '--weights', ac.composition.weights.join(','), '--out', out);
    expect(r.stderr).toBe('');
    const { tensors } = readSafetensors(join(out, 'adapter_model.safetensors'));
    for (const [key, want] of Object.entries(ac.composition.composed_state_dict)) {
      const t = tensors.get(key.replace(/\.default\.weight$/, '.weight'));
      expect(t, key).toBeDefined();
      expect(Array.from(t?.data as Float32Array)).toEqual(flat(want.values).map(Math.fround));
    }
  });
});
