/**
 * LoraModule (plain arrays, PEFT layout) → tensors the T5 forward applies: for each target,
 * aT = Aᵀ [dIn, r] and bT = scaling·Bᵀ [r, dOut], so the delta is two plain 2D products.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../errors.ts';
import type { T5Config } from '../models/t5/config.ts';
import { t5LinearShape } from '../models/t5/config.ts';
import type { LoraDeltas } from '../models/t5/model.ts';
import type { LoraDelta } from '../models/t5/ops.ts';
import type { LoraModule, LoraTarget } from './module.ts';

/** Throws INCOMPATIBLE unless every target is a Linear of this model with matching shapes. */
export function checkModuleFitsModel(module: LoraModule, cfg: T5Config, modelName = 'the model'): void {
  for (const t of module.targets.values()) {
    const shape = t5LinearShape(cfg, t.path);
    if (!shape) {
      throw new LorahubError('INCOMPATIBLE', `module "${module.name}", key "${t.path}": no such Linear in ${modelName}`);
    }
    if (shape[0] !== t.dOut || shape[1] !== t.dIn) {
      throw new LorahubError(
        'INCOMPATIBLE',
        `module "${module.name}", key "${t.path}": base Linear is [${shape.join(', ')}] (out, in), module has [${t.dOut}, ${t.dIn}]`,
      );
    }
  }
}

function targetDelta(t: LoraTarget): LoraDelta {
  return tf.tidy(() => {
    const a = tf.tensor2d(t.a, [t.r, t.dIn]);
    const b = tf.tensor2d(t.b, [t.dOut, t.r]);
    return { aT: tf.transpose(a) as tf.Tensor2D, bT: tf.mul(tf.transpose(b), t.scaling) as tf.Tensor2D };
  });
}

/** Deltas for one module (applied to every row). */
export function moduleDeltas(module: LoraModule): LoraDeltas {
  const out: LoraDeltas = new Map();
  for (const t of module.targets.values()) out.set(t.path, targetDelta(t));
  return out;
}

/**
 * Deltas for G modules scored in one pass (population scoring): group g uses modules[g].
 * All modules must have the same targets (true for compositions of one module list).
 */
export function groupDeltas(modules: LoraModule[]): LoraDeltas {
  const out: LoraDeltas = new Map();
  if (modules.length === 0) return out;
  const paths = [...modules[0].targets.keys()];
  for (const m of modules) {
    if (m.targets.size !== paths.length || paths.some((p) => !m.targets.has(p))) {
      throw new LorahubError('INCOMPATIBLE', `module "${m.name}": targets differ from "${modules[0].name}"`);
    }
  }
  for (const p of paths) out.set(p, modules.map((m) => targetDelta(m.targets.get(p) as LoraTarget)));
  return out;
}

export function disposeDeltas(deltas: LoraDeltas): void {
  for (const d of deltas.values()) {
    for (const x of Array.isArray(d) ? d : [d]) {
      x.aT.dispose();
      x.bT.dispose();
    }
  }
}
