/**
 * Tensor building blocks of the tfjs forwards: T5's encoder, decoder and generation, and the
 * decoder-only families' (models/causal).
 *
 * Performance notes (tfjs wasm backend, measured here): only batch-1, untransposed 2D matMul
 * reaches XNNPACK's fast path (~29 GFLOP/s a thread); batched or transposed products fall to a
 * naive loop (~2 GFLOP/s). So linear layers take 2D [rows, dIn] inputs against weights stored
 * pre-transposed as [dIn, dOut], and attention splits its batched products into 2D ones when they
 * are big enough for that to pay (see `bmm`).
 */
import * as tf from '@tensorflow/tfjs';
import { SafetensorsFile } from '../../io/safetensors.ts';
import type { ResolvedWeight } from './family.ts';

/** True while a gradient tape records (training): ops must then be differentiable on every backend. */
export function recording(): boolean {
  return tf.engine().isTapeOn();
}

/**
 * a [m, k] · b [k, n] whose gradients are plain 2D products too. tfjs's own MatMul gradient
 * multiplies by transposed operands (dA = dy·bᵀ, dB = aᵀ·dy with transpose flags), which on wasm
 * falls off the fast path (~2 vs ~29 GFLOP/s); materialising the transposes keeps it on.
 */
export const matMul2d = tf.customGrad(((a: tf.Tensor2D, b: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      return [tf.matMul(dy, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** 2D product: plain when inference, transpose-materialising gradients when recording. */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return recording() ? matMul2d(a, b) : (tf.matMul(a, b) as tf.Tensor2D);
}

/**
 * Rows of `table` [n, d] at `idx`. The wasm backend has no UnsortedSegmentSum kernel, which
 * tfjs needs for gather's gradient, so under a tape this is a one-hot product instead (same
 * values; its gradient is a plain 2D product).
 */
export function gatherRows(table: tf.Tensor2D, idx: Int32Array | number[]): tf.Tensor2D {
  return tf.tidy(() => {
    const ids = tf.tensor1d(idx instanceof Int32Array ? idx : Int32Array.from(idx), 'int32');
    if (!recording()) return tf.gather(table, ids) as tf.Tensor2D;
    return mm(tf.cast(tf.oneHot(ids, table.shape[0]), 'float32') as tf.Tensor2D, table);
  });
}

/** T5's RMS layer norm (no mean subtraction, no bias): x · rsqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), -1, true); // [rows, 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight) as tf.Tensor2D;
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * transformers' NewGELUActivation ("gelu_new", the tanh approximation):
 *   0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
 * Computed as x·sigmoid(2u), the same function (½(1 + tanh u) = σ(2u)), because the wasm
 * backend's tanh is ~3× slower than its sigmoid. The difference is float32 round-off.
 */
export function geluNew(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(x, tf.add(tf.mul(tf.square(x), 0.044715 * 2 * SQRT_2_OVER_PI), 2 * SQRT_2_OVER_PI));
    return tf.mul(x, tf.sigmoid(inner));
  });
}

/**
 * Splits [n·rows, cols] into n tensors of [rows, cols].
 *
 * The wasm backend's Slice (and so split/unstack) copies the WHOLE input through readSync for
 * every slice it makes — n slices of a tensor cost n full copies (measured: 30 slices of a
 * [3840, 64] tensor take ~20 ms, reading it once and re-uploading the parts 1.6 ms). So outside
 * gradient recording we read once and re-upload; under a tape (training) we keep tf.split,
 * which is differentiable.
 */
export function splitRows(x: tf.Tensor2D, n: number): tf.Tensor2D[] {
  const [total, cols] = x.shape;
  if (total % n !== 0) throw new Error(`splitRows: ${total} rows into ${n} parts`);
  if (n === 1) return [x];
  const rows = total / n;
  if (tf.engine().isTapeOn()) return tf.split(x, n, 0);
  const v = x.dataSync() as Float32Array;
  const out: tf.Tensor2D[] = [];
  for (let i = 0; i < n; i++) out.push(tf.tensor2d(v.subarray(i * rows * cols, (i + 1) * rows * cols), [rows, cols]));
  return out;
}

/** Below this many multiply-adds per product a batched product runs as one op (op overhead dominates). */
const BMM_SPLIT_MIN_MACS = 1 << 15;

/**
 * Batched product a [G, m, k] · b [G, k, n] → [G, m, n]. Batched matMul misses the wasm fast
 * path (~2 GFLOP/s), so products large enough to pay for it run as G plain 2D products.
 */
export function bmm(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [g, m, k] = a.shape;
  const n = b.shape[2];
  if (g === 1) return tf.reshape(mm(tf.reshape(a, [m, k]), tf.reshape(b, [k, n])), [1, m, n]);
  // Under a tape (training) the split's tf.split copies the whole input per piece; one batched
  // product is faster there.
  if (recording() || m * k * n < BMM_SPLIT_MIN_MACS || tf.getBackend() !== 'wasm') return tf.matMul(a, b);
  return tf.tidy(() => {
    const as = splitRows(tf.reshape(a, [g * m, k]), g);
    const bs = splitRows(tf.reshape(b, [g * k, n]), g);
    return tf.reshape(tf.concat(as.map((ai, i) => mm(ai, bs[i])), 0), [g, m, n]) as tf.Tensor3D;
  });
}

/**
 * A LoRA delta for one Linear, prepared for the forward pass: y += (x·aT)·bT.
 * aT = Aᵀ [dIn, r]; bT = scaling·Bᵀ [r, dOut] (scaling folded in once).
 */
export type LoraDelta = {
  aT: tf.Tensor2D;
  bT: tf.Tensor2D;
};

/**
 * One delta per candidate group (population scoring), packed once per population:
 * aT3 [G, dIn, r], bT3 [G, r, dOut], and aTcat = [A₁ᵀ … A_Gᵀ] [dIn, G·r] for shared rows.
 */
export type GroupedLoraDelta = {
  groups: number;
  aT3: tf.Tensor3D;
  bT3: tf.Tensor3D;
  aTcat: tf.Tensor2D;
};

export function isGrouped(d: LoraDelta | GroupedLoraDelta): d is GroupedLoraDelta {
  return (d as GroupedLoraDelta).groups !== undefined;
}

/**
 * Hidden rows [rows, width]. In population scoring (G candidate modules scored in one pass)
 * the rows are G groups of the same R example rows, group-major. While no group-specific delta
 * has touched them yet, the R rows are shared by all groups and stored once (`shared`), so work
 * that does not depend on the candidate (embeddings, the first norm, the first base projections)
 * is done once.
 */
export type Rows = {
  x: tf.Tensor2D;
  shared: boolean;
};

/** G copies of x stacked along axis 0 (concat: wasm's Tile kernel is ~20× slower here). */
export function repeatRows<T extends tf.Tensor>(x: T, groups: number): T {
  return groups === 1 ? x : (tf.concat(new Array<T>(groups).fill(x), 0) as T);
}

/** Materialises shared rows for `groups` groups (a no-op for unshared rows or one group). */
export function expand(r: Rows, groups: number): tf.Tensor2D {
  if (!r.shared || groups === 1) return r.x;
  return repeatRows(r.x, groups);
}

/**
 * y = x·W (+ LoRA). `w` is the pre-transposed weight [dIn, dOut]. `delta` is one delta for all
 * rows, or one per group (rows are group-major). With grouped deltas on shared rows the base
 * product is computed once and broadcast, and x·Aᵀ for every group is one product.
 */
export function linear(r: Rows, w: tf.Tensor2D, delta: LoraDelta | GroupedLoraDelta | undefined, groups: number): Rows {
  return tf.tidy<Rows>(() => {
    const base = mm(r.x, w);
    if (delta === undefined) return { x: base, shared: r.shared };
    if (!isGrouped(delta)) {
      return { x: tf.add(base, mm(mm(r.x, delta.aT), delta.bT)) as tf.Tensor2D, shared: r.shared };
    }
    if (delta.groups !== groups) throw new Error(`linear: deltas for ${delta.groups} groups, rows for ${groups}`);
    const [, dIn, rank] = delta.aT3.shape;
    const dOut = w.shape[1];
    const rowsPer = r.shared ? r.x.shape[0] : r.x.shape[0] / groups;
    let xa: tf.Tensor3D; // [G, R, r]
    if (r.shared) {
      const all = mm(r.x, delta.aTcat); // [R, G·r]
      xa = tf.transpose(tf.reshape(all, [rowsPer, groups, rank]), [1, 0, 2]) as tf.Tensor3D;
    } else {
      xa = bmm(tf.reshape(r.x, [groups, rowsPer, dIn]) as tf.Tensor3D, delta.aT3);
    }
    const d = bmm(xa, delta.bT3); // [G, R, dOut]
    const sum = r.shared ? tf.add(d, base) : tf.add(tf.reshape(d, [groups * rowsPer, dOut]), base);
    return { x: tf.reshape(sum, [groups * rowsPer, dOut]) as tf.Tensor2D, shared: false };
  });
}

/**
 * An elementwise op on two row sets, broadcasting shared rows over the groups of unshared ones
 * (reshaped to [G, R, width] so the shared [R, width] rows broadcast without a copy).
 */
function combineRows(a: Rows, b: Rows, groups: number, op: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor): Rows {
  return tf.tidy<Rows>(() => {
    if (a.shared === b.shared || groups === 1) return { x: op(a.x, b.x) as tf.Tensor2D, shared: a.shared && b.shared };
    const [s, u] = a.shared ? [a, b] : [b, a];
    const [rows, width] = s.x.shape;
    const out = op(tf.reshape(u.x, [groups, rows, width]), s.x);
    return { x: tf.reshape(out, [groups * rows, width]) as tf.Tensor2D, shared: false };
  });
}

/** Elementwise a + b on rows (residual connections). */
export function addRows(a: Rows, b: Rows, groups: number): Rows {
  return combineRows(a, b, groups, tf.add);
}

/** Elementwise a · b on rows (the gated FFN). */
export function mulRows(a: Rows, b: Rows, groups: number): Rows {
  return combineRows(a, b, groups, tf.mul);
}

/**
 * Every tensor a family's weight table resolves to in `file` (`resolve`: the table against the
 * open checkpoint, shapes asserted), as float32 tfjs tensors keyed by our names; torch Linear
 * weights stored transposed, [dIn, dOut] (the wasm fast path). Nothing is left allocated on error.
 */
export function loadTableTensors(file: string, resolve: (st: SafetensorsFile) => ResolvedWeight[]): Map<string, tf.Tensor> {
  const st = SafetensorsFile.open(file);
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const { entry, name } of resolve(st)) {
      const t = tf.tensor(st.readFloat32(name), entry.hfShape, 'float32');
      if (entry.transpose) {
        tensors.set(entry.ours, tf.transpose(t));
        t.dispose();
      } else {
        tensors.set(entry.ours, t);
      }
    }
    return tensors;
  } catch (err) {
    tf.dispose([...tensors.values()]);
    throw err;
  } finally {
    st.close();
  }
}
