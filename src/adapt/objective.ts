/**
 * The LoRAHub objective: few-shot cross-entropy of base model + composed module, plus
 * α·mean|w| (sail-sg/lorahub algorithm.py: `default_get_loss` + `default_l1_regularization`).
 *
 * `scorePopulation` is a pure function of the weights: it hands the engine the module stack
 * (validated and harmonised once) and the population's weights; the engine composes each
 * candidate (pure, lora/compose.ts's rule and float32 order) and scores all of them in one pass,
 * each as a low-rank delta, never mutating the shared model — unlike the reference, which loads
 * each candidate's weights into one model — so candidates can be scored together or in workers.
 */
import type { EngineModel, ScoreBatch, TokenLosses } from '../engine/types.ts';
import { LorahubError } from '../errors.ts';
import { stackModules, type Harmonize, type ModuleStack } from '../lora/compose.ts';
import type { LoraModule } from '../lora/module.ts';
import { checkLabels, padBatch } from '../models/shared/batch.ts';
import { textLayout, tokenizeExamples } from '../eval/score.ts';
import type { ModelConfig } from '../models/index.ts';
import type { Example } from '../tasks/types.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

/** A tokenised few-shot set, padded to a common length (labels padded with -100). */
export type FewShotBatch = ScoreBatch;

/**
 * - 'mean-token' (default): mean token cross-entropy over the whole few-shot set.
 * - 'reference': exactly the reference — sum over batches of HF's batch-mean loss, divided by
 *   the number of examples (so with one batch of 5: batch-mean / 5).
 */
export type LossNormalization = 'mean-token' | 'reference';
export const LOSS_NORMALIZATIONS: readonly LossNormalization[] = ['mean-token', 'reference'];

export interface ObjectiveOptions {
  /** L1 weight (reference: 0.05). */
  alpha: number;
  normalization: LossNormalization;
  /** Examples per batch for 'reference' normalisation (reference default: all in one batch). */
  batchSize?: number;
  harmonize?: Harmonize;
}

export const DEFAULT_OBJECTIVE: ObjectiveOptions = Object.freeze({ alpha: 0.05, normalization: 'mean-token' as const });

/** α·Σ|wᵢ|/n (reference `default_l1_regularization`). */
export function l1Regularization(weights: number[], alpha: number): number {
  if (weights.length === 0) return 0;
  return (alpha * weights.reduce((s, w) => s + Math.abs(w), 0)) / weights.length;
}

/**
 * The few-shot set as one padded batch, as lorahub's `load_dataset` pads it: text is tokenised,
 * token ids are used as given (eval/score.ts's tokenizeExamples checks both). `model` supplies the
 * vocabulary and pad id (needed for ids without a tokenizer); default: the tokenizer's.
 */
export function buildFewShotBatch(tokenizer: Tokenizer, examples: Example[], model?: ModelConfig): FewShotBatch {
  if (examples.length === 0) throw new LorahubError('INTERNAL', 'few-shot set is empty');
  const ids = tokenizeExamples(examples, tokenizer, { vocabSize: model?.vocabSize ?? Number.MAX_SAFE_INTEGER, text: model && textLayout(model), targets: true });
  return padBatch(ids.map((e) => e.inputIds), ids.map((e) => e.labels), model?.padTokenId ?? tokenizer.padId);
}

export interface LossBreakdown {
  /** The few-shot loss under the chosen normalisation. */
  loss: number;
  /** α·mean|w|. */
  regularization: number;
  /** loss + regularization; +∞ when the loss is not finite. */
  objective: number;
}

/** Per-example losses → the normalised few-shot loss. */
export function normalizedLoss(sum: number[], tokens: number[], opts: ObjectiveOptions): number {
  const n = sum.length;
  if (opts.normalization === 'mean-token') {
    return sum.reduce((a, b) => a + b, 0) / tokens.reduce((a, b) => a + b, 0);
  }
  const bs = Math.min(opts.batchSize ?? n, n);
  let total = 0;
  for (let i = 0; i < n; i += bs) {
    const s = sum.slice(i, i + bs).reduce((a, b) => a + b, 0);
    const k = tokens.slice(i, i + bs).reduce((a, b) => a + b, 0);
    // HF's batch loss is a float32 tensor; the reference accumulates it in float32 too.
    total = Math.fround(total + Math.fround(s / k));
  }
  return total / n;
}

/** Scores LoRAHub candidates for one few-shot set against one model and module list. */
export class FewShotObjective {
  readonly model: EngineModel;
  readonly batch: FewShotBatch;
  readonly options: ObjectiveOptions;
  /** The modules, validated and harmonised once (lora/compose.ts): every candidate composes from it. */
  readonly stack: ModuleStack;

  /** `modules`: the module list, or a stack already built from it (workers receive a shared one). */
  constructor(model: EngineModel, modules: LoraModule[] | ModuleStack, batch: FewShotBatch, options: Partial<ObjectiveOptions> = {}) {
    this.model = model;
    this.batch = batch;
    this.options = { ...DEFAULT_OBJECTIVE, ...options };
    checkLabels(batch.labels, model.config.vocabSize);
    this.stack = Array.isArray(modules) ? stackModules(modules, this.options.harmonize) : modules;
  }

  /** Per-example token-loss sums and counts for each candidate (one engine call for all). */
  async exampleLosses(population: number[][]): Promise<TokenLosses[]> {
    if (population.length === 0) return [];
    return this.model.tokenLosses(this.batch, { stack: this.stack, weights: population });
  }

  /** Objective values (lower is better) for each weight vector; a NaN/∞ loss scores +∞. */
  async scorePopulation(population: number[][]): Promise<LossBreakdown[]> {
    return (await this.exampleLosses(population)).map(({ sum, tokens }, i) => {
      const loss = normalizedLoss(sum, tokens, this.options);
      const regularization = l1Regularization(population[i], this.options.alpha);
      return { loss, regularization, objective: Number.isFinite(loss) ? loss + regularization : Number.POSITIVE_INFINITY };
    });
  }

  async score(weights: number[]): Promise<LossBreakdown> {
    return (await this.scorePopulation([weights]))[0];
  }
}
