/**
 * HF's conventions for labels and generated ids, on plain arrays (no tensors): shared by both
 * engines and by the code above the engine seam (src/engine/types.ts), which must not import a
 * tensor library.
 */
import { LorahubError } from '../../errors.ts';

/** torch CrossEntropyLoss's ignore_index: label positions that do not count. */
export const IGNORE_INDEX = -100;

export interface ExampleLosses {
  /** Summed token cross-entropy per example. */
  sum: number[];
  /** Non-ignored label tokens per example. */
  tokens: number[];
  /** sum / tokens (NaN for an example with no label tokens). */
  mean: number[];
}

/** Checks every id of a [B][S] matrix is a token of the vocabulary, naming the row ("input_ids[1]: …"). */
export function checkTokenIds(ids: number[][], vocabSize: number, what: string): void {
  ids.forEach((row, b) => {
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new LorahubError('BAD_TOKEN', `${what}[${b}]: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
    }
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
export function batchMeanLoss(l: { sum: number[]; tokens: number[] }): number {
  const tokens = l.tokens.reduce((a, b) => a + b, 0);
  return l.sum.reduce((a, b) => a + b, 0) / tokens;
}

/** decoder_input_ids from labels, as HF's `_shift_right`: start token first, -100 → pad. */
export function shiftRight(labels: number[][], decoderStartTokenId: number, padTokenId: number): number[][] {
  return labels.map((row) => [decoderStartTokenId, ...row.slice(0, -1)].map((t) => (t === IGNORE_INDEX ? padTokenId : t)));
}

/** The generated ids after the start token, up to and including eos (or all, if none). */
export function stripGenerated(ids: number[], eosTokenId: number): number[] {
  const body = ids.slice(1);
  const eos = body.indexOf(eosTokenId);
  return eos >= 0 ? body.slice(0, eos + 1) : body;
}
