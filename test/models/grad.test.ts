import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { readAdapter } from '../../src/io/peft.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5Model, type LoraDeltas } from '../../src/models/t5/model.ts';
import { tokenCrossEntropy } from '../../src/models/t5/loss.ts';
import { T5_GATED, readJson } from '../helpers.ts';

interface Case { input_ids: number[][]; attention_mask: number[][]; labels: number[][]; decoder_input_ids: number[][] }

let model: T5Model;
let mod: LoraModule;
const c = readJson<{ cases: Case[] }>(`${T5_GATED}/cases.json`).cases[1];

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
  mod = await readAdapter(`${T5_GATED}/adapters/a0`);
});

describe('gradients through the T5 forward (training path)', () => {
  it('LoRA gradients match central finite differences and the taped loss equals the untaped one', () => {
    const vars = [...mod.targets.values()].map((t) => ({
      path: t.path,
      a: tf.variable(tf.tensor2d(t.a, [t.r, t.dIn])),
      b: tf.variable(tf.tensor2d(t.b, [t.dOut, t.r])),
      s: t.scaling,
    }));
    const tokens = c.labels.flat().filter((x) => x !== -100).length;
    const loss = () =>
      tf.tidy(() => {
        const deltas: LoraDeltas = new Map(vars.map((v) => [v.path, { aT: tf.transpose(v.a) as tf.Tensor2D, bT: tf.mul(tf.transpose(v.b), v.s) as tf.Tensor2D }]));
        const r = model.forward({ inputIds: c.input_ids, attentionMask: c.attention_mask }, c.decoder_input_ids, deltas);
        return tf.div(tf.sum(tokenCrossEntropy(r.logits, c.labels.flat())), tokens) as tf.Scalar;
      });
    const start = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(loss);
    expect(Object.keys(grads).length).toBe(vars.length * 2);
    expect(Math.abs(value.dataSync()[0] - loss().dataSync()[0])).toBeLessThan(1e-5);
    for (const v of [vars[0].a, vars[5].b]) {
      const g = grads[v.name].dataSync();
      const orig = v.dataSync().slice();
      for (const i of [0, 7]) {
        const eps = 1e-2;
        const at = (d: number) => {
          const x = orig.slice();
          x[i] += d;
          v.assign(tf.tensor(x, v.shape));
          return tf.tidy(() => loss().dataSync()[0]);
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        v.assign(tf.tensor(orig, v.shape));
        expect(Math.abs(g[i] - fd)).toBeLessThan(2e-3 + 2e-2 * Math.abs(fd));
      }
    }
    tf.dispose([value, ...Object.values(grads)]);
    for (const v of vars) tf.dispose([v.a, v.b]);
    expect(tf.memory().numTensors).toBeLessThanOrEqual(start);
  });
});
