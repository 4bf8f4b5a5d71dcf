/**
 * LoRA training on a frozen T5 (Hu et al., ICLR 2022), in PEFT's layout and conventions
 * (peft/tuners/lora/layer.py): for each target Linear, A = lora_A.weight [r, dIn] and
 * B = lora_B.weight [dOut, r], y = xWᵀ + (α/r)·(xAᵀ)Bᵀ; A starts Kaiming-uniform, B at zero, so
 * training starts exactly at the base model.
 *
 * The base weights stay plain tensors (not variables), so the tape only differentiates the
 * LoRA factors. With `dylora` each step trains a random rank prefix instead (dylora.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../errors.ts';
import type { ModuleLayout } from '../lora/compose.ts';
import { loraFactorName, type LoraConfig, type LoraModule, type LoraTarget } from '../lora/module.ts';
import { T5_LINEAR_NAMES, t5LinearShape, t5Linears } from '../models/t5/checkpoint.ts';
import type { T5Config } from '../models/t5/config.ts';
import { batchLoss } from '../models/t5/loss.ts';
import type { LoraDeltas, T5Model } from '../models/t5/model.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { collate, defaultMicroBatchTokens, encodeExamples, ExampleStream, isCursor, microBatches, type TrainBatch } from './data.ts';
import type { TextExample } from '../tasks/types.ts';
import { dyloraMasks, DYLORA_METADATA_KEY, sampleRank, type DyLoraRange } from './dylora.ts';
import { runTraining, type CheckpointOptions, type LoopResult, type LrSchedule, type Progress, type TrainHooks, type TrainProblem } from './loop.ts';
import { Rng } from '../rng.ts';
import type { TrainEngine } from './engine.ts';
import type { OrtTrainStep } from '../engine/ort/train-step.ts';

export type LoraTargetName = (typeof T5_LINEAR_NAMES)[number];

/**
 * Every HF module path of `cfg` whose last name is in `names` (all blocks, encoder and decoder,
 * self- and cross-attention), sorted. Names the model does not have (wi on a gated model,
 * wi_0/wi_1 on a relu one) are errors.
 */
export function loraTargetPaths(cfg: T5Config, names: readonly string[]): string[] {
  if (names.length === 0) throw new LorahubError('BAD_ARGUMENT', 'no LoRA target modules given');
  const valid = [...t5Linears(cfg).keys()];
  const out: string[] = [];
  for (const n of names) {
    if (!(T5_LINEAR_NAMES as readonly string[]).includes(n)) {
      throw new LorahubError('BAD_ARGUMENT', `unknown LoRA target "${n}" (T5 Linear names: ${T5_LINEAR_NAMES.join(', ')})`);
    }
    const hits = valid.filter((p) => p.endsWith(`.${n}`));
    if (hits.length === 0) {
      throw new LorahubError('BAD_ARGUMENT', `LoRA target "${n}": this model has no such Linear (feed_forward_proj ${cfg.feedForwardProj})`);
    }
    out.push(...hits);
  }
  return [...new Set(out)].sort();
}

/** One target's trainable factors. */
export interface LoraParam {
  path: string;
  dIn: number;
  dOut: number;
  /** lora_A.weight [r, dIn]. */
  a: tf.Variable;
  /** lora_B.weight [dOut, r]. */
  b: tf.Variable;
}

/** A factor's parameter name (lora/module.ts `loraFactorName`). */
export const paramName = loraFactorName;

/**
 * PEFT's default init (tuners/lora/layer.py `reset_lora_parameters`, init_lora_weights=True):
 * `kaiming_uniform_(lora_A, a=√5)` — bound gain·√(3/fan_in) with gain √(2/(1+a²)) = √(1/3), i.e.
 * U(−1/√dIn, 1/√dIn) — and `zeros_(lora_B)`. Seeded; targets drawn in sorted path order.
 */
export function initLoraParams(cfg: T5Config, paths: readonly string[], rank: number, seed: number): LoraParam[] {
  if (!Number.isInteger(rank) || rank < 1) throw new LorahubError('BAD_ARGUMENT', `LoRA rank must be a positive integer, got ${rank}`);
  const rng = Rng.fromSeed(seed);
  return paths.map((path) => {
    const shape = t5LinearShape(cfg, path);
    if (!shape) throw new LorahubError('INTERNAL', `no Linear "${path}" in this model`);
    const [dOut, dIn] = shape;
    const bound = 1 / Math.sqrt(dIn);
    const a = new Float32Array(rank * dIn);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.float() - 1) * bound;
    // Inside tidy: tf.variable shares the initial tensor's data, and the initial tensor itself must go.
    return tf.tidy(() => ({
      path,
      dIn,
      dOut,
      a: tf.variable(tf.tensor2d(a, [rank, dIn]), true),
      b: tf.variable(tf.zeros([dOut, rank]), true),
    }));
  });
}

/**
 * Deltas for the forward from the (leading `rank` components of the) factors, with `scaling`
 * folded into bT. Differentiable: slicing and transposing are on the tape.
 */
export function loraDeltas(params: readonly LoraParam[], rank: number, scaling: number): LoraDeltas {
  const out: LoraDeltas = new Map();
  for (const p of params) {
    const full = p.a.shape[0];
    const a = rank === full ? p.a : tf.slice(p.a, [0, 0], [rank, p.dIn]);
    const b = rank === full ? p.b : tf.slice(p.b, [0, 0], [p.dOut, rank]);
    out.set(p.path, { aT: tf.transpose(a) as tf.Tensor2D, bT: tf.mul(tf.transpose(b), scaling) as tf.Tensor2D });
  }
  return out;
}

export interface LoraSpec {
  rank: number;
  alpha: number;
  /** Short Linear names, e.g. ["q", "v"]. */
  targets: string[];
  /** DyLoRA rank range; rank must equal its max. */
  dylora?: DyLoraRange;
}

/** adapter_config.json fields as PEFT writes them for this LoRA (PEFT 0.4 field set, via writeAdapter). */
export function peftConfigFor(spec: LoraSpec, baseModelNameOrPath: string | null): LoraConfig {
  return {
    peft_type: 'LORA',
    task_type: 'SEQ_2_SEQ_LM',
    base_model_name_or_path: baseModelNameOrPath,
    r: spec.rank,
    lora_alpha: spec.alpha,
    target_modules: [...spec.targets],
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    rank_pattern: {},
    alpha_pattern: {},
    extra: {},
  };
}

/** Reads the trained factors into a PEFT-layout module (scaling α/r, PEFT's). */
export function loraModuleFrom(params: readonly LoraParam[], spec: LoraSpec, name: string, baseModelNameOrPath: string | null, metadata: Record<string, string> = {}): LoraModule {
  const targets = new Map<string, LoraTarget>();
  for (const p of [...params].sort((x, y) => (x.path < y.path ? -1 : 1))) {
    targets.set(p.path, {
      path: p.path,
      r: spec.rank,
      dIn: p.dIn,
      dOut: p.dOut,
      a: Float32Array.from(p.a.dataSync() as Float32Array),
      b: Float32Array.from(p.b.dataSync() as Float32Array),
      scaling: spec.alpha / spec.rank,
    });
  }
  return { name, config: peftConfigFor(spec, baseModelNameOrPath), targets, metadata };
}

/**
 * The layout (targets, ranks, shapes, scalings; as loraModuleFrom will give them) of a module
 * trained with `spec`: what the library checks a module against, known before the training run.
 */
export function plannedLayout(cfg: T5Config, spec: LoraSpec, name: string): ModuleLayout {
  const targets = new Map(
    loraTargetPaths(cfg, spec.targets).map((path) => {
      const [dOut, dIn] = t5LinearShape(cfg, path) as [number, number];
      return [path, { r: spec.rank, dIn, dOut, scaling: spec.alpha / spec.rank }] as const;
    }),
  );
  return { name, targets };
}

export function disposeLoraParams(params: readonly LoraParam[]): void {
  for (const p of params) tf.dispose([p.a, p.b]);
}

export interface TrainLoraOptions {
  model: T5Model;
  tokenizer: Tokenizer;
  examples: readonly TextExample[];
  spec: LoraSpec;
  steps: number;
  batchSize: number;
  lr: LrSchedule;
  /** Global gradient-norm clip; default 1.0. */
  clipNorm?: number;
  /** Micro-batch budget in padded tokens (gradient accumulation); default defaultMicroBatchTokens. */
  microBatchTokens?: number;
  seed: number;
  /** Module name and the base name recorded in adapter_config.json. */
  name: string;
  baseModelNameOrPath: string | null;
  /** Identity of the base (e.g. its fingerprint), checked on resume. */
  baseId?: string;
  checkpoint?: CheckpointOptions;
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  hooks?: TrainHooks;
  /** Extra keys identifying the run (task name …), checked on resume. */
  run?: Record<string, unknown>;
  /** What computes the gradients (default tfjs's tape; DyLoRA needs it). */
  engine?: TrainEngine;
}

export interface TrainLoraResult {
  module: LoraModule;
  loop: LoopResult;
}

/** Trains one LoRA module. The model is never modified. */
export async function trainLora(opts: TrainLoraOptions): Promise<TrainLoraResult> {
  const { model, spec } = opts;
  const cfg = model.config;
  if (opts.examples.length === 0) throw new LorahubError('BAD_ARGUMENT', 'no training examples');
  if (!(spec.alpha > 0)) throw new LorahubError('BAD_ARGUMENT', `lora alpha must be positive, got ${spec.alpha}`);
  if (spec.dylora && spec.dylora.max !== spec.rank) {
    throw new LorahubError('BAD_ARGUMENT', `DyLoRA: rank ${spec.rank} must equal the range's maximum ${spec.dylora.max}`);
  }
  if (spec.dylora && opts.engine?.name === 'ort') throw new LorahubError('UNSUPPORTED', 'DyLoRA trains on the tfjs engine only (a rank per step)');
  const paths = loraTargetPaths(cfg, spec.targets);
  const params = initLoraParams(cfg, paths, spec.rank, opts.seed);
  let ortStep: OrtTrainStep | undefined;
  try {
    const stream = new ExampleStream(encodeExamples(opts.tokenizer, opts.examples), opts.batchSize, opts.seed);
    const microTokens = opts.microBatchTokens ?? defaultMicroBatchTokens(cfg);
    const vars = new Map<string, tf.Variable>();
    const countShapes = new Map<string, number[]>();
    for (const p of params) {
      vars.set(paramName(p.path, 'A'), p.a);
      vars.set(paramName(p.path, 'B'), p.b);
      if (spec.dylora) {
        countShapes.set(paramName(p.path, 'A'), [spec.rank, 1]);
        countShapes.set(paramName(p.path, 'B'), [1, spec.rank]);
      }
    }
    let onOrt: { step: OrtTrainStep; frozen: Map<string, Float32Array> } | undefined;
    if (opts.engine?.name === 'ort') {
      const { OrtTrainStep } = await import('../engine/ort/train-step.ts');
      const scaling = spec.alpha / spec.rank;
      ortStep = await OrtTrainStep.create({ cfg, trainable: new Set(), lora: new Map(paths.map((p) => [p, { rank: spec.rank, scaling }])) }, opts.engine.threads);
      // The frozen base goes in with every step: read out of tfjs once.
      const frozen = new Map([...model.weights.tensors].map(([name, t]) => [name, t.dataSync() as Float32Array]));
      onOrt = { step: ortStep, frozen };
    }
    const problem: TrainProblem = {
      params: vars,
      countShapes,
      planStep: (_step, rng) => {
        if (onOrt) {
          const { step, frozen } = onOrt;
          const batch = collate(stream.next(), cfg);
          return { gradients: (values) => step.run(new Map([...frozen, ...values]), batch), tokens: batch.tokens };
        }
        const micro = microBatches(stream.next(), cfg, microTokens);
        // DyLoRA (Valipour et al. 2023, §3): a rank b per step, scaling α/b, only component b−1 updated.
        const b = spec.dylora ? sampleRank(rng, spec.dylora) : spec.rank;
        return {
          losses: micro.batches.map((batch) => () =>
            tf.tidy(() => {
              const deltas = loraDeltas(params, b, spec.alpha / b);
              return batchLoss(model, batch, deltas);
            }),
          ),
          masks: spec.dylora ? dyloraMasks(params, b, paramName) : undefined,
          tokens: micro.tokens,
        };
      },
      cursor: () => ({ data: stream.cursor }),
      restoreCursor: (c, where) => {
        if (!isCursor(c.data)) throw new LorahubError('BAD_FILE', `${where}: checkpoint has no data cursor`);
        stream.cursor = c.data;
      },
    };
    const loop = await runTraining(problem, {
      steps: opts.steps,
      lr: opts.lr,
      clipNorm: opts.clipNorm ?? 1,
      seed: opts.seed,
      checkpoint: opts.checkpoint,
      resume: opts.resume,
      run: {
        kind: spec.dylora ? 'dylora' : 'lora',
        // Absent for tfjs, so that checkpoints written before the ort engine still resume.
        ...(onOrt ? { engine: 'ort' } : {}),
        ...opts.run,
        base: opts.baseId ?? null,
        rank: spec.rank,
        alpha: spec.alpha,
        targets: paths.length,
        targetNames: spec.targets,
        dylora: spec.dylora ?? null,
        batchSize: opts.batchSize,
        microBatchTokens: microTokens,
        examples: opts.examples.length,
        steps: opts.steps,
      },
      // A resumed run may go on longer, or with another learning rate (the schedule depends on the total anyway).
      runMayDiffer: ['steps', 'lr'],
      signal: opts.signal,
      onProgress: opts.onProgress,
      hooks: opts.hooks,
    });
    const metadata: Record<string, string> = {
      lorahub_training: JSON.stringify({ steps: loop.steps, seed: opts.seed, batch_size: opts.batchSize, lr: opts.lr, final_loss: loop.losses.at(-1) ?? null }),
    };
    if (spec.dylora) metadata[DYLORA_METADATA_KEY] = JSON.stringify({ min: spec.dylora.min, max: spec.dylora.max, scaling: 'lora_alpha/b' });
    const module = loraModuleFrom(params, spec, opts.name, opts.baseModelNameOrPath, metadata);
    return { module, loop };
  } finally {
    disposeLoraParams(params);
    await ortStep?.release();
  }
}
