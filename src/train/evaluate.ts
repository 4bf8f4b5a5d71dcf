/**
 * End-of-training evaluation: exact match of greedy answers (lorahub's normalisation,
 * eval/exact-match.ts) and teacher-forced mean token loss, synchronous on the T5Model being
 * trained (training is tfjs by design: autodiff; it evaluates between steps and holds its
 * adapters as deltas). Batching and validation are eval/score.ts's, so results match the
 * engine-generic versions.
 */
import { answerAccuracy, maxNewTokensFor } from '../eval/evaluate.ts';
import type { Accuracy } from '../eval/exact-match.ts';
import { t5TokenLosses } from '../engine/tfjs/index.ts';
import { generateBatches, generateResults, scoreBatches, scoreResults, tokenizeExamples, DEFAULT_BATCH, type GenerateResult, type ScoreResult } from '../eval/score.ts';
import { generateGreedy } from '../models/t5/generate.ts';
import type { LoraDeltas, T5Model } from '../models/t5/model.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import type { Example, TextExample } from '../tasks/types.ts';

export interface EvalOptions {
  lora?: LoraDeltas;
  batchSize?: number;
  /** Default: eval/evaluate.ts's maxNewTokensFor (the longest target + 2, at least 8). */
  maxNewTokens?: number;
}

export function exactMatchAccuracy(model: T5Model, tok: Tokenizer, examples: readonly TextExample[], opts: EvalOptions = {}): Accuracy {
  const gen = generateT5(model, tok, [...examples], {
    maxNewTokens: opts.maxNewTokens ?? maxNewTokensFor(tok, [...examples]),
    lora: opts.lora,
    batchSize: opts.batchSize,
  });
  return answerAccuracy(tok, model.config, examples, gen.map((g) => g.outputIds));
}

/** Mean token cross-entropy over all label tokens of `examples`. */
export function meanTokenLoss(model: T5Model, tok: Tokenizer, examples: readonly TextExample[], opts: EvalOptions = {}): number {
  const r = scoreT5(model, tok, [...examples], opts.lora, opts.batchSize);
  const sum = r.reduce((s, x) => s + x.sum, 0);
  const n = r.reduce((s, x) => s + x.tokens, 0);
  return sum / n;
}

/** The first `n` examples (evaluation subsets are prefixes: the splits are already shuffled). */
export function subset<T>(xs: readonly T[], n: number | undefined): T[] {
  return n === undefined ? xs.slice() : xs.slice(0, Math.max(0, n));
}

/** Teacher-forced mean token cross-entropy per example (label -100 ignored). */
function scoreT5(model: T5Model, tok: Tokenizer, examples: Example[], lora?: LoraDeltas, batchSize = DEFAULT_BATCH): ScoreResult[] {
  const ids = tokenizeExamples(examples, tok, { vocabSize: model.config.vocabSize, targets: true });
  const out: ScoreResult[] = [];
  for (const batch of scoreBatches(model.config, ids, batchSize)) out.push(...scoreResults(t5TokenLosses(model, batch, lora)[0]));
  return out;
}

/** Greedy generation per example. */
function generateT5(
  model: T5Model,
  tok: Tokenizer,
  examples: Example[],
  opts: { maxNewTokens: number; lora?: LoraDeltas; batchSize?: number },
): GenerateResult[] {
  const ids = tokenizeExamples(examples, tok, { vocabSize: model.config.vocabSize, targets: false });
  const out: GenerateResult[] = [];
  for (const input of generateBatches(model.config, ids, opts.batchSize)) {
    const rows = generateGreedy(model, input, { maxNewTokens: opts.maxNewTokens, lora: opts.lora });
    out.push(...generateResults(rows, tok, model.config.eosTokenId));
  }
  return out;
}
