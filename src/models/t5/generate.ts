/**
 * Greedy generation, as transformers' `generate(num_beams=1, do_sample=False)` for T5: the
 * encoder runs once, cross-attention keys/values are computed once per block, and the decoder's
 * self-attention keys/values are cached step to step. Rows that have emitted eos are padded
 * with pad afterwards; generation stops when every row has finished or after maxNewTokens.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../../errors.ts';
import type { EncoderInput, KV, LoraDeltas, T5Model } from './model.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  lora?: LoraDeltas;
  /**
   * The error for a NaN/∞ logit (`what` names the step); the engine's names the model and engine.
   * Generation never continues past one: argMax would still pick a token.
   */
  nonFinite?: (what: string) => Error;
}

const nonFiniteDefault = (what: string): Error => new LorahubError('NUMERIC', `${what} is NaN/∞`);

/**
 * Returns, per example, the ids HF's generate returns (decoder start token first, eos-padded
 * rows filled with pad), all rows of equal length.
 */
export function generateGreedy(model: T5Model, input: EncoderInput, opts: GenerateOptions): number[][] {
  const cfg = model.config;
  const batch = input.inputIds.length;
  const enc = model.encode(input, opts.lora, 1);
  const cross = tf.tidy(() => model.crossKV(enc, opts.lora, 1, batch));
  const out: number[][] = input.inputIds.map(() => [cfg.decoderStartTokenId]);
  const done = new Array<boolean>(batch).fill(false);
  let cache: KV[] = [];
  try {
    for (let step = 0; step < opts.maxNewTokens && done.includes(false); step++) {
      const tokens = out.map((r) => r[r.length - 1]);
      const res = model.decodeStep(tokens, step, cache, cross, enc, opts.lora);
      for (const kv of cache) {
        kv.kT.dispose();
        kv.v.dispose();
      }
      cache = res.cache;
      const [next, bad] = tf.tidy(() => [tf.argMax(res.logits, -1), tf.any(tf.logicalNot(tf.isFinite(res.logits)))]);
      const ids = next.dataSync();
      const nonFinite = bad.dataSync()[0] !== 0;
      tf.dispose([next, bad, res.logits]);
      if (nonFinite) throw (opts.nonFinite ?? nonFiniteDefault)(`a logit of generation step ${step + 1}`);
      for (let b = 0; b < batch; b++) {
        const id = done[b] ? cfg.padTokenId : ids[b];
        out[b].push(id);
        if (id === cfg.eosTokenId) done[b] = true;
      }
    }
  } finally {
    for (const kv of [...cache, ...cross]) {
      kv.kT.dispose();
      kv.v.dispose();
    }
    enc.hidden.x.dispose();
    enc.maskBias.dispose();
  }
  return out;
}
