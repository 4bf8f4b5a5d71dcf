/**
 * End-of-training evaluation: exact match of greedy answers (lorahub's normalisation,
 * eval/exact-match.ts) and teacher-forced mean token loss.
 */
import { answerAccuracy, maxNewTokensFor } from '../eval/evaluate.ts';
import type { Accuracy } from '../eval/exact-match.ts';
import { generateExamples, scoreExamples } from '../engine/tfjs/eval.ts';
import type { LoraDeltas, T5Model } from '../models/t5/model.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import type { TextExample } from '../tasks/types.ts';

export interface EvalOptions {
  lora?: LoraDeltas;
  batchSize?: number;
  /** Default: eval/evaluate.ts's maxNewTokensFor (the longest target + 2, at least 8). */
  maxNewTokens?: number;
}

export function exactMatchAccuracy(model: T5Model, tok: Tokenizer, examples: readonly TextExample[], opts: EvalOptions = {}): Accuracy {
  const gen = generateExamples(model, tok, [...examples], {
    maxNewTokens: opts.maxNewTokens ?? maxNewTokensFor(tok, [...examples]),
    lora: opts.lora,
    batchSize: opts.batchSize,
  });
  return answerAccuracy(tok, model.config, examples, gen.map((g) => g.outputIds));
}

/** Mean token cross-entropy over all label tokens of `examples`. */
export function meanTokenLoss(model: T5Model, tok: Tokenizer, examples: readonly TextExample[], opts: EvalOptions = {}): number {
  const r = scoreExamples(model, tok, [...examples], opts.lora, opts.batchSize);
  const sum = r.reduce((s, x) => s + x.sum, 0);
  const n = r.reduce((s, x) => s + x.tokens, 0);
  return sum / n;
}

/** The first `n` examples (evaluation subsets are prefixes: the splits are already shuffled). */
export function subset<T>(xs: readonly T[], n: number | undefined): T[] {
  return n === undefined ? xs.slice() : xs.slice(0, Math.max(0, n));
}
