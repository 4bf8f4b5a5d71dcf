/**
 * Synchronous scoring and generation on a T5Model, for the trainers: training is tfjs by design
 * (autodiff), evaluates between steps on the model it trains, and holds its adapters as deltas.
 * Batching and validation are eval/score.ts's, so results match the engine-generic versions.
 */
import { generateBatches, generateResults, scoreBatches, scoreResults, tokenizeExamples, DEFAULT_BATCH, type GenerateResult, type ScoreResult } from '../../eval/score.ts';
import { generateGreedy } from '../../models/t5/generate.ts';
import type { LoraDeltas, T5Model } from '../../models/t5/model.ts';
import type { Example } from '../../tasks/types.ts';
import type { Tokenizer } from '../../tokenizers/types.ts';
import { t5TokenLosses } from './index.ts';

/** Teacher-forced mean token cross-entropy per example (label -100 ignored). */
export function scoreExamples(model: T5Model, tok: Tokenizer, examples: Example[], lora?: LoraDeltas, batchSize = DEFAULT_BATCH): ScoreResult[] {
  const ids = tokenizeExamples(examples, tok, { vocabSize: model.config.vocabSize, targets: true });
  const out: ScoreResult[] = [];
  for (const batch of scoreBatches(model.config, ids, batchSize)) out.push(...scoreResults(t5TokenLosses(model, batch, lora)[0]));
  return out;
}

/** Greedy generation per example. */
export function generateExamples(
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
