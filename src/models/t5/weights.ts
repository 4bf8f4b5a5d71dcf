/**
 * T5 weights as tfjs tensors, for the tfjs forward (model.ts): the checkpoint table of
 * checkpoint.ts, loaded.
 *
 * Linear weights are stored by HF as [dOut, dIn] (torch.nn.Linear); we keep them transposed,
 * [dIn, dOut], so that every projection is a plain untransposed 2D matMul (the wasm fast path).
 */
import * as tf from '@tensorflow/tfjs';
import { loadTableTensors } from '../shared/ops.ts';
import { resolveT5Checkpoint } from './checkpoint.ts';
import type { T5Config } from './config.ts';

/** Loaded weights, keyed by our names; Linear weights already transposed to [dIn, dOut]. */
export interface T5Weights {
  tensors: Map<string, tf.Tensor>;
  /** Pre-transposed LM head [d_model, vocab]: lm_head.weightᵀ, or shared.weightᵀ when tied. */
  lmHeadT: tf.Tensor2D;
}

/** Loads every tensor of the table from `file` as tfjs tensors (see resolveT5Checkpoint). */
export function loadT5Weights(cfg: T5Config, file: string): T5Weights {
  const tensors = loadTableTensors(file, (st) => resolveT5Checkpoint(cfg, st));
  const lmHeadT = cfg.tieWordEmbeddings ? (tf.transpose(tensors.get('embed') as tf.Tensor2D) as tf.Tensor2D) : (tensors.get('lmHead') as tf.Tensor2D);
  return { tensors, lmHeadT };
}

export function disposeWeights(w: T5Weights): void {
  for (const t of w.tensors.values()) t.dispose();
  if (!w.tensors.has('lmHead')) w.lmHeadT.dispose();
}
