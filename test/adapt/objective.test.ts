import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { FewShotObjective, buildFewShotBatch, l1Regularization, type FewShotBatch } from '../../src/adapt/objective.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';
import { T5_GATED, readJson } from '../helpers.ts';

interface ObjectiveFixture {
  batch_size: number;
  examples: FewShotBatch & { inputs: string[]; outputs: string[]; input_ids: number[][]; attention_mask: number[][] };
  evaluations: { weights: number[]; objective: number; default_get_loss: number; l1_regularization: number }[];
}

const fx = readJson<{ objective: ObjectiveFixture }>(`${T5_GATED}/adapter_cases.json`).objective;
let model: T5Model;
let modules: LoraModule[];

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
  modules = await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(`${T5_GATED}/adapters/${a}`)));
});

describe('LoRAHub objective', () => {
  it('tokenises and pads the few-shot set exactly as lorahub load_dataset', () => {
    const batch = buildFewShotBatch(new ByteTokenizer(), fx.examples.inputs.map((input, i) => ({ input, target: fx.examples.outputs[i] })));
    expect(batch.inputIds).toEqual(fx.examples.input_ids);
    expect(batch.attentionMask).toEqual(fx.examples.attention_mask);
    expect(batch.labels).toEqual(fx.examples.labels);
  });

  it('reproduces the reference objective at the four recorded weight vectors (reference normalisation)', () => {
    const batch = { inputIds: fx.examples.input_ids, attentionMask: fx.examples.attention_mask, labels: fx.examples.labels };
    const obj = new FewShotObjective(model, modules, batch, { normalization: 'reference', batchSize: fx.batch_size });
    for (const ev of fx.evaluations) {
      const r = obj.score(ev.weights);
      expect(Math.abs(r.loss - ev.default_get_loss)).toBeLessThan(1e-5);
      expect(r.regularization).toBeCloseTo(ev.l1_regularization, 12);
      expect(Math.abs(r.objective - ev.objective)).toBeLessThan(1e-5);
    }
  });

  it('scoring a population in one pass equals scoring candidates one by one (1e-5), without leaks', () => {
    const batch = { inputIds: fx.examples.input_ids, attentionMask: fx.examples.attention_mask, labels: fx.examples.labels };
    const obj = new FewShotObjective(model, modules, batch);
    const population = [...fx.evaluations.map((e) => e.weights), [0.1, 0.2, -0.3], [-1.5, 1.5, 1.5]];
    const start = tf.memory().numTensors;
    const together = obj.scorePopulation(population).map((r) => r.objective);
    const oneByOne = population.map((w) => obj.score(w).objective);
    expect(tf.memory().numTensors).toBe(start);
    together.forEach((v, i) => expect(Math.abs(v - oneByOne[i])).toBeLessThan(1e-5));
  });

  it('l1 regularisation is α·mean|w|', () => {
    expect(l1Regularization([0.5, -0.3, 1.2], 0.05)).toBeCloseTo(0.05 * 2 / 3, 15);
    expect(l1Regularization([], 0.05)).toBe(0);
  });
});
