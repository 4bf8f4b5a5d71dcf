import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { Adam, clipByGlobalNorm } from '../../src/train/adam.ts';

beforeAll(async () => {
  await initBackend();
});

/** torch.optim.Adam / AdamW's update, in float64 (the reference). */
function referenceAdam(p: number[], grads: number[][], lr: number, wd = 0, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const x = p.slice();
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < x.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const step = (m[i] / (1 - b1 ** t)) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps);
      x[i] = x[i] - lr * step - lr * wd * x[i];
    }
  });
  return x;
}

describe('Adam', () => {
  it('matches the textbook update (with and without decoupled weight decay) and does not leak', () => {
    const start = tf.memory().numTensors;
    const p0 = [0.5, -1.25, 2, 0.001];
    const grads = [
      [0.1, -0.2, 0.3, 1e-4],
      [-0.05, 0.4, 0.1, 2e-4],
      [0.2, 0.2, -0.7, -1e-3],
    ];
    for (const wd of [0, 0.01]) {
      const p = tf.tidy(() => tf.variable(tf.tensor1d(p0)));
      const opt = new Adam(new Map([['p', p]]), { weightDecay: wd });
      for (const g of grads) {
        const gt = tf.tensor1d(g);
        opt.apply(new Map([['p', gt]]), 0.01);
        gt.dispose();
      }
      const got = Array.from(p.dataSync());
      const want = referenceAdam(p0, grads, 0.01, wd);
      // float32 state and bias corrections (1 − 0.999 in float32 is off by 1.3e-5 relative): ~1e-6 agreement.
      got.forEach((x, i) => expect(x).toBeCloseTo(want[i], 5));
      opt.dispose();
      p.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('masked positions keep parameter and moments; each position counts its own steps', () => {
    // A [2, 3] with per-row masks (DyLoRA's A): row 1 is updated at steps 1 and 3, row 0 at step 2.
    const a = tf.tidy(() => tf.variable(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])));
    const opt = new Adam(new Map([['a', a]]), {}, new Map([['a', [2, 1]]]));
    const g = [0.3, -0.1, 0.2, 0.5, 0.5, -0.4];
    const gt = tf.tensor2d(g, [2, 3]);
    const row = (i: number) => tf.tensor2d(i === 0 ? [1, 0] : [0, 1], [2, 1]);
    for (const r of [1, 0, 1]) {
      const m = row(r);
      opt.apply(new Map([['a', gt]]), 0.1, new Map([['a', m]]));
      m.dispose();
    }
    const got = Array.from(a.dataSync());
    // Row 0 saw one update (its first): exactly a fresh Adam's first step. Row 1 saw two.
    const row0 = referenceAdam([1, 2, 3], [g.slice(0, 3)], 0.1);
    const row1 = referenceAdam([4, 5, 6], [g.slice(3), g.slice(3)], 0.1);
    [...row0, ...row1].forEach((x, i) => expect(got[i]).toBeCloseTo(x, 5));
    const counts = Array.from((opt.stateTensors().get('adam.count/a') as tf.Tensor).dataSync());
    expect(counts).toEqual([1, 2]);
    tf.dispose([gt, a]);
    opt.dispose();
  });

  it('clips by the global norm as torch.nn.utils.clip_grad_norm_', () => {
    const g = new Map<string, tf.Tensor>([
      ['x', tf.tensor1d([3, 0])],
      ['y', tf.tensor1d([0, 4])],
    ]);
    const { grads, norm } = clipByGlobalNorm(g, 1);
    expect(norm.dataSync()[0]).toBeCloseTo(5, 6);
    expect(Array.from((grads.get('x') as tf.Tensor).dataSync())[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    expect(Array.from((grads.get('y') as tf.Tensor).dataSync())[1]).toBeCloseTo(4 / (5 + 1e-6), 6);
    const loose = clipByGlobalNorm(g, 10);
    expect(Array.from((loose.grads.get('y') as tf.Tensor).dataSync())[1]).toBe(4);
    tf.dispose([...g.values(), ...grads.values(), norm, ...loose.grads.values(), loose.norm]);
  });
});
