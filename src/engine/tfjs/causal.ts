/**
 * Decoder-only models (Llama, Mistral, Qwen2, GPT-2) on the tfjs engine: models/causal's forward
 * behind the seam, with the batch layout, checks and generation bookkeeping the ort engine uses
 * too (models/family.ts, models/causal/rows.ts). Adapters become low-rank deltas for one call and
 * are disposed after it; a stacked population is composed in JS, as for T5.
 */
import * as tf from '@tensorflow/tfjs';
import { composeStack } from '../../lora/compose.ts';
import type { LoraModule } from '../../lora/module.ts';
import { generateCausal } from '../../models/causal/generate.ts';
import { labelTokenLosses } from '../../models/causal/loss.ts';
import { CausalModel, type LoraDeltas } from '../../models/causal/model.ts';
import { causalTable, checkAdapters, checkRows, exampleSums, generationPrompts, seamRows } from '../../models/causal/rows.ts';
import { shiftedLabels, type CausalBatch, type ModelConfig } from '../../models/shared/family.ts';
import { checkModuleFitsModel } from '../../lora/fit.ts';
import type { CausalArch } from '../../models/index.ts';
import { disposeDeltas, groupDeltas, moduleDeltas } from '../../models/t5/deltas.ts';
import { isStacked, nonFiniteError, type EngineInfo, type EngineModel, type GenerateInput, type GenerateOptions, type Population, type ScoreBatch, type TokenLosses } from '../types.ts';

/** One delta set for one adapter (every row), grouped deltas for several (population scoring). */
function deltasFor(adapters: readonly Pick<LoraModule, 'name' | 'targets'>[]): LoraDeltas | undefined {
  if (adapters.length === 0) return undefined;
  return adapters.length === 1 ? moduleDeltas(adapters[0]) : groupDeltas(adapters);
}

export class TfjsCausalModel implements EngineModel {
  readonly dir: string;
  readonly arch: CausalArch;
  readonly info: EngineInfo;
  /** The wrapped forward (tfjs-only code — the world writer's teacher, benchmarks — uses it directly). */
  readonly model: CausalModel;

  constructor(model: CausalModel, info: EngineInfo) {
    this.model = model;
    this.dir = model.dir;
    this.arch = model.arch;
    this.info = info;
  }

  get config(): ModelConfig {
    return this.arch.config;
  }

  async tokenLosses(batch: ScoreBatch, population: Population = []): Promise<TokenLosses[]> {
    return this.scoreCausal(seamRows(batch, this.arch.config.padTokenId), population);
  }

  /**
   * Per-example token-loss sums and counts of causal rows in transformers' layout (prompt +
   * target, labels −100 on prompt and padding, unshifted; left or right padding with matching
   * position ids), as OrtModel.scoreCausal.
   */
  async scoreCausal(rows: CausalBatch, population: Population = []): Promise<TokenLosses[]> {
    checkRows(this.arch, rows, this.dir);
    const B = rows.inputIds.length;
    const groups = Math.max(1, isStacked(population) ? population.weights.length : population.length);
    const shifted = shiftedLabels(rows.labels);
    if (shifted.positions.length === 0) return exampleSums([], [], B, groups, true);
    checkAdapters(this.arch, population, this.dir);
    const adapters: readonly Pick<LoraModule, 'name' | 'targets'>[] = isStacked(population)
      ? population.weights.map((w, i) => ({ name: `candidate-${i}`, targets: composeStack(population.stack, w) }))
      : population;
    const deltas = deltasFor(adapters);
    try {
      const { nll, shared } = labelTokenLosses(this.model, rows, shifted, deltas, groups);
      const values = nll.dataSync();
      nll.dispose();
      return exampleSums(values, shifted.example, B, groups, shared);
    } finally {
      if (deltas) disposeDeltas(deltas);
    }
  }

  /** Logits [B·S, V] and final hidden states [B·S, d] of causal rows with one adapter (parity tests). */
  async causalLogits(rows: CausalBatch, adapter?: LoraModule): Promise<{ logits: Float32Array; hidden: Float32Array }> {
    const [, S] = checkRows(this.arch, rows, this.dir);
    if (adapter) checkModuleFitsModel(adapter, this.arch, this.dir);
    const deltas = adapter ? moduleDeltas(adapter) : undefined;
    try {
      const out = this.model.forward({ inputIds: rows.inputIds, positionIds: rows.positionIds, attentionMask: rows.attentionMask, causal: causalTable(S, S) }, deltas);
      const r = { logits: out.logits.dataSync() as Float32Array, hidden: out.hidden.dataSync() as Float32Array };
      tf.dispose([out.logits, out.hidden]);
      return r;
    } finally {
      if (deltas) disposeDeltas(deltas);
    }
  }

  async generate(input: GenerateInput, opts: GenerateOptions): Promise<number[][]> {
    const prompts = generationPrompts(this.arch, input, this.dir, opts.adapter);
    const deltas = opts.adapter ? moduleDeltas(opts.adapter) : undefined;
    try {
      return await generateCausal(this.model, prompts, opts.maxNewTokens, deltas, (what) => nonFiniteError(this, what));
    } finally {
      if (deltas) disposeDeltas(deltas);
    }
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}
