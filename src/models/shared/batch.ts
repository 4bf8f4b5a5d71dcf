/**
 * Token batches as every model family and engine reads them, on plain arrays (no tensors): HF's
 * label conventions (-100), padding, id checks and per-example loss sums. Shared by both engines,
 * the trainers and the code above the engine seam (src/engine/types.ts), which must not import a
 * tensor library; family-specific layouts (T5's decoder input, labels.ts) build on it.
 */
import { LorahubError } from '../../errors.ts';

/** torch CrossEntropyLoss's ignore_index: label positions that do not count. */
export const IGNORE_INDEX = -100;

/** A padded batch of examples: inputs (pad-padded) with their mask, labels padded with -100. */
export interface ScoreBatch {
  inputIds: number[][];
  attentionMask: number[][];
  labels: number[][];
}

/** Pads token id lists into a ScoreBatch (inputs with `padId`, labels with -100; no targets → no labels). */
export function padBatch(inputs: number[][], targets: number[][], padId: number): ScoreBatch {
  const s = Math.max(...inputs.map((x) => x.length));
  const t = Math.max(0, ...targets.map((x) => x.length));
  return {
    inputIds: inputs.map((x) => [...x, ...new Array<number>(s - x.length).fill(padId)]),
    attentionMask: inputs.map((x) => [...x.map(() => 1), ...new Array<number>(s - x.length).fill(0)]),
    labels: targets.map((y) => [...y, ...new Array<number>(t - y.length).fill(IGNORE_INDEX)]),
  };
}

/**
 * Checks one row of ids is inside the vocabulary (labels may also be -100), naming it in the
 * error ("data.jsonl:3: labels: token id 9999 is outside the vocabulary [0, 384) and is not -100").
 */
export function checkIdRow(ids: readonly number[], vocabSize: number, what: string, labels = false): void {
  for (const id of ids) {
    if (labels && id === IGNORE_INDEX) continue;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new LorahubError('BAD_TOKEN', `${what}: token id ${id} is outside the vocabulary [0, ${vocabSize})${labels ? ` and is not ${IGNORE_INDEX}` : ''}`);
    }
  }
}

/** Checks every id of a [B][S] matrix is a token of the vocabulary, naming the row ("input_ids[1]: …"). */
export function checkTokenIds(ids: number[][], vocabSize: number, what: string): void {
  ids.forEach((row, b) => checkIdRow(row, vocabSize, `${what}[${b}]`));
}

/** Checks label ids are in the vocabulary or -100. */
export function checkLabels(labels: number[][], vocabSize: number): void {
  labels.forEach((row, b) => checkIdRow(row, vocabSize, `labels[${b}]`, true));
}

export interface ExampleLosses {
  /** Summed token cross-entropy per example. */
  sum: number[];
  /** Non-ignored label tokens per example. */
  tokens: number[];
  /** sum / tokens (NaN for an example with no label tokens). */
  mean: number[];
}

/** Per-example sums/counts from per-token losses of one group ([B·T] values, row-major). */
export function exampleLosses(perToken: ArrayLike<number>, labels: number[][], offset = 0): ExampleLosses {
  const out: ExampleLosses = { sum: [], tokens: [], mean: [] };
  let r = offset;
  for (const row of labels) {
    // Summed in float64: torch's float32 row sums have no fixed order to reproduce anyway.
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
