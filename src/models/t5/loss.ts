/**
 * Token cross-entropy with HF's conventions: label -100 is ignored; the batch loss is the mean
 * over every non-ignored token of the batch (torch CrossEntropyLoss(ignore_index=-100)).
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../../errors.ts';

export const IGNORE_INDEX = -100;

export interface ExampleLosses {
  /** Summed token cross-entropy per example. */
  sum: number[];
  /** Non-ignored label tokens per example. */
  tokens: number[];
  /** sum / tokens (NaN for an example with no label tokens). */
  mean: number[];
}

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

/** Checks label ids are in the vocabulary or -100. */
export function checkLabels(labels: number[][], vocabSize: number): void {
  for (let b = 0; b < labels.length; b++) {
    for (const l of labels[b]) {
      if (l !== IGNORE_INDEX && (!Number.isInteger(l) || l < 0 || l >= vocabSize)) {
        throw new LorahubError('BAD_TOKEN', `labels[${b}]: token id ${l} is outside the vocabulary [0, ${vocabSize}) and is not -100`);
      }
    }
  }
}

/** Per-example sums/counts from per-token losses of one group ([B·T] values, row-major). */
export function exampleLosses(perToken: ArrayLike<number>, labels: number[][], offset = 0): ExampleLosses {
  const out: ExampleLosses = { sum: [], tokens: [], mean: [] };
  let r = offset;
  for (const row of labels) {
    // Accumulate in float32 order like torch's per-row sum would not guarantee; use float64 for stability.
    let s = 0;
    let n = 0;
    for (const l of row) {
      if (l !== IGNORE_INDEX) {
        s += perToken[r];
        n++;
      }
      r++;
    }
    out.sum.push(s);
    out.tokens.push(n);
    out.mean.push(n > 0 ? s / n : Number.NaN);
  }
  return out;
}

/** HF batch loss: total token loss / total tokens. */
export function batchMeanLoss(l: ExampleLosses): number {
  const tokens = l.tokens.reduce((a, b) => a + b, 0);
  return l.sum.reduce((a, b) => a + b, 0) / tokens;
}

/** decoder_input_ids from labels, as HF's `_shift_right`: start token first, -100 → pad. */
export function shiftRight(labels: number[][], decoderStartTokenId: number, padTokenId: number): number[][] {
  return labels.map((row) => [decoderStartTokenId, ...row.slice(0, -1)].map((t) => (t === IGNORE_INDEX ? padTokenId : t)));
}
