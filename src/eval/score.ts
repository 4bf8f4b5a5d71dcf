/**
 * Scoring and generation over lists of examples, in padded mini-batches.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../errors.ts';
import { generateGreedy, stripGenerated } from '../models/t5/generate.ts';
import { padBatch } from '../adapt/objective.ts';
import { checkLabels, exampleLosses, shiftRight, tokenCrossEntropy } from '../models/t5/loss.ts';
import type { LoraDeltas, T5Model } from '../models/t5/model.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

export interface ExampleIn {
  input?: string;
  target?: string;
  inputIds?: number[];
  labels?: number[];
}

/** Examples per forward pass: large enough to use the matmul fast path, small enough for memory. */
export const DEFAULT_BATCH = 16;

function inputIdsOf(e: ExampleIn, tok: Tokenizer, i: number): number[] {
  if (e.inputIds) {
    if (e.inputIds.length === 0) throw new LorahubError('BAD_ARGUMENT', `example ${i + 1}: empty input_ids`);
    return e.inputIds;
  }
  if (e.input === undefined) throw new LorahubError('BAD_ARGUMENT', `example ${i + 1}: no input`);
  return tok.encode(e.input);
}

function labelsOf(e: ExampleIn, tok: Tokenizer, i: number): number[] {
  if (e.labels) return e.labels;
  if (e.target === undefined) throw new LorahubError('BAD_ARGUMENT', `example ${i + 1}: no target`);
  return tok.encode(e.target);
}

export interface ScoreResult {
  /** Mean token cross-entropy (NaN when the example has no label tokens). */
  loss: number;
  tokens: number;
  sum: number;
}

/** Teacher-forced mean token cross-entropy per example (label -100 ignored). */
export function scoreExamples(model: T5Model, tok: Tokenizer, examples: ExampleIn[], lora?: LoraDeltas, batchSize = DEFAULT_BATCH): ScoreResult[] {
  const cfg = model.config;
  const out: ScoreResult[] = [];
  for (let s = 0; s < examples.length; s += batchSize) {
    const chunk = examples.slice(s, s + batchSize);
    const batch = padBatch(
      chunk.map((e, i) => inputIdsOf(e, tok, s + i)),
      chunk.map((e, i) => labelsOf(e, tok, s + i)),
      cfg.padTokenId,
    );
    try {
      checkLabels(batch.labels, cfg.vocabSize);
    } catch (err) {
      throw new LorahubError('BAD_TOKEN', `examples ${s + 1}–${s + chunk.length}: ${(err as Error).message}`, { cause: err });
    }
    const dec = shiftRight(batch.labels, cfg.decoderStartTokenId, cfg.padTokenId);
    const perToken = tf.tidy(() => {
      const r = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask }, dec, lora);
      return tokenCrossEntropy(r.logits, batch.labels.flat());
    });
    const l = exampleLosses(perToken.dataSync(), batch.labels);
    perToken.dispose();
    l.sum.forEach((sum, i) => out.push({ loss: l.mean[i], tokens: l.tokens[i], sum }));
  }
  return out;
}

export interface GenerateResult {
  /** Generated ids after the decoder start token, up to and including eos. */
  outputIds: number[];
  text: string;
}

/** Greedy generation per example. */
export function generateExamples(
  model: T5Model,
  tok: Tokenizer,
  examples: ExampleIn[],
  opts: { maxNewTokens: number; lora?: LoraDeltas; batchSize?: number },
): GenerateResult[] {
  const cfg = model.config;
  const bs = opts.batchSize ?? DEFAULT_BATCH;
  const out: GenerateResult[] = [];
  for (let s = 0; s < examples.length; s += bs) {
    const { inputIds, attentionMask } = padBatch(examples.slice(s, s + bs).map((e, i) => inputIdsOf(e, tok, s + i)), [], cfg.padTokenId);
    const gen = generateGreedy(model, { inputIds, attentionMask }, { maxNewTokens: opts.maxNewTokens, lora: opts.lora });
    for (const row of gen) {
      const outputIds = stripGenerated(row, cfg.eosTokenId);
      out.push({ outputIds, text: tok.decode(outputIds) });
    }
  }
  return out;
}
