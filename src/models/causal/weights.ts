/**
 * Decoder-only checkpoints as tfjs tensors, for the tfjs forward (model.ts): the family's weight
 * table (llama/weights.ts, gpt2/weights.ts), resolved against model.safetensors with every shape
 * asserted, and loaded. Torch Linear weights [out, in] are kept transposed ([in, out], the table's
 * `transpose`); GPT-2's Conv1D weights are [in, out] already. Every projection is then a plain
 * untransposed 2D product, the wasm fast path (models/ops.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { loadTableTensors } from '../shared/ops.ts';
import type { CausalArch } from '../index.ts';
import { causalGeometry } from './rows.ts';

/** Loaded weights keyed by our (HF canonical) names, and the LM head. */
export interface CausalWeights {
  tensors: Map<string, tf.Tensor>;
  /** The LM head transposed, [d, V]: lm_head.weightᵀ, or the embedding's transpose when tied (a copy). */
  lmHeadT: tf.Tensor2D;
  /** Whether lmHeadT is a tensor of its own (tied: a transposed copy of the embedding). */
  ownHead: boolean;
}

/** Loads every tensor of the family's table from `file` (F32, F16 or BF16 read as float32). */
export function loadCausalWeights(arch: CausalArch, file: string): CausalWeights {
  const tensors = loadTableTensors(file, (st) => arch.resolveCheckpoint(st));
  const geo = causalGeometry(arch);
  const tied = geo.head === geo.embed;
  // An untied head is a torch Linear [V, d], stored transposed by the table already.
  const lmHeadT = tied ? (tf.transpose(tensors.get(geo.embed) as tf.Tensor2D) as tf.Tensor2D) : (tensors.get(geo.head) as tf.Tensor2D);
  return { tensors, lmHeadT, ownHead: tied };
}

export function disposeCausalWeights(w: CausalWeights): void {
  for (const t of w.tensors.values()) t.dispose();
  if (w.ownHead) w.lmHeadT.dispose();
}
