/**
 * The decoder-only families' own tensor blocks (the shared ones — linears with LoRA deltas, rows
 * shared across candidate groups, RMSNorm, gelu_new — are models/ops.ts): LayerNorm, transformers'
 * activations, rotary position embeddings.
 */
import * as tf from '@tensorflow/tfjs';
import { ropeInvFreq, type Activation, type LlamaConfig } from '../llama/config.ts';
import { geluNew, mm } from '../shared/ops.ts';

/** torch LayerNorm over the last axis: (x − mean) / √(var + eps) · weight + bias (biased variance). */
export function layerNorm(x: tf.Tensor2D, weight: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const centred = tf.sub(x, tf.mean(x, -1, true));
    const variance = tf.mean(tf.square(centred), -1, true); // [rows, 1]
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), weight), bias) as tf.Tensor2D;
  });
}

/** transformers' ACT2FN: silu x·σ(x); gelu (erf form); gelu_new (tanh form, models/ops.ts); relu. */
export function activation(x: tf.Tensor2D, kind: Activation): tf.Tensor2D {
  return tf.tidy(() => {
    if (kind === 'silu') return tf.mul(x, tf.sigmoid(x)) as tf.Tensor2D;
    if (kind === 'relu') return tf.relu(x);
    if (kind === 'gelu_new') return geluNew(x) as tf.Tensor2D;
    // GELUActivation: 0.5·x·(1 + erf(x / √2)).
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as tf.Tensor2D;
  });
}

/**
 * Rotary tables for rows [R = B·S] at `positions` [B][S]: cos and sin of cat(p·inv_freq,
 * p·inv_freq) [R, dh], computed on the host in float32 as transformers' LlamaRotaryEmbedding
 * (inv_freq float32, the angle one float32 product, then cos/sin).
 */
export function rotaryTables(cfg: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>, positions: number[][]): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const inv = ropeInvFreq(cfg);
  const dh = cfg.headDim;
  const half = dh / 2;
  const flat = positions.flat();
  const cos = new Float32Array(flat.length * dh);
  const sin = new Float32Array(flat.length * dh);
  flat.forEach((p, r) => {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[r * dh + i] = cos[r * dh + i + half] = c;
      sin[r * dh + i] = sin[r * dh + i + half] = s;
    }
  });
  return { cos: tf.tensor2d(cos, [flat.length, dh]), sin: tf.tensor2d(sin, [flat.length, dh]) };
}

/**
 * The signed permutation P [dh, dh] with x·P = rotate_half(x) = cat(−x₂, x₁) (transformers'
 * modeling_llama.py): a 2D product on the fast path instead of slices, which the wasm backend runs
 * by copying the whole input for each. Every output is one input times ±1, so it is exact.
 */
export function rotateHalfMatrix(dh: number): tf.Tensor2D {
  const half = dh / 2;
  const p = new Float32Array(dh * dh);
  for (let j = 0; j < half; j++) p[(j + half) * dh + j] = -1;
  for (let j = half; j < dh; j++) p[(j - half) * dh + j] = 1;
  return tf.tensor2d(p, [dh, dh]);
}

/**
 * x·cos + rotate_half(x)·sin for projected rows x [g·R, heads·dh] (g groups of the R rows the
 * tables [R, dh] describe; g = 1 for shared rows).
 */
export function applyRotary(x: tf.Tensor2D, heads: number, tables: { cos: tf.Tensor2D; sin: tf.Tensor2D }, rotateHalf: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [R, dh] = tables.cos.shape;
    const rows = x.shape[0];
    const g = rows / R;
    const x4 = tf.reshape(x, [g, R, heads, dh]);
    const rotated = tf.reshape(mm(tf.reshape(x, [rows * heads, dh]), rotateHalf), [g, R, heads, dh]);
    const cos = tf.reshape(tables.cos, [R, 1, dh]);
    const sin = tf.reshape(tables.sin, [R, 1, dh]);
    return tf.reshape(tf.add(tf.mul(x4, cos), tf.mul(rotated, sin)), [rows, heads * dh]) as tf.Tensor2D;
  });
}
