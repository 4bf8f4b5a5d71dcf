/**
 * Token cross-entropy with HF's conventions: label -100 is ignored (torch
 * CrossEntropyLoss(ignore_index=-100)); per-example and batch reductions are in labels.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { IGNORE_INDEX, type ScoreBatch } from '../shared/batch.ts';
import { shiftRight } from './labels.ts';
import type { LoraDeltas, T5Model } from './model.ts';

/**
 * Per-token cross-entropy [rows] for logits [rows, V] and labels (flattened [rows]); ignored
 * positions give 0. `groups` > 1: logits are G groups of the same rows, labels given once.
 */
export function tokenCrossEntropy(logits: tf.Tensor2D, labels: number[], groups = 1): tf.Tensor1D {
  const [rows, v] = logits.shape;
  if (rows !== labels.length * groups) throw new Error(`tokenCrossEntropy: ${rows} rows for ${labels.length}×${groups} labels`);
  return tf.tidy(() => {
    const idx = new Int32Array(rows);
    const keep = new Float32Array(rows);
    for (let g = 0; g < groups; g++) {
      for (let i = 0; i < labels.length; i++) {
        const r = g * labels.length + i;
        const ignored = labels[i] === IGNORE_INDEX;
        idx[r] = ignored ? 0 : labels[i];
        keep[r] = ignored ? 0 : 1;
      }
    }
    const logp = tf.logSoftmax(logits); // [rows, V]
    let picked: tf.Tensor1D;
    if (tf.engine().isTapeOn()) {
      // gather has no gradient on wasm (no UnsortedSegmentSum): pick with a one-hot mask instead.
      picked = tf.sum(tf.mul(logp, tf.cast(tf.oneHot(tf.tensor1d(idx, 'int32'), v), 'float32')), -1) as tf.Tensor1D;
    } else {
      const flatIdx = idx.map((l, r) => r * v + l);
      picked = tf.gather(tf.reshape(logp, [-1]), tf.tensor1d(flatIdx, 'int32')) as tf.Tensor1D;
    }
    return tf.mul(tf.neg(picked), tf.tensor1d(keep)) as tf.Tensor1D;
  });
}

/**
 * The teacher-forced forward every T5 loss goes through (the tfjs engine's scoring and the
 * trainers): decoder input from the labels (HF `_shift_right`), then per-token cross-entropy.
 * [G·B·T] values for `groups` candidates' deltas, or [B·T] when no candidate-specific delta
 * reached the logits (`shared`). Differentiable: the trainers take its gradient.
 */
export function teacherForcedLosses(model: T5Model, batch: ScoreBatch, deltas?: LoraDeltas, groups = 1): { perToken: tf.Tensor1D; shared: boolean } {
  const cfg = model.config;
  const decoderInputIds = shiftRight(batch.labels, cfg.decoderStartTokenId, cfg.padTokenId);
  return tf.tidy(() => {
    const out = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }, decoderInputIds, deltas, groups);
    const shared = out.shared === true;
    return { perToken: tokenCrossEntropy(out.logits, batch.labels.flat(), shared ? 1 : groups), shared };
  });
}

/**
 * The training loss: the summed teacher-forced token loss divided by `batch.labelTokens` (the
 * batch's mean, or a micro-batch's share of its whole batch's mean).
 */
export function batchLoss(model: T5Model, batch: ScoreBatch & { labelTokens: number }, deltas?: LoraDeltas): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(teacherForcedLosses(model, batch, deltas).perToken), batch.labelTokens) as tf.Scalar);
}
