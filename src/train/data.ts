/**
 * Training data: tokenised examples, length-bucketed batches in a seeded order with a resumable
 * cursor, and T5's span corruption for the base model's pretraining phase.
 *
 * The order of epoch e is a pure function of (seed, e), so a data position is just the cursor
 * {epoch, index}: resuming needs no saved RNG state and is exact.
 */
import { LorahubError } from '../errors.ts';
import { padBatch, type ScoreBatch } from '../models/shared/batch.ts';
import type { TextExample, TokenExample } from '../tasks/types.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { derivedRng, type Rng } from '../rng.ts';


export interface TruncateOptions {
  /** Longest input kept (tokens, eos included); longer inputs are cut and re-terminated with eos. */
  maxInputTokens: number;
  maxTargetTokens: number;
}

export const DEFAULT_TRUNCATION: Readonly<TruncateOptions> = Object.freeze({ maxInputTokens: 512, maxTargetTokens: 128 });

function truncate(ids: number[], max: number, eos: number): number[] {
  if (ids.length <= max) return ids;
  // As HF's tokenizer(truncation=True) for T5: keep the first max−1 tokens, then eos.
  return [...ids.slice(0, max - 1), eos];
}

/** Tokenised examples; both sequences end with eos (HF T5 tokenizers append it). */
export function encodeExamples(tok: Tokenizer, examples: readonly TextExample[], opts: TruncateOptions = DEFAULT_TRUNCATION): TokenExample[] {
  return examples.map((e) => ({
    inputIds: truncate(tok.encode(e.input), opts.maxInputTokens, tok.eosId),
    labels: truncate(tok.encode(e.target), opts.maxTargetTokens, tok.eosId),
  }));
}

/** A padded batch (models/batch.ts) with the counts training needs. */
export interface TrainBatch extends ScoreBatch {
  /** Non-ignored label tokens the summed loss is divided by (the batch's, or its whole batch's for a micro-batch). */
  labelTokens: number;
  /** Real (non-pad) input + label tokens: the throughput unit. */
  tokens: number;
}

export interface SpecialIds {
  padTokenId: number;
}

/**
 * Pads `examples` into one batch. `lossTokens` (default: this batch's label tokens) is what the
 * summed token loss is divided by — a micro-batch passes its whole batch's count, so the
 * micro-batch losses add up to the batch's mean token loss.
 */
export function collate(examples: readonly TokenExample[], ids: SpecialIds, lossTokens?: number): TrainBatch {
  if (examples.length === 0) throw new LorahubError('INTERNAL', 'collate: empty batch');
  let inputTokens = 0;
  let labelTokens = 0;
  for (const e of examples) {
    inputTokens += e.inputIds.length;
    labelTokens += e.labels.length;
  }
  return {
    ...padBatch(examples.map((e) => e.inputIds), examples.map((e) => e.labels), ids.padTokenId),
    labelTokens: lossTokens ?? labelTokens,
    tokens: inputTokens + labelTokens,
  };
}

/**
 * Micro-batch budget in padded (input + target) tokens: 512 up to the default preset (d_model 256,
 * 4+4 layers), less for larger models in proportion to d_model × layers. Two measured reasons:
 * - memory: a step keeps ≈0.9 MB of activations per padded token at the default preset, and the
 *   tfjs wasm backend fails ("memory access out of bounds") once its heap passes 2 GB;
 * - speed: under a gradient tape ops.ts `bmm` splits attention products with tf.split, whose wasm
 *   Slice copies the whole input per piece, so its cost grows with the square of batch × heads.
 *   At the default preset, 32 examples/step: 559 tok/s with 512-token micro-batches, 455 with
 *   1 024, 399 with 2 048 (with batched products under the tape, 623 whatever the size).
 */
export function defaultMicroBatchTokens(cfg: { dModel: number; numLayers: number; numDecoderLayers: number }): number {
  const scaled = Math.round((512 * 256 * 8) / (cfg.dModel * (cfg.numLayers + cfg.numDecoderLayers)));
  return Math.max(64, Math.min(512, scaled));
}

/** A batch as micro-batches under a token budget, for gradient accumulation. */
export interface MicroBatches {
  batches: TrainBatch[];
  /** Label tokens of the whole batch (each micro-batch's loss divisor). */
  labelTokens: number;
  tokens: number;
}

/**
 * Cuts `examples` (in order) into consecutive micro-batches whose padded size
 * count·(max input + max target) stays within `maxTokens` (at least one example each). The
 * micro-batch losses, each divided by the whole batch's label tokens, sum to the batch loss, so
 * accumulating their gradients gives the full batch's gradient with bounded memory.
 */
export function microBatches(examples: readonly TokenExample[], ids: SpecialIds, maxTokens: number): MicroBatches {
  const labelTokens = examples.reduce((s, e) => s + e.labels.length, 0);
  const groups: TokenExample[][] = [];
  let cur: TokenExample[] = [];
  let s = 0;
  let t = 0;
  for (const e of examples) {
    const s2 = Math.max(s, e.inputIds.length);
    const t2 = Math.max(t, e.labels.length);
    if (cur.length > 0 && (cur.length + 1) * (s2 + t2) > maxTokens) {
      groups.push(cur);
      cur = [];
      s = e.inputIds.length;
      t = e.labels.length;
    } else {
      s = s2;
      t = t2;
    }
    cur.push(e);
  }
  if (cur.length > 0) groups.push(cur);
  const batches = groups.map((g) => collate(g, ids, labelTokens));
  return { batches, labelTokens, tokens: batches.reduce((sum, b) => sum + b.tokens, 0) };
}

/** Where a batch stream stands: the next batch is batch `index` of epoch `epoch`. */
export interface Cursor {
  epoch: number;
  index: number;
}

/** Batches that sort examples of similar length together within a window before batching. */
export interface BucketOptions {
  batchSize: number;
  /** Batches per sorting window: larger pads less, but makes batch contents less random. */
  windowBatches: number;
}

/**
 * A seeded, length-bucketed batch order over `lengths.length` examples.
 *
 * Epoch e: shuffle all indices with rng(seed, e); cut the shuffled list into windows of
 * batchSize·windowBatches; sort each window by length; cut it into batches; shuffle the batches of
 * the epoch. Similar lengths share a batch (little padding) while every epoch still visits every
 * example once, in an order no two epochs share (the "bucket by sequence length" of tf.data and
 * fairseq, here without fixed bucket boundaries).
 */
export class BucketSampler {
  readonly size: number;
  private readonly lengths: readonly number[];
  private readonly seed: number;
  private readonly opts: BucketOptions;
  private planEpoch = -1;
  private planned: number[][] = [];

  constructor(lengths: readonly number[], seed: number, opts: BucketOptions) {
    if (lengths.length === 0) throw new LorahubError('BAD_ARGUMENT', 'no training examples');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new LorahubError('BAD_ARGUMENT', `batch size must be a positive integer, got ${opts.batchSize}`);
    this.size = lengths.length;
    this.lengths = lengths;
    this.seed = seed;
    this.opts = opts;
  }

  /** The batches (example indices) of one epoch. */
  epochPlan(epoch: number): number[][] {
    if (epoch === this.planEpoch) return this.planned;
    const rng = derivedRng(this.seed, 'epoch', epoch);
    const order = rng.shuffle(Array.from({ length: this.size }, (_, i) => i));
    const { batchSize } = this.opts;
    const window = batchSize * Math.max(1, this.opts.windowBatches);
    const batches: number[][] = [];
    for (let w = 0; w < order.length; w += window) {
      // Stable sort: equal lengths keep their shuffled order.
      const sorted = order.slice(w, w + window).sort((a, b) => this.lengths[a] - this.lengths[b]);
      for (let i = 0; i < sorted.length; i += batchSize) batches.push(sorted.slice(i, i + batchSize));
    }
    this.planned = rng.shuffle(batches);
    this.planEpoch = epoch;
    return this.planned;
  }

  /** The batch at `cursor` and the cursor after it. */
  next(cursor: Cursor): { indices: number[]; cursor: Cursor } {
    const plan = this.epochPlan(cursor.epoch);
    if (!Number.isInteger(cursor.index) || cursor.index < 0 || cursor.index >= plan.length) {
      throw new LorahubError('BAD_FILE', `data cursor ${JSON.stringify(cursor)} is outside epoch ${cursor.epoch} (${plan.length} batches)`);
    }
    const indices = plan[cursor.index];
    const after = cursor.index + 1 < plan.length ? { epoch: cursor.epoch, index: cursor.index + 1 } : { epoch: cursor.epoch + 1, index: 0 };
    return { indices, cursor: after };
  }
}

export function isCursor(v: unknown): v is Cursor {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Record<string, unknown>;
  return Number.isInteger(c.epoch) && Number.isInteger(c.index);
}

/** Batches `examples` by length in a seeded order; its cursor is what a checkpoint saves. */
export class ExampleStream {
  readonly examples: TokenExample[];
  private readonly sampler: BucketSampler;
  private position: Cursor = { epoch: 0, index: 0 };

  constructor(examples: TokenExample[], batchSize: number, seed: number, windowBatches = 16) {
    this.examples = examples;
    this.sampler = new BucketSampler(
      examples.map((e) => e.inputIds.length + e.labels.length),
      seed,
      { batchSize: Math.min(batchSize, examples.length), windowBatches },
    );
  }

  next(): TokenExample[] {
    const { indices, cursor } = this.sampler.next(this.position);
    this.position = cursor;
    return indices.map((i) => this.examples[i]);
  }

  get cursor(): Cursor {
    return { ...this.position };
  }

  set cursor(c: Cursor) {
    this.sampler.next(c); // validates
    this.position = { ...c };
  }
}

// ---------------------------------------------------------------------------------------------
// Span corruption (Raffel et al., JMLR 2020, §3.1.4; t5/data/preprocessors.py `span_corruption`,
// `random_spans_noise_mask`): drop ~noiseDensity of the tokens in spans of mean length
// meanSpanLength; the input keeps the rest with one sentinel per dropped span, the target lists
// each sentinel followed by the span it replaced.

export interface SpanCorruptionOptions {
  /** Fraction of tokens dropped (T5: 0.15). */
  noiseDensity: number;
  /**
   * Mean span length in tokens. T5 uses 3 (word pieces); ByT5 (Xue et al., TACL 2022, §3.1) 20
   * bytes for long documents. Our texts are single examples of ~40–150 bytes, so the default is 8:
   * one or two spans per example, each a word or two.
   */
  meanSpanLength: number;
}

export const DEFAULT_SPAN_CORRUPTION: Readonly<SpanCorruptionOptions> = Object.freeze({ noiseDensity: 0.15, meanSpanLength: 8 });

/** n items cut into k non-empty segments at uniformly drawn distinct cut points; returns the lengths. */
function randomSegmentation(n: number, k: number, rng: Rng): number[] {
  const cuts = rng
    .shuffle(Array.from({ length: n - 1 }, (_, i) => i + 1))
    .slice(0, k - 1)
    .sort((a, b) => a - b);
  const bounds = [0, ...cuts, n];
  return bounds.slice(1).map((b, i) => b - bounds[i]);
}

/**
 * Span-corrupts `ids` (no eos). `sentinel(i)` is the id of the i-th sentinel (ByT5 / T5:
 * <extra_id_i>, counted down from the top of the vocabulary). Texts shorter than 2 tokens are
 * returned whole as the input with an empty target span list.
 */
export function spanCorrupt(
  ids: readonly number[],
  rng: Rng,
  sentinel: (i: number) => number,
  eos: number,
  opts: SpanCorruptionOptions = DEFAULT_SPAN_CORRUPTION,
): TokenExample {
  const n = ids.length;
  if (n < 2) return { inputIds: [...ids, eos], labels: [eos] };
  const noise = Math.min(n - 1, Math.max(1, Math.round(n * opts.noiseDensity)));
  const spans = Math.min(noise, n - noise, Math.max(1, Math.round(noise / opts.meanSpanLength)));
  const noiseLens = randomSegmentation(noise, spans, rng);
  const keepLens = randomSegmentation(n - noise, spans, rng);
  const input: number[] = [];
  const target: number[] = [];
  let at = 0;
  // As T5: kept span first, then a noise span, alternating.
  for (let s = 0; s < spans; s++) {
    input.push(...ids.slice(at, at + keepLens[s]));
    at += keepLens[s];
    input.push(sentinel(s));
    target.push(sentinel(s), ...ids.slice(at, at + noiseLens[s]));
    at += noiseLens[s];
  }
  input.push(eos);
  target.push(eos);
  return { inputIds: input, labels: target };
}
