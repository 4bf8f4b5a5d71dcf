/**
 * T5's (seq2seq) side of HF's label conventions: the decoder input built from the labels, and the
 * generated ids after the decoder start token. The family-independent batch code is ../batch.ts.
 */
import { IGNORE_INDEX } from '../shared/batch.ts';

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
