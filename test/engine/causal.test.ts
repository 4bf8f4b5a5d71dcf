/**
 * Both engines on decoder-only models against the Hugging Face reference numbers of
 * ../shared/fixtures/{llama-gqa,gpt2} (transformers 4.40 + PEFT 0.10 + lorahub, float32; their
 * README.md says how rows, padding, position ids and labels were laid out): logits and final
 * hidden states (1e-4 absolute, where the attention mask is 1), per-example losses (1e-5
 * relative) in transformers' own layout (left and right padding) and through the engine seam
 * (prompts and targets joined by the engine), greedy ids (identical), single adapters read from
 * .bin and from .safetensors, the composition [0.5, −0.3, 1.2] (composed tensors bit-identical),
 * a merged checkpoint, and lorahub's objective at its recorded weights. Every check runs on the
 * ort and the tfjs engine with the same tolerances; the tfjs engine must also free every tensor
 * it makes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FewShotObjective } from '../../src/adapt/objective.ts';
import { loadModel, type EngineModel, type EngineName, type Population, type TokenLosses } from '../../src/engine/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { compose, stackModules } from '../../src/lora/compose.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { padBatch } from '../../src/models/shared/batch.ts';
import { mergeIntoCheckpoint } from '../../src/models/merge.ts';
import type { CausalBatch } from '../../src/models/shared/family.ts';
import { FIXTURES, flat, readJson, type CausalCase } from '../helpers.ts';

interface Expected {
  logits: number[][][];
  loss: number;
  per_example_loss_sum: number[];
  per_example_token_count: number[];
  generate_max_new_tokens_8: number[][];
  generated_new_tokens: number[][];
}

interface Case extends CausalCase {
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

/** What both engines' decoder-only models offer beyond the seam (OrtModel, TfjsCausalModel). */
interface CausalModel extends EngineModel {
  causalLogits(rows: CausalBatch, adapter?: LoraModule): Promise<{ logits: Float32Array; hidden: Float32Array }>;
  scoreCausal(rows: CausalBatch, population?: Population): Promise<TokenLosses[]>;
}

const ENGINES: EngineName[] = ['ort', 'tfjs'];
const FIXTURE_NAMES = ['llama-gqa', 'gpt2'];
const RUNS = ENGINES.flatMap((engine) => FIXTURE_NAMES.map((fixture) => ({ engine, fixture })));

const load = async (dir: string, engine: EngineName) => (await loadModel(dir, { engine, threads: 2 })) as CausalModel;

/** Runs fn and checks that no tfjs tensor outlived it (every engine: ort makes none). */
async function noLeak<T>(fn: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await fn();
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

/** Largest error seen per check and engine, printed at the end (the report's "measured" numbers). */
const worst = new Map<string, number>();
const note = (key: string, v: number) => worst.set(key, Math.max(worst.get(key) ?? 0, v));
afterAll(() => {
  if (process.env.LORAHUB_PRINT_ERRORS) for (const [k, v] of [...worst].sort()) console.log(`${k}: ${v.toExponential(2)}`);
});

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


describe.each(RUNS)('$engine engine on the $fixture fixture', ({ engine, fixture }) => {
  const F = join(FIXTURES, fixture);
  const cases = readJson<{ cases: Case[] }>(join(F, 'cases.json')).cases;
  const ac = readJson<AdapterCases>(join(F, 'adapter_cases.json'));
  let model: CausalModel;
  let adapters: { bin: LoraModule[]; st: LoraModule[] };
  const tag = (what: string) => `${engine}/${fixture}: ${what}`;

  beforeAll(async () => {
    model = await load(join(F, 'model'), engine);
    const names = ac.single_adapter.map((a) => a.adapter);
    adapters = {
      bin: await Promise.all(names.map((a) => readAdapter(join(F, 'adapters', a), { weights: 'bin' }))),
      st: await Promise.all(names.map((a) => readAdapter(join(F, 'adapters', a), { weights: 'safetensors' }))),
    };
  });
  afterAll(async () => model?.dispose());

  /** expectLosses, recording the largest relative error. */
  const losses = (got: { sum: number[]; tokens: number[] }, want: Expected, label: string) => {
    got.sum.forEach((x, i) => note(tag('loss rel'), Math.abs(x - want.per_example_loss_sum[i]) / Math.abs(want.per_example_loss_sum[i])));
    expectLosses(got, want, label);
  };
  const logits = (got: Float32Array, want: number[][][], mask: number[][], label: string, what = 'logits abs') => {
    const m = maskedMaxDiff(got, want, mask);
    note(tag(what), m);
    expect(m, label).toBeLessThan(1e-4);
  };

  it('records which engine runs', () => {
    expect(model.info.engine).toBe(engine);
  });

  it('base model: logits and hidden states to 1e-4, losses in both layouts, greedy ids', async () => {
    await noLeak(async () => {
      for (const c of cases) {
        const r = await model.causalLogits(rowsOf(c));
        logits(r.logits, c.expected.logits, c.attention_mask, c.name);
        logits(r.hidden, c.expected.last_hidden_state, c.attention_mask, c.name, 'hidden abs');
        losses((await model.scoreCausal(rowsOf(c)))[0], c.expected, `${c.name} (HF layout)`);
        losses((await model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids)))[0], c.expected, `${c.name} (engine seam)`);
        const gen = await model.generate({ inputIds: c.generate_input_ids, attentionMask: c.generate_attention_mask }, { maxNewTokens: 8 });
        expectGenerated(gen, c, c.expected, c.name);
        // Right-padded prompts (as the eval code pads them) are left-padded by the engine.
        const right = seamBatch(c.prompt_ids, []);
        expect(await model.generate(right, { maxNewTokens: 8 }), c.name).toEqual(gen);
      }
    });
  });

  it('single adapters, from adapter_model.bin and from adapter_model.safetensors', async () => {
    await noLeak(async () => {
      for (const [k, single] of ac.single_adapter.entries()) {
        expect([...adapters.bin[k].targets.keys()]).toEqual([...adapters.st[k].targets.keys()]);
        for (const [i, c] of cases.entries()) {
          for (const m of [adapters.bin[k], adapters.st[k]]) {
            losses((await model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids), [m]))[0], single.cases[i], `${single.adapter}/${c.name}`);
          }
        }
        const c = cases[1];
        const r = await model.causalLogits(rowsOf(c), adapters.st[k]);
        logits(r.logits, single.cases[1].logits, c.attention_mask, `${single.adapter}/${c.name}`);
        const gen = await model.generate({ inputIds: c.generate_input_ids, attentionMask: c.generate_attention_mask }, { maxNewTokens: 8, adapter: adapters.bin[k] });
        expectGenerated(gen, c, single.cases[1], `${single.adapter}/${c.name}`);
      }
    });
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
    await noLeak(async () => {
      for (const [i, c] of cases.entries()) {
        const r = await model.causalLogits(rowsOf(c), composed);
        logits(r.logits, comp.cases[i].logits, c.attention_mask, c.name);
        losses((await model.scoreCausal(rowsOf(c), [composed]))[0], comp.cases[i], c.name);
        const gen = await model.generate({ inputIds: c.generate_input_ids, attentionMask: c.generate_attention_mask }, { maxNewTokens: 8, adapter: composed });
        expectGenerated(gen, c, comp.cases[i], c.name);
      }
    });
  });

  it('a merged checkpoint (W += s·BA, transposed for Conv1D) gives the merged losses', async () => {
    const dir = join(tmp, `merged-${engine}-${fixture}`);
    mergeIntoCheckpoint(join(F, 'model'), compose(adapters.st, ac.composition.weights), dir);
    const merged = await load(dir, engine);
    try {
      for (const [i, c] of cases.entries()) losses((await merged.scoreCausal(rowsOf(c)))[0], ac.composition.merged.cases[i], c.name);
    } finally {
      await merged.dispose();
    }
  });

  it("lorahub's objective at the recorded weights; a population in one pass equals one by one", async () => {
    const fx = ac.objective;
    const batch = seamBatch(fx.examples.prompt_ids, fx.examples.target_ids);
    const obj = new FewShotObjective(model, adapters.st, batch, { normalization: 'reference', batchSize: fx.batch_size });
    const together = await noLeak(() => obj.scorePopulation(fx.evaluations.map((e) => e.weights)));
    for (const [i, ev] of fx.evaluations.entries()) {
      note(tag('objective abs'), Math.abs(together[i].objective - ev.objective));
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

  it('a population on shared rows (left-padded, GQA or fused q/k/v) equals its candidates one by one', async () => {
    const c = cases[3];
    const weights = [ac.composition.weights, [0, 0, 0], [1.5, -1.5, 0.25]];
    const together = await noLeak(() => model.scoreCausal(rowsOf(c), weights.map((w) => compose(adapters.st, w))));
    for (const [g, w] of weights.entries()) {
      const [alone] = await model.scoreCausal(rowsOf(c), [compose(adapters.st, w)]);
      together[g].sum.forEach((s, i) => expect(Math.abs(s - alone.sum[i]) / alone.sum[i], `candidate ${g} example ${i}`).toBeLessThan(1e-5));
    }
    // Candidate 0 is the fixture's composition.
    expectLosses(together[0], ac.composition.cases[3], c.name);
  });

  it('refuses an adapter made for another model, and bad token ids, naming them', async () => {
    const c = cases[0];
    const other = fixture === 'gpt2' ? join(FIXTURES, 'llama-gqa') : join(FIXTURES, 'gpt2');
    const foreign = await readAdapter(join(other, 'adapters', 'a0'));
    await expect(model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids), [foreign])).rejects.toThrow(/module "a0" does not fit .*: key \S+: no such Linear/);
    await expect(model.tokenLosses(seamBatch([c.prompt_ids[0].map((t, j) => (j === 1 ? 999 : t))], c.target_ids))).rejects.toThrow(/input_ids\[0\]: token id 999/);
  });
});

describe.each(ENGINES)('%s engine: GPT-2 specifics', (engine) => {
  const F = join(FIXTURES, 'gpt2');

  it('refuses a Conv1D adapter without fan_in_fan_out, naming the field', async () => {
    const dir = join(tmp, `no-fifo-${engine}`);
    cpSync(join(F, 'adapters', 'a0'), dir, { recursive: true });
    const cfg = readJson<Record<string, unknown>>(join(dir, 'adapter_config.json'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, fan_in_fan_out: false }));
    const module = await readAdapter(dir);
    const model = await load(join(F, 'model'), engine);
    try {
      const c = readJson<{ cases: Case[] }>(join(F, 'cases.json')).cases[0];
      await expect(model.tokenLosses(seamBatch(c.prompt_ids, c.target_ids), [module])).rejects.toThrow(/"fan_in_fan_out" is false, but the base layer stores its weight \[in, out\]/);
    } finally {
      await model.dispose();
    }
  });

  it('refuses sequences longer than n_positions', async () => {
    const model = await load(join(F, 'model'), engine);
    try {
      const long = [1, ...new Array<number>(127).fill(5)];
      await expect(model.tokenLosses(seamBatch([long], [[7, 2]]))).rejects.toThrow(/model: the sequence \(prompt \+ target\) is 130 tokens, longer than this GPT-2 model's n_positions \(128\)/);
      await expect(model.generate({ inputIds: [long], attentionMask: [long.map(() => 1)] }, { maxNewTokens: 4 })).rejects.toThrow(/: prompt \+ generated ids is 129 tokens, longer than this GPT-2 model's n_positions \(128\)/);
    } finally {
      await model.dispose();
    }
  });
});

describe('tfjs engine: loading', () => {
  it('frees every tensor of a decoder-only model on dispose', async () => {
    const before = tf.memory().numTensors;
    for (const fixture of FIXTURE_NAMES) await (await load(join(FIXTURES, fixture, 'model'), 'tfjs')).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an unknown model_type listing the supported ones, as the ort engine does', async () => {
    const dir = join(tmp, 'bert');
    cpSync(join(FIXTURES, 'gpt2', 'model'), dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...readJson<Record<string, unknown>>(join(dir, 'config.json')), model_type: 'bert' }));
    for (const engine of ENGINES) await expect(loadModel(dir, { engine })).rejects.toThrow(/config\.json: model_type "bert" is not supported \(supported: t5, llama, mistral, qwen2, gpt2\)/);
  });
});
