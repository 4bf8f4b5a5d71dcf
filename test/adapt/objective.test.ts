import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type EngineModel } from '../../src/engine/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { FewShotObjective, buildFewShotBatch, l1Regularization, type FewShotBatch } from '../../src/adapt/objective.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';
import { T5_GATED, readJson } from '../helpers.ts';

interface ObjectiveFixture {
  batch_size: number;
  examples: FewShotBatch & { inputs: string[]; outputs: string[]; input_ids: number[][]; attention_mask: number[][] };
  evaluations: { weights: number[]; objective: number; default_get_loss: number; l1_regularization: number }[];
}

const fx = readJson<{ objective: ObjectiveFixture }>(`${T5_GATED}/adapter_cases.json`).objective;
let model: EngineModel;
let modules: LoraModule[];

// The default engine: the objective is engine-generic (the tfjs engine's own checks, leaks
// included, are in test/engine/tfjs.test.ts).
beforeAll(async () => {
  model = await loadModel(`${T5_GATED}/model`);
  modules = await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(`${T5_GATED}/adapters/${a}`)));
});
afterAll(() => model?.dispose());

describe('LoRAHub objective', () => {
  it('tokenises and pads the few-shot set exactly as lorahub load_dataset', () => {
    const batch = buildFewShotBatch(new ByteTokenizer(), fx.examples.inputs.map((input, i) => ({ input, target: fx.examples.outputs[i] })));
    expect(batch.inputIds).toEqual(fx.examples.input_ids);
    expect(batch.attentionMask).toEqual(fx.examples.attention_mask);
    expect(batch.labels).toEqual(fx.examples.labels);
  });

  it('reproduces the reference objective at the four recorded weight vectors (reference normalisation)', async () => {
    const batch = { inputIds: fx.examples.input_ids, attentionMask: fx.examples.attention_mask, labels: fx.examples.labels };
    const obj = new FewShotObjective(model, modules, batch, { normalization: 'reference', batchSize: fx.batch_size });
    for (const ev of fx.evaluations) {
      const r = await obj.score(ev.weights);
      expect(Math.abs(r.loss - ev.default_get_loss)).toBeLessThan(1e-5);
      expect(r.regularization).toBeCloseTo(ev.l1_regularization, 12);
      expect(Math.abs(r.objective - ev.objective)).toBeLessThan(1e-5);
    }
  });

  it('scoring a population in one pass equals scoring candidates one by one (1e-5)', async () => {
    const batch = { inputIds: fx.examples.input_ids, attentionMask: fx.examples.attention_mask, labels: fx.examples.labels };
    const obj = new FewShotObjective(model, modules, batch);
    const population = [...fx.evaluations.map((e) => e.weights), [0.1, 0.2, -0.3], [-1.5, 1.5, 1.5]];
    const together = (await obj.scorePopulation(population)).map((r) => r.objective);
    const oneByOne: number[] = [];
    for (const w of population) oneByOne.push((await obj.score(w)).objective);
    together.forEach((v, i) => expect(Math.abs(v - oneByOne[i])).toBeLessThan(1e-5));
  });

  it('a candidate whose loss is NaN or ∞ scores +∞ (never fatal)', async () => {
    const batch = { inputIds: fx.examples.input_ids, attentionMask: fx.examples.attention_mask, labels: fx.examples.labels };
    const bad = [Number.NaN, Number.POSITIVE_INFINITY, 1];
    const fake: EngineModel = {
      dir: model.dir,
      config: model.config,
      info: model.info,
      // Every example of candidate i has loss bad[i] (one token each).
      tokenLosses: async (b) => bad.map((loss) => ({ sum: b.labels.map(() => loss), tokens: b.labels.map(() => 1) })),
      generate: async () => [],
      dispose: async () => {},
    };
    const r = await new FewShotObjective(fake, modules, batch).scorePopulation([[0, 0, 0], [1, 0, 0], [0, 1, 0]]);
    expect(r.map((x) => x.objective)).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 1 + 0.05 / 3]);
  });

  it('l1 regularisation is α·mean|w|', () => {
    expect(l1Regularization([0.5, -0.3, 1.2], 0.05)).toBeCloseTo(0.05 * 2 / 3, 15);
    expect(l1Regularization([], 0.05)).toBe(0);
  });
});
