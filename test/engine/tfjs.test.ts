/**
 * The tfjs engine behind the seam: what test/engine/parity.test.ts checks for every engine, plus
 * what is tfjs's own — no tensor outlives a call (tokenLosses builds and disposes the adapters'
 * deltas), a population scored in one grouped pass equals its candidates one by one and the
 * fixture, what it reports about itself, and wrapping a T5Model the trainers hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEngine, type EngineModel, type TokenLosses } from '../../src/engine/index.ts';
import { TfjsModel } from '../../src/engine/tfjs/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { compose, stackModules } from '../../src/lora/compose.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { T5_GATED, batchOf, t5AdapterCases, t5Cases, variant, type T5Case, type T5CaseResult } from '../helpers.ts';

type Expected = T5CaseResult;
type Case = T5Case;

const cases = t5Cases();
const ac = t5AdapterCases();
const resultFor = (list: Expected[], c: Case) => list.find((x) => x.name === c.name) as Expected;

/** Sums within 1e-5 relative of the fixture's (its suggested loss tolerance), counts exact. */
function expectLosses(got: TokenLosses, want: Omit<Expected, 'name'> & { name?: string }): void {
  expect(got.tokens, want.name).toEqual(want.per_example_token_count);
  got.sum.forEach((s, i) => expect(Math.abs(s - want.per_example_loss_sum[i]) / want.per_example_loss_sum[i], `${want.name}[${i}]`).toBeLessThan(1e-5));
}

/** Runs fn and checks that no tensor outlived it. */
async function noLeak<T>(fn: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await fn();
  expect(tf.memory().numTensors).toBe(before);
  return out;
}

let model: EngineModel;
let modules: LoraModule[];
let composed: LoraModule;

beforeAll(async () => {
  model = await (await openEngine({ engine: 'tfjs' })).load(`${T5_GATED}/model`);
  modules = await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(`${T5_GATED}/adapters/${a}`)));
  composed = compose(modules, ac.composition.weights);
});
afterAll(() => model?.dispose());

describe('tfjs engine on the t5-gated fixture', () => {
  it('token losses of the base model and the composition equal the fixture, without leaks', async () => {
    for (const c of cases) {
      const base = await noLeak(() => model.tokenLosses(batchOf(c)));
      expect(base).toHaveLength(1);
      expectLosses(base[0], c.expected);
      const [withModule] = await noLeak(() => model.tokenLosses(batchOf(c), [composed]));
      expectLosses(withModule, resultFor(ac.composition.cases, c));
    }
  });

  it('a population in one grouped pass equals its candidates one by one (1e-5) and the fixture, without leaks', async () => {
    const zero = compose(modules, [0, 0, 0]);
    const population = [...modules, composed, zero];
    for (const c of cases) {
      const together = await noLeak(() => model.tokenLosses(batchOf(c), population));
      expect(together).toHaveLength(population.length);
      for (const [g, m] of population.entries()) {
        const [alone] = await model.tokenLosses(batchOf(c), [m]);
        expect(together[g].tokens).toEqual(alone.tokens);
        together[g].sum.forEach((s, i) => expect(Math.abs(s - alone.sum[i]) / alone.sum[i]).toBeLessThan(1e-5));
      }
      ac.single_adapter.forEach((sa, g) => expectLosses(together[g], resultFor(sa.cases, c)));
      expectLosses(together[3], resultFor(ac.composition.cases, c));
      expectLosses(together[4], c.expected); // w = 0: a zero delta, the base model's losses
      // The same population as weights over the module stack (what the objective passes).
      const weights = [[1, 0, 0], [0, 1, 0], [0, 0, 1], ac.composition.weights, [0, 0, 0]];
      expect(await noLeak(() => model.tokenLosses(batchOf(c), { stack: stackModules(modules), weights }))).toEqual(together);
    }
  });

  it('greedy ids equal generate_max_new_tokens_8 (base and composed), without leaks', async () => {
    for (const c of cases) {
      const input = { inputIds: c.input_ids, attentionMask: c.attention_mask };
      expect(await noLeak(() => model.generate(input, { maxNewTokens: 8 }))).toEqual(c.expected.generate_max_new_tokens_8);
      const ids = await noLeak(() => model.generate(input, { maxNewTokens: 8, adapter: composed }));
      expect(ids).toEqual(resultFor(ac.composition.cases, c).generate_max_new_tokens_8);
    }
  });

  it('refuses labels outside the vocabulary', async () => {
    const c = cases[0];
    await expect(model.tokenLosses({ ...batchOf(c), labels: [c.labels[0].map(() => 999)] })).rejects.toThrow(/token id 999 is outside the vocabulary \[0, 259\)/);
  });
});

describe('tfjs engine', () => {
  it('reports engine, device, provider (package and tfjs backend) and threads', async () => {
    const { info } = await openEngine({ engine: 'tfjs', threads: 3 });
    expect(info).toMatchObject({ engine: 'tfjs', device: 'cpu' });
    expect(info.provider).toMatch(/^@tensorflow\/tfjs[-a-z]* \((wasm|tensorflow|cpu)\)$/);
    // wasm and cpu run one thread per process (or worker); tfjs-node its own pool.
    expect(info.threads).toBe(info.provider.endsWith('(tensorflow)') ? 3 : 1);
    expect(info.fallback).toBeUndefined();
  });

  it('a NaN logit stops generation with NUMERIC, naming the model, step and engine, without leaks', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'lorahub-tfjs-nan-'));
    try {
      const dir = variant(tmp, 'nan', () => {}, (t) =>
        t.map((x) => (x.name === 'encoder.block.0.layer.0.SelfAttention.q.weight' ? { ...x, data: Float32Array.from(x.data as Float32Array, (v, i) => (i === 0 ? Number.NaN : v)) } : x)),
      );
      const m = await (await openEngine({ engine: 'tfjs' })).load(dir);
      const input = { inputIds: cases[1].input_ids, attentionMask: cases[1].attention_mask };
      for (const adapter of [undefined, modules[0]]) {
        const before = tf.memory().numTensors;
        await expect(m.generate(input, { maxNewTokens: 8, adapter })).rejects.toMatchObject({
          code: 'NUMERIC',
          message: expect.stringMatching(/: a logit of generation step 1 is NaN\/∞ on the tfjs engine \(cpu\): .*try engine ort$/),
        });
        expect(tf.memory().numTensors).toBe(before);
      }
      await m.dispose();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('wraps a T5Model the caller loaded; dispose frees its weights', async () => {
    const start = tf.memory().numTensors;
    const m = TfjsModel.fromT5(T5Model.load(`${T5_GATED}/model`));
    expect(m.info.engine).toBe('tfjs');
    const [r] = await m.tokenLosses(batchOf(cases[1]));
    expectLosses(r, cases[1].expected);
    await m.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
