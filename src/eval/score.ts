/**
 * Scoring and generation over lists of examples, in padded mini-batches, on any engine
 * (src/engine): this file turns examples into checked token ids, builds the batches and reads the
 * results; the engine runs the forward passes.
 */
import { nonFiniteError, type EngineModel, type GenerateInput, type ScoreBatch, type TokenLosses } from '../engine/types.ts';
import { LorahubError } from '../errors.ts';
import type { LoraModule } from '../lora/module.ts';
import type { T5Config } from '../models/t5/config.ts';
import { checkIdRow, padBatch } from '../models/shared/batch.ts';
import { stripGenerated } from '../models/t5/labels.ts';
import { familyOf, type BatchLayout, type ModelConfig } from '../models/index.ts';
import type { Example, TokenExample } from '../tasks/types.ts';
import { modelMaxLength, tokenizerIfAny } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

/** Examples per forward pass: large enough to use the matmul fast path, small enough for memory. */
export const DEFAULT_BATCH = 16;

/**
 * The longest input or target (tokens) a run takes when the model folder states no limit (no
 * tokenizer_config.json `model_max_length`, or transformers' "none"). T5's relative position
 * buckets put no hard limit on length, but attention is quadratic: at 4096 tokens one example's
 * attention scores take 64 MiB per head and layer in float32, and a CPU forward takes minutes
 * (the reference pads to 2048; FLAN-T5 was trained on 512). A longer line is refused up front
 * instead of running out of memory minutes later; the CLI's `--max-length` raises the limit.
 */
export const DEFAULT_MAX_LENGTH = 4096;

/** The longest input or target a run accepts, and where that number comes from (for the error). */
export interface LengthLimit {
  tokens: number;
  from: string;
}

const DEFAULT_LIMIT: LengthLimit = Object.freeze({ tokens: DEFAULT_MAX_LENGTH, from: "lorahub's default for T5" });

/** The tokenizer config's `model_max_length`, else DEFAULT_MAX_LENGTH. */
export function lengthLimit(modelDir: string): LengthLimit {
  const tokens = modelMaxLength(modelDir);
  return tokens === undefined ? DEFAULT_LIMIT : { tokens, from: 'model_max_length in tokenizer_config.json' };
}


/**
 * How a model reads text (its family's batch layout, models/family.ts):
 * - seq2seq (T5): input and target are each encoded with the tokenizer's own special tokens and
 *   end with eos, as HF T5 tokenizers do;
 * - causal (Llama, Mistral, Qwen2, GPT-2): the prompt is the input encoded as the tokenizer's
 *   post-processor has it (a Llama tokenizer adds bos, GPT-2's nothing), the target follows it
 *   encoded without special tokens — after one space unless the input ends with, or the target
 *   starts with, whitespace (lm-evaluation-harness's target delimiter), so a BPE sees the target
 *   word as it sees it mid-text — and ends with the model's eos (config.json), like the fixtures.
 */
export interface TextLayout {
  layout: BatchLayout;
  eosTokenId: number;
}

/** The text layout of a model, from its config.json (model_type picks the family). */
export function textLayout(cfg: Pick<ModelConfig, 'raw' | 'eosTokenId'>): TextLayout {
  return { layout: familyOf(cfg.raw).layout, eosTokenId: cfg.eosTokenId };
}

function encodeInput(tok: Tokenizer, text: string, layout: TextLayout | undefined): number[] {
  return layout?.layout === 'causal' ? tok.encodeRaw(text, true) : tok.encode(text);
}

function encodeTarget(tok: Tokenizer, input: string | undefined, target: string, layout: TextLayout | undefined): number[] {
  if (layout?.layout !== 'causal') return tok.encode(target);
  const joined = input === undefined || /\s$/.test(input) || /^\s/.test(target) ? target : ` ${target}`;
  return [...tok.encodeRaw(joined, false), layout.eosTokenId];
}

export interface TokenizeOptions {
  vocabSize: number;
  /** How text becomes ids (default: seq2seq, T5's). */
  text?: TextLayout;
  /** Default: DEFAULT_MAX_LENGTH. */
  limit?: LengthLimit;
  /** Tokenise the targets too (scoring); generation reads the inputs only. */
  targets: boolean;
}

function checkLength(where: string, side: 'input' | 'target', n: number, limit: LengthLimit): void {
  if (n === 0) throw new LorahubError('BAD_FILE', `${where}: empty ${side}`);
  if (n > limit.tokens) {
    throw new LorahubError('BAD_FILE', `${where}: ${side} is ${n} tokens, over the limit of ${limit.tokens} (${limit.from})`);
  }
}

/**
 * Every example as token ids, checked before any forward pass so that a bad example fails the run
 * at once and names where it came from: ids inside the vocabulary (labels may also be -100),
 * lengths within the limit. Text is tokenised with `tok`; a LazyTokenizer loads only now, and only
 * when some example is text.
 */
export function tokenizeExamples(examples: Example[], tok: Tokenizer, opts: TokenizeOptions): TokenExample[] {
  const limit = opts.limit ?? DEFAULT_LIMIT;
  return examples.map((e, i) => {
    const where = e.source ?? `example ${i + 1}`;
    const text = (s: string | undefined, side: 'input' | 'target'): string => {
      if (s === undefined) throw new LorahubError('BAD_FILE', `${where}: no ${side}`);
      return s;
    };
    const inputIds = e.inputIds ?? encodeInput(tok, text(e.input, 'input'), opts.text);
    checkIdRow(inputIds, opts.vocabSize, `${where}: input_ids`);
    checkLength(where, 'input', inputIds.length, limit);
    if (!opts.targets) return { inputIds, labels: [] };
    const labels = e.labels ?? encodeTarget(tok, e.input, text(e.target, 'target'), opts.text);
    checkIdRow(labels, opts.vocabSize, `${where}: labels`, true);
    checkLength(where, 'target', labels.length, limit);
    return { inputIds, labels };
  });
}

export interface ScoreResult {
  /** Mean token cross-entropy (NaN when the example has no label tokens). */
  loss: number;
  tokens: number;
  sum: number;
}

/** The padded teacher-forced batches of `examples`, in order. */
export function* scoreBatches(cfg: Pick<T5Config, 'padTokenId'>, examples: TokenExample[], batchSize = DEFAULT_BATCH): Generator<ScoreBatch> {
  for (let s = 0; s < examples.length; s += batchSize) {
    const chunk = examples.slice(s, s + batchSize);
    yield padBatch(chunk.map((e) => e.inputIds), chunk.map((e) => e.labels), cfg.padTokenId);
  }
}

/** One batch's losses as per-example results. */
export function scoreResults(l: TokenLosses): ScoreResult[] {
  return l.sum.map((sum, i) => ({ loss: l.tokens[i] > 0 ? sum / l.tokens[i] : Number.NaN, tokens: l.tokens[i], sum }));
}

export interface RunOptions {
  adapter?: LoraModule;
  batchSize?: number;
  /** The longest input or target; default DEFAULT_MAX_LENGTH. */
  limit?: LengthLimit;
}

/**
 * Teacher-forced mean token cross-entropy per example (label -100 ignored). A NaN/∞ loss of an
 * example with label tokens is an error (NUMERIC), never a result: it is the model or the backend
 * failing, not a score.
 */
export async function scoreExamples(model: EngineModel, tok: Tokenizer, examples: Example[], opts: RunOptions = {}): Promise<ScoreResult[]> {
  const ids = tokenizeExamples(examples, tok, { vocabSize: model.config.vocabSize, text: textLayout(model.config), limit: opts.limit, targets: true });
  const out: ScoreResult[] = [];
  for (const batch of scoreBatches(model.config, ids, opts.batchSize)) {
    const [l] = await model.tokenLosses(batch, opts.adapter ? [opts.adapter] : undefined);
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
  /** Their text; absent when the model folder has no tokenizer (token-id input). */
  text?: string;
}

/** The padded encoder batches of `examples`, in order. */
export function* generateBatches(cfg: Pick<T5Config, 'padTokenId'>, examples: TokenExample[], batchSize = DEFAULT_BATCH): Generator<GenerateInput> {
  for (let s = 0; s < examples.length; s += batchSize) {
    const { inputIds, attentionMask } = padBatch(examples.slice(s, s + batchSize).map((e) => e.inputIds), [], cfg.padTokenId);
    yield { inputIds, attentionMask };
  }
}

/** Generated rows (decoder start first, eos-padded) as ids up to eos, and their text when there is a tokenizer. */
export function generateResults(rows: number[][], tok: Tokenizer | undefined, eosTokenId: number): GenerateResult[] {
  return rows.map((row) => {
    const outputIds = stripGenerated(row, eosTokenId);
    return tok ? { outputIds, text: tok.decode(outputIds) } : { outputIds };
  });
}

/** Greedy generation per example. */
export async function generateExamples(
  model: EngineModel,
  tok: Tokenizer,
  examples: Example[],
  opts: RunOptions & { maxNewTokens: number },
): Promise<GenerateResult[]> {
  const ids = tokenizeExamples(examples, tok, { vocabSize: model.config.vocabSize, text: textLayout(model.config), limit: opts.limit, targets: false });
  const decoder = tokenizerIfAny(tok);
  const out: GenerateResult[] = [];
  for (const input of generateBatches(model.config, ids, opts.batchSize)) {
    const rows = await model.generate(input, { maxNewTokens: opts.maxNewTokens, adapter: opts.adapter });
    out.push(...generateResults(rows, decoder, model.config.eosTokenId));
  }
  return out;
}
