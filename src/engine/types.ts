/**
 * The engine seam: everything above it (the ADAPT objective, score, eval, generate, compose,
 * scripts) runs forward passes through these few calls and never imports a tensor library.
 *
 *   engine/tfjs — @tensorflow/tfjs (wasm, or tfjs-node when installed); also the trainers' engine
 *   engine/ort  — onnxruntime-node, graphs built in TypeScript from the HF config (the default)
 *
 * Both take the same padded batches and plain LoraModules (PEFT layout, no tensors), so a model
 * family's layout of inputs (T5's shifted decoder inputs; a causal LM's prompt + target) stays
 * below the seam too.
 */
import { LorahubError, opt } from '../errors.ts';
import type { ModuleStack } from '../lora/compose.ts';
import type { LoraModule } from '../lora/module.ts';
import type { ModelConfig } from '../models/shared/family.ts';

export type EngineName = 'ort' | 'tfjs';
export const ENGINE_NAMES: readonly EngineName[] = ['ort', 'tfjs'];

export type DeviceName = 'cpu' | 'cuda';
export const DEVICE_NAMES: readonly DeviceName[] = ['cpu', 'cuda'];

/** What a user asked for (CLI flags / env); every field optional. */
export interface EngineOptions {
  /** 'ort' | 'tfjs'; default: LORAHUB_ENGINE, else ort when it loads, else tfjs. */
  engine?: string;
  /** 'cpu' | 'cuda'; default: LORAHUB_DEVICE, else cpu. */
  device?: string;
  /** Intra-op threads (ort) for one model; default: all cores. */
  threads?: number;
  /** tfjs backend (node-gpu | node | wasm | cpu): the tfjs engine only, which it then picks by default. */
  backend?: string;
}

/** What actually runs, recorded in --verbose, report.json and --json results. */
export interface EngineInfo {
  engine: EngineName;
  device: DeviceName;
  /** The package (and backend / execution provider) doing the work, e.g. "onnxruntime-node 1.30.0 (CPUExecutionProvider)". */
  provider: string;
  /** Threads one forward pass may use. */
  threads: number;
  /** Why the default fell back to tfjs, when it did. */
  fallback?: string;
}

/**
 * A padded teacher-forced batch: encoder ids and mask [B][S] (pad 0-masked), labels [B][T]
 * (−100 on ignored positions). The engine derives the decoder inputs (T5: `_shift_right`; a
 * causal LM reads each prompt followed by its target, models/family.ts `causalRows`).
 */
import type { ScoreBatch } from '../models/shared/batch.ts';

export type { ScoreBatch };

/** One candidate's per-example token cross-entropy sums and counts of non-ignored labels. */
export interface TokenLosses {
  sum: number[];
  tokens: number[];
}

/**
 * A population given as composition weights over one module stack (ADAPT's candidates): the
 * engine composes A = Σ wᵢAᵢ, B = Σ wᵢBᵢ itself (ort: inside the graph, one product for the
 * whole population; tfjs: lora/compose.ts in JS).
 */
export interface StackedPopulation {
  stack: ModuleStack;
  weights: readonly (readonly number[])[];
}

/** One LoRA module per candidate, or a stacked population. */
export type Population = readonly LoraModule[] | StackedPopulation;

export function isStacked(p: Population): p is StackedPopulation {
  return !Array.isArray(p);
}

export interface GenerateInput {
  inputIds: number[][];
  attentionMask: number[][];
}

export interface GenerateOptions {
  maxNewTokens: number;
  adapter?: LoraModule;
}

/** A base model loaded by an engine. */
export interface EngineModel {
  readonly dir: string;
  /** The family's typed config (T5Config, LlamaConfig, …); above the seam only these fields are read. */
  readonly config: ModelConfig;
  readonly info: EngineInfo;
  /**
   * Per-(candidate, example) token-loss sums and counts. `population`: one LoRA module per
   * candidate, or composition weights over a module stack (population scoring: all candidates in
   * one pass, each with its own low-rank delta, base weights never rewritten); empty or undefined
   * scores the base model alone (one result). Modules must share targets and ranks (true for
   * compositions of one module list).
   */
  tokenLosses(batch: ScoreBatch, population?: Population): Promise<TokenLosses[]>;
  /**
   * Greedy generation, as transformers' `generate(num_beams=1, do_sample=False)`: per example the
   * decoder start token first (a causal LM: the prompt's last token, the one generation continues
   * from), then the generated ids; rows that emitted eos are padded with pad; stops when every
   * row has finished or after maxNewTokens.
   */
  generate(input: GenerateInput, opts: GenerateOptions): Promise<number[][]>;
  dispose(): Promise<void>;
}

/**
 * The one error for a NaN/∞ forward result of a model (score, generate, eval, the base objective
 * of compose): a checkpoint with NaN/∞ weights and a backend that ran out of memory mid-pass
 * (tfjs wasm, CUDA) both look like this, and the other engine tells the two apart.
 */
export function nonFiniteError(model: { dir: string; info: EngineInfo }, what: string, cause?: unknown): LorahubError {
  const { engine, device } = model.info;
  const other = engine === 'ort' ? 'tfjs' : 'ort';
  return new LorahubError(
    'NUMERIC',
    `${model.dir}: ${what} is NaN/∞ on the ${engine} engine (${device}): the checkpoint may hold NaN/∞ weights or the backend ran out of memory; try ${opt('engine')} ${other}`,
    cause === undefined ? undefined : { cause },
  );
}

export interface Engine {
  readonly info: EngineInfo;
  /** Loads an HF model folder (config.json + model.safetensors). */
  load(dir: string): Promise<EngineModel>;
  /**
   * This engine's own rate (GFLOP/s) for a plain 2D product [m, k]·[k, n], the median of `reps`
   * (benchmarks compare the forward against it).
   */
  matmulGflops(m: number, k: number, n: number, reps: number): Promise<number>;
}
