/**
 * Scoring and generation over lists of examples, in padded mini-batches, on any engine
 * (src/engine): this file builds and validates the batches and reads the results; the engine
 * runs the forward passes.
 */
import { padBatch } from '../adapt/objective.ts';
import { nonFiniteError, type EngineModel, type GenerateInput, type ScoreBatch, type TokenLosses } from '../engine/types.ts';
import { LorahubError } from '../errors.ts';
import type { LoraModule } from '../lora/module.ts';
import type { T5Config } from '../models/t5/config.ts';
import { checkLabels, stripGenerated } from '../models/t5/labels.ts';
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

/** The padded teacher-forced batches of `examples`, in order, each checked against the vocabulary. */
export function* scoreBatches(cfg: Pick<T5Config, 'padTokenId' | 'vocabSize'>, tok: Tokenizer, examples: ExampleIn[], batchSize = DEFAULT_BATCH): Generator<ScoreBatch> {
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
    yield batch;
  }
}

/** One batch's losses as per-example results. */
export function scoreResults(l: TokenLosses): ScoreResult[] {
  return l.sum.map((sum, i) => ({ loss: l.tokens[i] > 0 ? sum / l.tokens[i] : Number.NaN, tokens: l.tokens[i], sum }));
}

/**
 * Teacher-forced mean token cross-entropy per example (label -100 ignored). A NaN/∞ loss of an
 * example with label tokens is an error (NUMERIC), never a result: it is the model or the backend
 * failing, not a score.
 */
export async function scoreExamples(model: EngineModel, tok: Tokenizer, examples: ExampleIn[], adapter?: LoraModule, batchSize = DEFAULT_BATCH): Promise<ScoreResult[]> {
  const out: ScoreResult[] = [];
  for (const batch of scoreBatches(model.config, tok, examples, batchSize)) {
    const [l] = await model.tokenLosses(batch, adapter ? [adapter] : undefined);
    l.sum.forEach((sum, i) => {
      if (l.tokens[i] > 0 && !Number.isFinite(sum)) throw nonFiniteError(model, `the loss of example ${out.length + i + 1}`);
    });
    out.push(...scoreResults(l));
  }
  return out;
}

export interface GenerateResult {
  /** Generated ids after the decoder start token, up to and including eos. */
  outputIds: number[];
  text: string;
}

/** The padded encoder batches of `examples`, in order. */
export function* generateBatches(cfg: Pick<T5Config, 'padTokenId'>, tok: Tokenizer, examples: ExampleIn[], batchSize = DEFAULT_BATCH): Generator<GenerateInput> {
  for (let s = 0; s < examples.length; s += batchSize) {
    const { inputIds, attentionMask } = padBatch(examples.slice(s, s + batchSize).map((e, i) => inputIdsOf(e, tok, s + i)), [], cfg.padTokenId);
    yield { inputIds, attentionMask };
  }
}

/** Generated rows (decoder start first, eos-padded) as ids up to eos and their text. */
export function generateResults(rows: number[][], tok: Tokenizer, eosTokenId: number): GenerateResult[] {
  return rows.map((row) => {
    const outputIds = stripGenerated(row, eosTokenId);
    return { outputIds, text: tok.decode(outputIds) };
  });
}

/** Greedy generation per example. */
export async function generateExamples(
  model: EngineModel,
  tok: Tokenizer,
  examples: ExampleIn[],
  opts: { maxNewTokens: number; adapter?: LoraModule; batchSize?: number },
): Promise<GenerateResult[]> {
  const out: GenerateResult[] = [];
  for (const input of generateBatches(model.config, tok, examples, opts.batchSize)) {
    const rows = await model.generate(input, { maxNewTokens: opts.maxNewTokens, adapter: opts.adapter });
    out.push(...generateResults(rows, tok, model.config.eosTokenId));
  }
  return out;
}
