/**
 * Exact-match evaluation of a model (+ optional adapter) on examples: greedy generation, then
 * lorahub's normalisation (exact-match.ts).
 */
import type { EngineModel } from '../engine/types.ts';
import type { LoraModule } from '../lora/module.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { accuracy, type Accuracy } from './exact-match.ts';
import { generateExamples } from './score.ts';

export interface EvalExample {
  input: string;
  target: string;
}

export interface EvalResult extends Accuracy {
  predictions: string[];
}

/** Tokens to generate: the longest target plus eos and slack, at least 8. */
export function maxNewTokensFor(tok: Tokenizer, examples: EvalExample[]): number {
  return Math.max(8, ...examples.map((e) => tok.encode(e.target).length + 2));
}

export async function evaluateExactMatch(model: EngineModel, tok: Tokenizer, examples: EvalExample[], module?: LoraModule, maxNewTokens?: number): Promise<EvalResult> {
  const gen = await generateExamples(model, tok, examples, { maxNewTokens: maxNewTokens ?? maxNewTokensFor(tok, examples), adapter: module });
  const preds = gen.map((p) => p.text);
  return { ...accuracy(preds, examples.map((e) => e.target)), predictions: preds };
}
