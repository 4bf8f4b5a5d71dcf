/**
 * The training loop shared by the LoRA and base-model trainers: tfjs autodiff, Adam, a seeded
 * random stream, resumable checkpoints, a NaN/Inf stop, interruption (AbortSignal, wired to
 * SIGINT by the CLI) and progress reports.
 *
 * What a trainer provides is a `TrainProblem`: its variables and, per step, a loss closure over a
 * batch. Everything that decides the trajectory (parameters, Adam moments and counts, step, the
 * random stream, data cursors) is in the checkpoint, so a resumed run is bit-identical to an
 * uninterrupted one on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { LorahubError, opt } from '../errors.ts';
import { Adam, clipByGlobalNorm, type AdamOptions } from './adam.ts';
import { checkSameRun, readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { Rng } from '../rng.ts';

/** The step's loss and gradients by parameter name, computed off the tape (the ort engine). */
export type GradientFn = (values: ReadonlyMap<string, Float32Array>) => Promise<{ loss: number; grads: ReadonlyMap<string, Float32Array> }>;

/** One step's work, built by the problem: `losses` for tfjs's tape, or `gradients`. */
export interface StepPlan {
  /**
   * The step's loss as a sum of parts (micro-batches), each differentiated on its own under a
   * gradient tape and the gradients added up: the memory of one part, the gradient of the whole.
   */
  losses?: (() => tf.Scalar)[];
  /**
   * Or the loss and gradients computed elsewhere (engine/ort/train-step.ts) from the parameters'
   * current values; clipping, Adam, checkpoints and the NaN stop are the same either way.
   */
  gradients?: GradientFn;
  /** Update masks for some parameters (DyLoRA); see Adam. Disposed by the loop. */
  masks?: Map<string, tf.Tensor>;
  /** Real input + label tokens of the batch (throughput). */
  tokens: number;
}

export interface TrainProblem {
  /** Trainable variables by stable name (the names used in checkpoints). */
  params: Map<string, tf.Variable>;
  /** Mask shapes of parameters updated with masks (see Adam's countShapes). */
  countShapes?: Map<string, number[]>;
  /** Builds the work of step `step` (0-based); `rng` is the run's random stream. */
  planStep(step: number, rng: Rng): StepPlan;
  /** Data positions, saved in checkpoints. */
  cursor(): Record<string, unknown>;
  restoreCursor(cursor: Record<string, unknown>, where: string): void;
}

export type LrDecay = 'constant' | 'linear' | 'cosine';

export interface LrSchedule {
  peak: number;
  /** Linear warm-up from peak/warmupSteps to peak over the first steps. */
  warmupSteps: number;
  decay: LrDecay;
  /** Learning rate at the last step, as a fraction of the peak (linear/cosine). */
  finalFraction: number;
}

/** Learning rate of update `step` (0-based) out of `total`. */
export function learningRate(s: LrSchedule, step: number, total: number): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  if (s.decay === 'constant') return s.peak;
  const span = Math.max(1, total - s.warmupSteps - 1);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  const f = s.finalFraction;
  const shape = s.decay === 'linear' ? 1 - p : 0.5 * (1 + Math.cos(Math.PI * p));
  return s.peak * (f + (1 - f) * shape);
}

export interface Progress {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  stepsPerSecond: number;
  /** Seconds left at this session's rate. */
  etaSeconds: number;
  /** Step of the checkpoint this session resumed from (0 for a fresh run). */
  startStep: number;
}

export interface TrainHooks {
  /** Called before each step (tests use it to inject faults, e.g. a NaN parameter). */
  beforeStep?(step: number, params: Map<string, tf.Variable>): void;
  /** Called after each completed step. */
  afterStep?(info: { step: number; loss: number }): void;
}

export interface CheckpointOptions {
  dir: string;
  /** Save every N steps (0: only at interruption and at the end). */
  every: number;
}

export interface LoopOptions {
  steps: number;
  lr: LrSchedule;
  adam?: Partial<AdamOptions>;
  /** Global gradient-norm clip (HF Trainer default 1.0); 0 disables. */
  clipNorm: number;
  seed: number;
  checkpoint?: CheckpointOptions;
  /** Continue from the checkpoint in `checkpoint.dir` (it must exist and match `run`). */
  resume?: boolean;
  /** What fixes the trajectory; saved in checkpoints and compared on resume. */
  run: Record<string, unknown>;
  /** Keys of `run` that may change on resume (e.g. the total step count). */
  runMayDiffer?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  hooks?: TrainHooks;
}

export interface LoopResult {
  /** Steps completed in total (including those before a resume). */
  steps: number;
  /** Loss of every step, from step 1. */
  losses: number[];
  tokens: number;
  /** Training seconds in total. */
  seconds: number;
  /** This session's throughput. */
  tokensPerSecond: number;
  stepsPerSecond: number;
  resumedFrom: number | null;
}

/** The checkpoint's run keys plus the loop's own hyperparameters. */
function runIdentity(opts: LoopOptions): Record<string, unknown> {
  return { ...opts.run, seed: opts.seed, lr: opts.lr, adam: opts.adam ?? {}, clipNorm: opts.clipNorm };
}

function checkParams(problem: TrainProblem, saved: ReadonlyMap<string, { shape: number[] }>, where: string): void {
  for (const [name, p] of problem.params) {
    const s = saved.get(name);
    if (!s) throw new LorahubError('BAD_FILE', `${where}: missing parameter "${name}"`);
    if (s.shape.join(',') !== p.shape.join(',')) {
      throw new LorahubError('SHAPE_MISMATCH', `${where}: parameter "${name}" is [${s.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    }
  }
}

/** Σ of the parts' values and of their gradients (by parameter name), in the parts' order. */
function accumulateGradients(
  parts: (() => tf.Scalar)[],
  varList: tf.Variable[],
  nameOf: ReadonlyMap<string, string>,
): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  if (parts.length === 0) throw new LorahubError('INTERNAL', 'internal: a training step with no loss');
  let total: tf.Scalar | undefined;
  const acc = new Map<string, tf.Tensor>();
  try {
    for (const part of parts) {
      const { value, grads } = tf.variableGrads(part, varList);
      if (total) {
        const sum = tf.add(total, value) as tf.Scalar;
        tf.dispose([total, value]);
        total = sum;
      } else total = value;
      for (const [varName, g] of Object.entries(grads)) {
        const name = nameOf.get(varName) as string;
        const prev = acc.get(name);
        if (prev) {
          acc.set(name, tf.add(prev, g));
          tf.dispose([prev, g]);
        } else acc.set(name, g);
      }
    }
  } catch (err) {
    tf.dispose([...(total ? [total] : []), ...acc.values()]);
    throw err;
  }
  return { value: total as tf.Scalar, grads: acc };
}

/** A GradientFn's result as tensors (the shape of each parameter). */
async function offTape(fn: GradientFn, params: ReadonlyMap<string, tf.Variable>): Promise<{ value: tf.Scalar; grads: Map<string, tf.Tensor> }> {
  const values = new Map([...params].map(([name, v]) => [name, v.dataSync() as Float32Array]));
  const r = await fn(values);
  const grads = new Map<string, tf.Tensor>();
  for (const [name, v] of params) {
    const g = r.grads.get(name);
    if (!g) {
      tf.dispose([...grads.values()]);
      throw new LorahubError('INTERNAL', `internal: no gradient for parameter "${name}"`);
    }
    grads.set(name, tf.tensor(g, v.shape));
  }
  return { value: tf.scalar(r.loss), grads };
}

/**
 * Runs `opts.steps` optimisation steps (or what is left of them after a resume) on `problem`,
 * updating its variables in place.
 */
export async function runTraining(problem: TrainProblem, opts: LoopOptions): Promise<LoopResult> {
  if (!Number.isInteger(opts.steps) || opts.steps < 1) throw new LorahubError('BAD_ARGUMENT', `steps must be a positive integer, got ${opts.steps}`);
  const adam = new Adam(problem.params, opts.adam, problem.countShapes);
  const run = runIdentity(opts);
  let rng = Rng.fromSeed(opts.seed);
  let step = 0;
  let losses: number[] = [];
  let tokens = 0;
  let seconds = 0;
  let resumedFrom: number | null = null;
  let savedStep: number | null = null;
  const ckpt = opts.checkpoint;

  const save = (): void => {
    if (!ckpt) return;
    const tensors = new Map<string, tf.Tensor>([...problem.params, ...adam.stateTensors()]);
    writeCheckpoint(ckpt.dir, tensors, { step, rng: rng.state(), cursor: problem.cursor(), run, losses, tokens, seconds });
    savedStep = step;
  };

  try {
    if (opts.resume) {
      if (!ckpt) throw new LorahubError('INTERNAL', 'resume needs a checkpoint folder');
      const c = readCheckpoint(ckpt.dir);
      if (!c) throw new LorahubError('NOT_FOUND', `${ckpt.dir}: no checkpoint to resume from`);
      checkSameRun(c.state.run, run, ckpt.dir, opts.runMayDiffer);
      checkParams(problem, c.tensors, ckpt.dir);
      for (const [name, p] of problem.params) {
        const s = c.tensors.get(name) as { shape: number[]; data: Float32Array };
        tf.tidy(() => p.assign(tf.tensor(s.data, p.shape)));
      }
      adam.loadState(c.tensors, ckpt.dir);
      problem.restoreCursor(c.state.cursor, ckpt.dir);
      rng = Rng.fromState(c.state.rng);
      step = c.state.step;
      losses = c.state.losses.slice();
      tokens = c.state.tokens;
      seconds = c.state.seconds;
      resumedFrom = step;
      savedStep = step;
    }
    const startStep = step;
    const sessionStart = performance.now();
    let sessionTokens = 0;
    const varList = [...problem.params.values()];
    // tf.variableGrads keys gradients by the engine's variable names; ours are the map's keys.
    const names = new Map([...problem.params].map(([name, v]) => [v.name, name]));

    while (step < opts.steps) {
      if (opts.signal?.aborted) {
        save();
        throw new LorahubError(
          'INTERRUPTED',
          ckpt ? `interrupted at step ${step}; checkpoint saved in ${ckpt.dir} (continue with ${opt('resume')})` : `interrupted at step ${step} (no checkpoint folder)`,
        );
      }
      opts.hooks?.beforeStep?.(step, problem.params);
      const t0 = performance.now();
      const plan = problem.planStep(step, rng);
      let loss: number;
      let gradNorm: number;
      let lr: number;
      const temps: tf.Tensor[] = [...(plan.masks?.values() ?? [])];
      try {
        const { value, grads } = plan.gradients ? await offTape(plan.gradients, problem.params) : accumulateGradients(plan.losses ?? [], varList, names);
        temps.push(value, ...grads.values());
        const clipped = clipByGlobalNorm(grads, opts.clipNorm);
        temps.push(clipped.norm, ...clipped.grads.values());
        // One read per step for both numbers (each read waits for the backend).
        const both = tf.stack([value, clipped.norm]);
        [loss, gradNorm] = Array.from(both.dataSync());
        both.dispose();
        if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
          const what = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${gradNorm}`;
          const kept = savedStep !== null ? `kept checkpoint at step ${savedStep} (${ckpt?.dir})` : 'no checkpoint was saved before it';
          throw new LorahubError('NUMERIC', `step ${step + 1}: ${what}; ${kept}`);
        }
        lr = learningRate(opts.lr, step, opts.steps);
        adam.apply(clipped.grads, lr, plan.masks);
      } finally {
        tf.dispose(temps);
      }
      step++;
      losses.push(loss);
      tokens += plan.tokens;
      sessionTokens += plan.tokens;
      seconds += (performance.now() - t0) / 1000;
      opts.hooks?.afterStep?.({ step, loss });
      if (ckpt && ckpt.every > 0 && step % ckpt.every === 0 && step < opts.steps) save();
      const elapsed = (performance.now() - sessionStart) / 1000;
      const stepsPerSecond = (step - startStep) / elapsed;
      opts.onProgress?.({
        step,
        steps: opts.steps,
        loss,
        lr,
        gradNorm,
        tokensPerSecond: sessionTokens / elapsed,
        stepsPerSecond,
        etaSeconds: (opts.steps - step) / stepsPerSecond,
        startStep,
      });
      // Let signal handlers (SIGINT) run between steps.
      await yieldToEventLoop();
    }
    save();
    const elapsed = (performance.now() - sessionStart) / 1000;
    return {
      steps: step,
      losses,
      tokens,
      seconds,
      tokensPerSecond: elapsed > 0 ? sessionTokens / elapsed : 0,
      stepsPerSecond: elapsed > 0 ? (step - startStep) / elapsed : 0,
      resumedFrom,
    };
  } finally {
    adam.dispose();
  }
}
