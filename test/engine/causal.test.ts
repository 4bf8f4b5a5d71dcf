/**
 * The ort engine on decoder-only models against the Hugging Face reference numbers of
 * ../shared/fixtures/{llama-gqa,gpt2} (transformers 4.40 + PEFT 0.10 + lorahub, float32; their
 * README.md says how rows, padding, position ids and labels were laid out): logits and final
 * hidden states (1e-4 absolute, where the attention mask is 1), per-example losses (1e-5
 * relative) in transformers' own layout (left and right padding) and through the engine seam
 * (prompts and targets joined by the engine), greedy ids (identical), single adapters read from
 * .bin and from .safetensors, the composition [0.5, −0.3, 1.2] (composed tensors bit-identical),
 * a merged checkpoint, and lorahub's objective at its recorded weights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FewShotObjective } from '../../src/adapt/objective.ts';
import { loadModel } from '../../src/engine/index.ts';
import type { OrtModel } from '../../src/engine/ort/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.ts';
import { compose, stackModules } from '../../src/lora/compose.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { padBatch } from '../../src/models/batch.ts';
import type { CausalBatch } from '../../src/models/family.ts';
import { FIXTURES, flat, readJson } from '../helpers.ts';

interface Expected {
  logits: number[][][];
  loss: number;
  per_example_loss_sum: number[];
  per_example_token_count: number[];
  generate_max_new_tokens_8: number[][];
  generated_new_tokens: number[][];
}

interface Case {
  name: string;
  padding_side: string;
  prompt_ids: number[][];
  target_ids: number[][];
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  labels: number[][];
  generate_input_ids: number[][];
  generate_attention_mask: number[][];
  expected: Expected & { last_hidden_state: number[][][] };
}

interface AdapterCases {
  single_adapter: { adapter: string; cases: Expected[] }[];
  composition: {
    weights: number[];
    composed_state_dict: Record<string, { shape: number[]; values: unknown }>;
    cases: Expected[];
    merged: { cases: Expected[] };
  };
  objective: {
    batch_size: number;
    examples: { prompt_ids: number[][]; target_ids: number[][] };
    evaluations: { weights: number[]; objective: number; default_get_loss: number }[];
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-causal-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rowsOf = (c: Case): CausalBatch => ({ inputIds: c.input_ids, attentionMask: c.attention_mask, positionIds: c.position_ids, labels: c.labels });

/** The engine seam's batch: prompts and targets padded separately (as eval/score and compose build it). */
const seamBatch = (prompts: number[][], targets: number[][]) => padBatch(prompts, targets, 0);

/** Max |got − want| of logits [B·S, V] over positions where the attention mask is 1. */
function maskedMaxDiff(got: Float32Array, want: number[][][], mask: number[][]): number {
  const S = mask[0].length;
  const V = want[0][0].length;
  let m = 0;
  mask.forEach((row, b) =>
    row.forEach((keep, t) => {
      if (!keep) return;
      for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(got[(b * S + t) * V + v] - want[b][t][v]));
    }),
  );
  return m;
}

function expectLosses(got: { sum: number[]; tokens: number[] }, want: Expected, label: string): void {
  expect(got.tokens, label).toEqual(want.per_example_token_count);
  got.sum.forEach((s, i) => {
    const w = want.per_example_loss_sum[i];
    expect(Math.abs(s - w) / Math.abs(w), `${label} example ${i}`).toBeLessThan(1e-5);
  });
}

/** The new ids of transformers' generate output (padded prompt + new ids) vs ours (start token + new ids). */
function expectGenerated(got: number[][], c: Case, want: Expected, label: string): void {
  const P = c.generate_input_ids[0].length;
  expect(got.map((r) => r.slice(1)), label).toEqual(want.generate_max_new_tokens_8.map((r) => r.slice(P)));
}

/**
 * PEFT merge_and_unload: W += s·B·A for a Linear [out, in], W += s·(B·A)ᵀ for a Conv1D [in, out]
 * (fan_in_fan_out); the fixture's merged model, written as a checkpoint.
 */
function mergedCheckpoint(modelDir: string, module: LoraModule, dir: string): string {
  cpSync(modelDir, dir, { recursive: true });
  const { tensors, metadata } = readSafetensors(join(modelDir, 'model.safetensors'));
  const out: TensorToWrite[] = [];
  for (const [name, t] of tensors) {
    const target = module.targets.get(name.replace(/\.weight$/, ''));
    const data = Float32Array.from(t.data);
    if (target && name.endsWith('.weight')) {
      const { r, dIn, dOut, a, b, scaling } = target;
      for (let o = 0; o < dOut; o++) {
        for (let i = 0; i < dIn; i++) {
          let s = 0;
          for (let k = 0; k < r; k++) s += b[o * r + k] * a[k * dIn + i];
          const at = module.config.fan_in_fan_out ? i * dOut + o : o * dIn + i;
          data[at] = Math.fround(data[at] + Math.fround(Math.fround(s) * scaling));
        }
      }
    }
    out.push({ name, dtype: 'F32', shape: t.shape, data });
  }
  writeSafetensors(join(dir, 'model.safetensors'), out, metadata);
  return dir;
}

describe.each(['llama-gqa', 'gpt2'])('ort engine on the %s fixture', (fixture) => {
  const F = join(FIXTURES, fixture);
  const cases = readJson<{ cases: Case[] }>(join(F, 'cases.json')).cases;
  const ac = readJson<AdapterCases>(join(F, 'adapter_cases.json'));
  let model: OrtModel;
  let adapters: { bin: LoraModule[]; st: LoraModule[] };

  beforeAll(async () => {
    model = (await loadModel(join(F, 'model'), { engine: 'ort', threads: 2 })) as OrtModel;
    const names = ac.single_adapter.map((a) => a.adapter);
    adapters = {
      bin: await Promise.all(names.map((a) => readAdapter(join(F, 'adapters', a), { weights: 'bin' }))),
      st: await Promise.all(names.map((a) => readAdapter(join(F, 'adapters', a), { weights: 'safetensors' }))),
    };
  });
  afterAll(async () => model?.dispose());

  it('base model: logits and hidden states to 1e-4, losses in both layouts, greedy ids', async () => {
    for (const c of cases) {
      const r = await model.causalLogits(rowsOf(c));
      expect(maskedMaxDiff(r.logits, c.expected.logits, c.attention_mask), c.name).toBeLessThan(1e-4);
      expect(maskedMaxDiff(r.hidden, c.expected.last_hidden_state, c.attention_mask), c.name).toBeLessThan(1e-4);
      expectLosses((await model.scoreCausal(rowsOf(c)))[0], c.expected, `${c.name} (HF layout)`);
      expectLosses((await model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids)))[0], c.expected, `${c.name} (engine seam)`);
      const gen = await model.generate({ inputIds: c.generate_input_ids, attentionMask: c.generate_attention_mask }, { maxNewTokens: 8 });
      expectGenerated(gen, c, c.expected, c.name);
      // Right-padded prompts (as the eval code pads them) are left-padded by the engine.
      const right = seamBatch(c.prompt_ids, []);
      expect(await model.generate(right, { maxNewTokens: 8 }), c.name).toEqual(gen);
    }
  });

  it('single adapters, from adapter_model.bin and from adapter_model.safetensors', async () => {
    for (const [k, single] of ac.single_adapter.entries()) {
      expect([...adapters.bin[k].targets.keys()]).toEqual([...adapters.st[k].targets.keys()]);
      for (const [i, c] of cases.entries()) {
        for (const m of [adapters.bin[k], adapters.st[k]]) {
          expectLosses((await model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids), [m]))[0], single.cases[i], `${single.adapter}/${c.name}`);
        }
      }
      const c = cases[1];
      const r = await model.causalLogits(rowsOf(c), adapters.st[k]);
      expect(maskedMaxDiff(r.logits, single.cases[1].logits, c.attention_mask)).toBeLessThan(1e-4);
      const gen = await model.generate({ inputIds: c.generate_input_ids, attentionMask: c.generate_attention_mask }, { maxNewTokens: 8, adapter: adapters.bin[k] });
      expectGenerated(gen, c, single.cases[1], `${single.adapter}/${c.name}`);
    }
  });

  it('the composition [0.5, −0.3, 1.2]: tensors bit-identical, logits, losses, greedy ids', async () => {
    const comp = ac.composition;
    const composed = compose(adapters.st, comp.weights);
    for (const [key, want] of Object.entries(comp.composed_state_dict)) {
      const m = /^base_model\.model\.(.+)\.lora_(A|B)\.weight$/.exec(key) as RegExpExecArray;
      const t = composed.targets.get(m[1]);
      expect(t, key).toBeDefined();
      expect(Array.from(m[2] === 'A' ? t!.a : t!.b), key).toEqual(flat(want.values).map(Math.fround));
    }
    for (const [i, c] of cases.entries()) {
      const r = await model.causalLogits(rowsOf(c), composed);
      expect(maskedMaxDiff(r.logits, comp.cases[i].logits, c.attention_mask), c.name).toBeLessThan(1e-4);
      expectLosses((await model.scoreCausal(rowsOf(c), [composed]))[0], comp.cases[i], c.name);
      const gen = await model.generate({ inputIds: c.generate_input_ids, attentionMask: c.generate_attention_mask }, { maxNewTokens: 8, adapter: composed });
      expectGenerated(gen, c, comp.cases[i], c.name);
    }
  });

  it('a merged checkpoint (W += s·BA, transposed for Conv1D) gives the merged losses', async () => {
    const dir = mergedCheckpoint(join(F, 'model'), compose(adapters.st, ac.composition.weights), join(tmp, `merged-${fixture}`));
    const merged = (await loadModel(dir, { engine: 'ort', threads: 2 })) as OrtModel;
    try {
      for (const [i, c] of cases.entries()) expectLosses((await merged.scoreCausal(rowsOf(c)))[0], ac.composition.merged.cases[i], c.name);
    } finally {
      await merged.dispose();
    }
  });

  it("lorahub's objective at the recorded weights; a population in one pass equals one by one", async () => {
    const fx = ac.objective;
    const batch = seamBatch(fx.examples.prompt_ids, fx.examples.target_ids);
    const obj = new FewShotObjective(model, adapters.st, batch, { normalization: 'reference', batchSize: fx.batch_size });
    const together = await obj.scorePopulation(fx.evaluations.map((e) => e.weights));
    for (const [i, ev] of fx.evaluations.entries()) {
      expect(Math.abs(together[i].loss - ev.default_get_loss)).toBeLessThan(1e-5);
      expect(Math.abs(together[i].objective - ev.objective)).toBeLessThan(1e-5);
      const alone = await obj.score(ev.weights);
      expect(Math.abs(alone.objective - together[i].objective)).toBeLessThan(1e-6);
    }
    // The stacked population equals the same candidates composed in JS and scored as modules.
    const weights = fx.evaluations.map((e) => e.weights);
    const stacked = await model.tokenLosses(batch, { stack: stackModules(adapters.st), weights });
    const modules = await model.tokenLosses(batch, weights.map((w) => compose(adapters.st, w)));
    stacked.forEach((l, g) => l.sum.forEach((s, i) => expect(Math.abs(s - modules[g].sum[i]) / modules[g].sum[i]).toBeLessThan(1e-5)));
  });

  it('refuses an adapter made for another model, and bad token ids, naming them', async () => {
    const c = cases[0];
    const other = fixture === 'gpt2' ? join(FIXTURES, 'llama-gqa') : join(FIXTURES, 'gpt2');
    const foreign = await readAdapter(join(other, 'adapters', 'a0'));
    await expect(model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids), [foreign])).rejects.toThrow(/module "a0", key ".*": no such Linear/);
    await expect(model.tokenLosses(seamBatch([c.prompt_ids[0].map((t, j) => (j === 1 ? 999 : t))], c.target_ids))).rejects.toThrow(/input_ids\[0\]: token id 999/);
  });
});

describe('ort engine: GPT-2 specifics', () => {
  const F = join(FIXTURES, 'gpt2');

  it('refuses a Conv1D adapter without fan_in_fan_out, naming the field', async () => {
    const dir = join(tmp, 'no-fifo');
    cpSync(join(F, 'adapters', 'a0'), dir, { recursive: true });
    const cfg = readJson<Record<string, unknown>>(join(dir, 'adapter_config.json'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, fan_in_fan_out: false }));
    const module = await readAdapter(dir);
    const model = (await loadModel(join(F, 'model'), { engine: 'ort', threads: 2 })) as OrtModel;
    try {
      const c = readJson<{ cases: Case[] }>(join(F, 'cases.json')).cases[0];
      await expect(model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids), [module])).rejects.toThrow(/"fan_in_fan_out" is false, but the base layer stores its weight \[in, out\]/);
    } finally {
      await model.dispose();
    }
  });

  it('refuses sequences longer than n_positions', async () => {
    const model = (await loadModel(join(F, 'model'), { engine: 'ort', threads: 2 })) as OrtModel;
    try {
      const long = [1, ...new Array<number>(127).fill(5)];
      await expect(model.tokenLosses(seamBatch([long], [[7, 2]]))).rejects.toThrow(/model: the sequence \(prompt \+ target\) is 130 tokens, longer than this GPT-2 model's n_positions \(128\)/);
    } finally {
      await model.dispose();
    }
  });

  it('the tfjs engine refuses a decoder-only model by name', async () => {
    await expect(loadModel(join(F, 'model'), { engine: 'tfjs' })).rejects.toThrow(/model_type "gpt2" runs on the ort engine only so far/);
  });
});
