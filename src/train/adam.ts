/**
 * Adam (Kingma & Ba, ICLR 2015, Algorithm 1) over tf.Variables, with decoupled weight decay
 * (AdamW, Loshchilov & Hutter, ICLR 2019) and global-norm gradient clipping (as HF Trainer's
 * `max_grad_norm`). Written here rather than using tf.train.adam because the trainer must save and
 * restore every moment exactly (resumable checkpoints), and because DyLoRA needs masked updates.
 *
 * Masked ("lazy") updates: where a parameter's mask is 0, the step leaves the parameter AND its
 * moments untouched, and each mask position keeps its own step count for the bias correction
 * (TensorFlow's LazyAdam does the same for sparse rows). Masking only the gradient would not
 * freeze anything: with a zero gradient Adam still moves a parameter by m̂/(√v̂ + ε) from its
 * momentum. Counts have the mask's (broadcast) shape: [r, 1] for a DyLoRA A, [1, r] for B, [] for
 * an ordinary parameter, where the update is textbook Adam.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../errors.ts';

export interface AdamOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Decoupled weight decay λ: p ← p − lr·λ·p (AdamW); 0 for plain Adam. */
  weightDecay: number;
}

/** PyTorch's / the paper's defaults. */
export const ADAM_DEFAULTS: Readonly<AdamOptions> = Object.freeze({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 });

interface Slot {
  m: tf.Variable;
  v: tf.Variable;
  /** Updates applied so far, per mask position (shape [] when the parameter is never masked). */
  count: tf.Variable;
}

/** Names under which the optimizer state appears in a checkpoint. */
export function adamStateName(param: string, which: 'm' | 'v' | 'count'): string {
  return `adam.${which}/${param}`;
}

export class Adam {
  readonly options: AdamOptions;
  private readonly params: Map<string, tf.Variable>;
  private readonly slots = new Map<string, Slot>();

  /**
   * `countShapes`: for parameters that will be updated with masks, the mask's shape (it must
   * broadcast against the parameter). Others count steps with one scalar.
   */
  constructor(params: Map<string, tf.Variable>, options: Partial<AdamOptions> = {}, countShapes: Map<string, number[]> = new Map()) {
    this.options = { ...ADAM_DEFAULTS, ...options };
    this.params = params;
    for (const [name, p] of params) {
      // Inside tidy: tf.variable shares the initial tensor's data, and the initial tensor itself must go.
      this.slots.set(
        name,
        tf.tidy(() => ({
          m: tf.variable(tf.zerosLike(p), false),
          v: tf.variable(tf.zerosLike(p), false),
          count: tf.variable(tf.zeros(countShapes.get(name) ?? []), false),
        })),
      );
    }
  }

  /**
   * One update with learning rate `lr`. `grads` must hold a gradient for every parameter;
   * `masks` (0/1, the shape given in `countShapes`) restricts the update of some parameters.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, masks?: Map<string, tf.Tensor>): void {
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) throw new LorahubError('INTERNAL', `Adam: no gradient for parameter "${name}"`);
      const s = this.slots.get(name) as Slot;
      const mask = masks?.get(name);
      if (mask && mask.shape.join(',') !== s.count.shape.join(',')) {
        throw new LorahubError('SHAPE_MISMATCH', `Adam: mask for "${name}" is [${mask.shape.join(', ')}], expected [${s.count.shape.join(', ')}]`);
      }
      tf.tidy(() => {
        const count = mask ? tf.add(s.count, mask) : tf.add(s.count, 1);
        let m = tf.add(tf.mul(s.m, beta1), tf.mul(g, 1 - beta1));
        let v = tf.add(tf.mul(s.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        // Bias corrections 1 − βᵗ per position; t ≥ 1 keeps never-updated positions finite (they are masked out).
        const t = tf.maximum(count, 1);
        const c1 = tf.sub(1, tf.pow(tf.scalar(beta1), t));
        const c2 = tf.sub(1, tf.pow(tf.scalar(beta2), t));
        const step = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        let next = tf.sub(p, tf.mul(step, lr));
        if (weightDecay > 0) next = tf.sub(next, tf.mul(p, lr * weightDecay));
        if (mask) {
          const on = tf.broadcastTo(tf.greater(mask, 0), p.shape);
          m = tf.where(on, m, s.m);
          v = tf.where(on, v, s.v);
          next = tf.where(on, next, p);
        }
        s.m.assign(m);
        s.v.assign(v);
        s.count.assign(count);
        p.assign(next);
      });
    }
  }

  /** Every state tensor, by checkpoint name (see `adamStateName`). */
  stateTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, s] of this.slots) {
      out.set(adamStateName(name, 'm'), s.m);
      out.set(adamStateName(name, 'v'), s.v);
      out.set(adamStateName(name, 'count'), s.count);
    }
    return out;
  }

  /** Restores the state written by `stateTensors` (shapes checked). */
  loadState(saved: ReadonlyMap<string, { shape: number[]; data: Float32Array }>, where: string): void {
    for (const [name, t] of this.stateTensors()) {
      const x = saved.get(name);
      if (!x) throw new LorahubError('BAD_FILE', `${where}: missing optimizer state "${name}"`);
      if (x.shape.join(',') !== t.shape.join(',')) {
        throw new LorahubError('SHAPE_MISMATCH', `${where}: optimizer state "${name}" is [${x.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
      }
      tf.tidy(() => (t as tf.Variable).assign(tf.tensor(x.data, t.shape)));
    }
  }

  dispose(): void {
    for (const s of this.slots.values()) tf.dispose([s.m, s.v, s.count]);
    this.slots.clear();
  }
}

/**
 * Global gradient norm √(Σ‖g‖²) as a scalar tensor, and the gradients scaled by
 * min(1, maxNorm / norm) (torch.nn.utils.clip_grad_norm_). maxNorm ≤ 0 or ∞ disables clipping.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const names = [...grads.keys()];
  // tf.tidy keeps only tensors it can find in the result (arrays and plain objects, not Maps).
  const [norm, ...scaled] = tf.tidy(() => {
    const gs = names.map((k) => grads.get(k) as tf.Tensor);
    const n = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
    if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) return [n, ...gs.map((g) => tf.clone(g))];
    // torch adds 1e-6 to the norm before dividing.
    const scale = tf.minimum(1, tf.div(maxNorm, tf.add(n, 1e-6)));
    return [n, ...gs.map((g) => tf.mul(g, scale))];
  });
  return { grads: new Map(names.map((k, i) => [k, scaled[i]])), norm: norm as tf.Scalar };
}
