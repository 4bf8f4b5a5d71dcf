/**
 * The ort training step (engine/ort/t5-train-graph.ts, a hand-written backward pass) against
 * tfjs's tape on the same forward (models/t5/model.ts, proven against transformers): the loss
 * and the gradient of every parameter, for full training (every weight) and for LoRA (factors
 * only, base frozen), on T5 v1.1 and on the other layouts HF's T5 has (relu FFN, gated relu,
 * tied embeddings, inner ≠ d_model, more encoder than decoder layers).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend.ts';
import { OrtTrainStep } from '../../src/engine/ort/train-step.ts';
import { t5ConfigFromHf, type T5Config } from '../../src/models/t5/config.ts';
import { batchLoss } from '../../src/models/t5/loss.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { randomT5HfConfig } from '../../src/models/t5/random.ts';
import { initBaseParams } from '../../src/train/base.ts';
import { collate, type TrainBatch } from '../../src/train/data.ts';
import { initLoraParams, loraDeltas, loraTargetPaths, paramName, type LoraParam } from '../../src/train/lora.ts';
import { Rng } from '../../src/rng.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const VARIANTS: { name: string; edit: Record<string, unknown> }[] = [
  { name: 'T5 v1.1 (gated-gelu, untied)', edit: {} },
  {
    name: 'v1.0 layout: relu wi/wo, tied embeddings, inner 48 ≠ d_model 40, 3 + 1 layers',
    edit: { feed_forward_proj: 'relu', is_gated_act: false, dense_act_fn: 'relu', tie_word_embeddings: true, d_model: 40, d_kv: 12, num_heads: 4, num_layers: 3, num_decoder_layers: 1 },
  },
  { name: 'gated-relu', edit: { feed_forward_proj: 'gated-relu', dense_act_fn: 'relu' } },
];

function config(edit: Record<string, unknown>): T5Config {
  return t5ConfigFromHf({ ...randomT5HfConfig('tiny'), ...edit });
}

/** Four examples of different lengths (padding in both inputs and labels). */
function batch(seed: number, lossTokens?: number): TrainBatch {
  const rng = Rng.fromSeed(seed);
  const ex = Array.from({ length: 4 }, (_, i) => ({
    inputIds: [...Array.from({ length: 4 + 3 * i }, () => rng.int(3, 383)), 1],
    labels: [...Array.from({ length: 1 + ((i * 2) % 5) }, () => rng.int(3, 383)), 1],
  }));
  return collate(ex, { padTokenId: 0 }, lossTokens);
}

/** A T5Model over the variables; a tied head is the embedding's transpose, taken under the tape. */
function modelOf(cfg: T5Config, params: Map<string, tf.Variable>): T5Model {
  const lmHeadT = (cfg.tieWordEmbeddings ? tf.transpose(params.get('embed') as tf.Tensor2D) : params.get('lmHead')) as tf.Tensor2D;
  return new T5Model(cfg, { tensors: new Map<string, tf.Tensor>(params), lmHeadT });
}

/** ‖a − b‖ / ‖a‖. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const values = (params: Map<string, tf.Variable>) => new Map([...params].map(([n, v]) => [n, v.dataSync() as Float32Array]));

describe('ort training step = tfjs tape', () => {
  const steps: OrtTrainStep[] = [];
  afterAll(async () => {
    for (const s of steps) await s.release();
  });

  for (const v of VARIANTS) {
    it(`every weight: ${v.name}`, async () => {
      const cfg = config(v.edit);
      const params = initBaseParams(cfg, 3);
      const b = batch(5);
      const { value, grads } = tf.variableGrads(() => batchLoss(modelOf(cfg, params), b), [...params.values()]);
      const step = await OrtTrainStep.create({ cfg, trainable: new Set(params.keys()) }, 1);
      steps.push(step);
      const r = await step.run(values(params), b);
      expect(r.loss).toBeCloseTo(value.dataSync()[0], 5);
      expect([...r.grads.keys()].sort()).toEqual([...params.keys()].sort());
      for (const [name, p] of params) {
        const want = grads[p.name].dataSync();
        // Every parameter gets a real gradient (not zeros) and it matches to float32 round-off.
        expect(Math.max(...Array.from(want, Math.abs)), name).toBeGreaterThan(0);
        expect(relErr(want, r.grads.get(name) as Float32Array), name).toBeLessThan(1e-4);
      }
      tf.dispose([value, ...Object.values(grads), ...params.values()]);
    });
  }

  it('LoRA on every Linear, base frozen; a micro-batch scales by its whole batch\'s label tokens', async () => {
    const cfg = config({});
    const params = initBaseParams(cfg, 4);
    const model = modelOf(cfg, params);
    const paths = loraTargetPaths(cfg, ['q', 'k', 'v', 'o', 'wi_0', 'wi_1', 'wo']);
    const rank = 4;
    const scaling = 2;
    const lora: LoraParam[] = initLoraParams(cfg, paths, rank, 7);
    // B starts at zero; a non-zero B makes every path of the rule matter.
    for (const p of lora) p.b.assign(tf.randomNormal(p.b.shape, 0, 0.3, 'float32', 1));
    const b = batch(6, 50);
    const vars = lora.flatMap((p) => [p.a, p.b]);
    const { value, grads } = tf.variableGrads(() => batchLoss(model, b, loraDeltas(lora, rank, scaling)), vars);
    const step = await OrtTrainStep.create({ cfg, trainable: new Set(), lora: new Map(paths.map((p) => [p, { rank, scaling }])) }, 1);
    steps.push(step);
    const w = values(params);
    for (const p of lora) {
      w.set(paramName(p.path, 'A'), p.a.dataSync() as Float32Array);
      w.set(paramName(p.path, 'B'), p.b.dataSync() as Float32Array);
    }
    const r = await step.run(w, b);
    expect(r.loss).toBeCloseTo(value.dataSync()[0], 5);
    expect(r.grads.size).toBe(2 * paths.length);
    for (const p of lora) {
      expect(relErr(grads[p.a.name].dataSync(), r.grads.get(paramName(p.path, 'A')) as Float32Array), `${p.path} A`).toBeLessThan(1e-4);
      expect(relErr(grads[p.b.name].dataSync(), r.grads.get(paramName(p.path, 'B')) as Float32Array), `${p.path} B`).toBeLessThan(1e-4);
    }
    tf.dispose([value, ...Object.values(grads), ...vars, ...params.values()]);
  });
});
