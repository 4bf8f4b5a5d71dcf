/**
 * LoraModule (plain arrays, PEFT layout) → tensors the T5 forward applies: for each target,
 * aT = Aᵀ [dIn, r] and bT = scaling·Bᵀ [r, dOut], so the delta is two plain 2D products.
 */
import * as tf from '@tensorflow/tfjs';
import { populationTargets } from '../../lora/fit.ts';
import type { LoraModule, LoraTarget } from '../../lora/module.ts';
import type { LoraDeltas } from './model.ts';
import type { LoraDelta } from '../shared/ops.ts';

function targetDelta(t: LoraTarget): LoraDelta {
  return tf.tidy(() => {
    const a = tf.tensor2d(t.a, [t.r, t.dIn]);
    const b = tf.tensor2d(t.b, [t.dOut, t.r]);
    return { aT: tf.transpose(a) as tf.Tensor2D, bT: tf.mul(tf.transpose(b), t.scaling) as tf.Tensor2D };
  });
}

/** Deltas for one module (applied to every row). */
export function moduleDeltas(module: Pick<LoraModule, 'targets'>): LoraDeltas {
  const out: LoraDeltas = new Map();
  for (const t of module.targets.values()) out.set(t.path, targetDelta(t));
  return out;
}

/**
 * Deltas for G modules scored in one pass (population scoring): group g uses modules[g].
 * All modules must have the same targets and ranks (true for compositions of one module list).
 */
export function groupDeltas(modules: readonly Pick<LoraModule, 'name' | 'targets'>[]): LoraDeltas {
  const out: LoraDeltas = new Map();
  const g = modules.length;
  for (const { path: p, targets: ts } of populationTargets(modules)) {
    const { r, dIn, dOut } = ts[0];
    // Aᵀ and scaling·Bᵀ for every group, transposed on the host (cheap: r is small).
    const aT = new Float32Array(g * dIn * r);
    const bT = new Float32Array(g * r * dOut);
    ts.forEach((t, gi) => {
      for (let k = 0; k < r; k++) {
        for (let i = 0; i < dIn; i++) aT[gi * dIn * r + i * r + k] = t.a[k * dIn + i];
        for (let o = 0; o < dOut; o++) bT[gi * r * dOut + k * dOut + o] = Math.fround(t.b[o * r + k] * t.scaling);
      }
    });
    out.set(
      p,
      tf.tidy(() => {
        const aT3 = tf.tensor3d(aT, [g, dIn, r]);
        return {
          groups: g,
          aT3,
          bT3: tf.tensor3d(bT, [g, r, dOut]),
          aTcat: tf.reshape(tf.transpose(aT3, [1, 0, 2]), [dIn, g * r]) as tf.Tensor2D,
        };
      }),
    );
  }
  return out;
}

export function disposeDeltas(deltas: LoraDeltas): void {
  for (const d of deltas.values()) {
    if ('groups' in d) tf.dispose([d.aT3, d.bT3, d.aTcat]);
    else tf.dispose([d.aT, d.bT]);
  }
}
