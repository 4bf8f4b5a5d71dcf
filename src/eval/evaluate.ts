/**
 * Exact-match evaluation of a model (+ optional adapter) on examples: greedy generation, then
 * lorahub's normalisation (exact-match.ts).
 */
import type { EngineModel } from '../engine/types.ts';
import { LorahubError } from '../errors.ts';
import type { LoraModule } from '../lora/module.ts';
import type { T5Config } from '../models/t5/config.ts';
import { IGNORE_INDEX } from '../models/shared/batch.ts';
import type { Example } from '../tasks/types.ts';
import { requireTokenizer, tokenizerIfAny } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { accuracy, type Accuracy } from './exact-match.ts';
import { generateExamples, type LengthLimit } from './score.ts';

export interface EvalResult extends Accuracy {
  predictions: string[];
}

function answerOf(e: Example, i: number): { target: string } | { labels: number[] } {
  if (e.labels) return { labels: e.labels.filter((id) => id !== IGNORE_INDEX) };
  if (e.target !== undefined) return { target: e.target };
  throw new LorahubError('BAD_FILE', `${e.source ?? `example ${i + 1}`}: no target to compare with`);
}

/** Tokens to generate: the longest target (eos included) plus slack, at least 8. */
export function maxNewTokensFor(tok: Tokenizer, examples: Example[]): number {
  return Math.max(8, ...examples.map((e, i) => {
    const a = answerOf(e, i);
    return ('labels' in a ? a.labels.length : tok.encode(a.target).length) + 2;
  }));
}

/**
 * Exact match of generated ids against each example's answer: as text, with lorahub's
 * normalisation, whenever the model has a tokenizer (a text target needs one); labels of a folder
 * without a tokenizer are compared as token ids, without eos and pad (what decoding skips too).
 */
export function answerAccuracy(tok: Tokenizer, cfg: Pick<T5Config, 'eosTokenId' | 'padTokenId'>, examples: readonly Example[], outputs: number[][]): EvalResult {
  const decoder = tokenizerIfAny(tok);
  const idText = (ids: number[]) => ids.filter((id) => id !== cfg.eosTokenId && id !== cfg.padTokenId).join(' ');
  const preds: string[] = [];
  const targets: string[] = [];
  examples.forEach((e, i) => {
    const a = answerOf(e, i);
    if ('target' in a) {
      preds.push(tok.decode(outputs[i]));
      targets.push(a.target);
    } else if (decoder) {
      preds.push(decoder.decode(outputs[i]));
      targets.push(decoder.decode(a.labels));
    } else {
      // Space-separated ids: the normalisation (strip, lower-case, drop ".") leaves them as they are.
      preds.push(idText(outputs[i]));
      targets.push(idText(a.labels));
    }
  });
  return { ...accuracy(preds, targets), predictions: preds };
}

export interface EvalOptions {
  /** Default: maxNewTokensFor(examples). */
  maxNewTokens?: number;
  /** The longest input; default DEFAULT_MAX_LENGTH. */
  limit?: LengthLimit;
}

export async function evaluateExactMatch(model: EngineModel, tok: Tokenizer, examples: Example[], module?: LoraModule, opts: EvalOptions = {}): Promise<EvalResult> {
  // Every example has an answer, and a text answer a tokenizer, before anything is generated.
  if (examples.map(answerOf).some((a) => 'target' in a)) requireTokenizer(tok);
  const gen = await generateExamples(model, tok, examples, { maxNewTokens: opts.maxNewTokens ?? maxNewTokensFor(tok, examples), adapter: module, limit: opts.limit });
  return answerAccuracy(tok, model.config, examples, gen.map((g) => g.outputIds));
}
