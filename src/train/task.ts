/**
 * `lorahub train`: one LoRA module for one task of the registry — train on its train split,
 * evaluate exact match (test split, and a train subset), write a PEFT adapter and add it to the
 * module library with its metrics.
 */
import { mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { LorahubError, opt } from '../errors.ts';
import { writeAdapter } from '../io/peft.ts';
import {
  BASE_FINGERPRINT_METADATA_KEY,
  modelFingerprint,
  samplingConflictError,
  type AddResult,
  type Library,
  type MetricValue,
} from '../library/index.ts';
import { disposeDeltas, moduleDeltas } from '../models/t5/deltas.ts';
import type { LoraModule } from '../lora/module.ts';
import { loadT5Config } from '../models/t5/config.ts';
import { T5Model } from '../models/t5/model.ts';
import { taskExamples, withFormats } from '../tasks/dataset.ts';
import { getTask } from '../tasks/registry.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { checkpointFile } from './checkpoint.ts';
import type { TextExample } from '../tasks/types.ts';
import { truncateDyLora } from './dylora.ts';
import { exactMatchAccuracy, meanTokenLoss, subset } from './evaluate.ts';
import { plannedLayout, trainLora, type LoraSpec } from './lora.ts';
import type { CheckpointOptions, LoopResult, LrSchedule, Progress, TrainHooks } from './loop.ts';
import type { TrainEngine } from './engine.ts';

export interface TrainTaskOptions {
  task: string;
  tasksDir?: string;
  modelDir: string;
  /** Library to add the module to; undefined: only write `out`. */
  library?: Library;
  /** Module name; default: the task name (with "-dylora" for DyLoRA). */
  name?: string;
  /** Adapter folder to write; default (with a library): a temporary folder, removed after the add. */
  out?: string;
  /** Stored dtype of the adapter (default F32; F16 halves a shipped library). */
  dtype?: 'F32' | 'F16';
  spec: LoraSpec;
  steps: number;
  batchSize: number;
  microBatchTokens?: number;
  lr: LrSchedule;
  seed: number;
  checkpoint?: CheckpointOptions;
  resume?: boolean;
  /** Test examples evaluated (default: the whole test split). */
  evalTest?: number;
  /** Train examples evaluated (default 100). */
  evalTrain?: number;
  /** Replace a module of the same name in the library; add one that does not compose with its modules (never sampled then). */
  force?: boolean;
  /** Keep the run's checkpoint after success (default: delete it; it only serves crash recovery). */
  keepCheckpoint?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Called when training is done and evaluation (then saving) starts. */
  onPhase?: (phase: 'evaluate' | 'save', detail: string) => void;
  hooks?: TrainHooks;
  /** What computes the gradients (default tfjs's tape). */
  engine?: TrainEngine;
}

export interface TrainTaskResult {
  name: string;
  task: string;
  /** The adapter folder, when it was kept. */
  out: string | null;
  module: LoraModule;
  metrics: Record<string, MetricValue>;
  loop: LoopResult;
  added: AddResult | null;
}

/** What PEFT records as the base: the checkpoint's own `_name_or_path`, else its folder name. */
export function baseNameOf(model: T5Model, dir: string): string {
  const n = model.config.raw._name_or_path;
  return typeof n === 'string' && n !== '' ? n : basename(resolve(dir));
}

/** Deletes a run folder's checkpoint, and the folder when nothing else is in it. */
function removeCheckpoint(dir: string): void {
  rmSync(checkpointFile(dir), { force: true });
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // Already gone, or not ours to remove: either way nothing is lost.
  }
}

interface Evaluated {
  metrics: Record<string, MetricValue>;
}

function evaluateModule(model: T5Model, tok: Tokenizer, module: LoraModule, test: TextExample[], train: TextExample[], suffix = ''): Evaluated {
  const deltas = moduleDeltas(module);
  try {
    // `--eval-train 0` asks for no train metric: an empty set has no accuracy to report.
    const trainMetric = train.length > 0 ? { [`train_exact_match${suffix}`]: exactMatchAccuracy(model, tok, train, { lora: deltas }).accuracy } : {};
    return {
      metrics: {
        [`test_exact_match${suffix}`]: exactMatchAccuracy(model, tok, test, { lora: deltas }).accuracy,
        ...trainMetric,
        [`test_loss${suffix}`]: meanTokenLoss(model, tok, test, { lora: deltas }),
      },
    };
  } finally {
    disposeDeltas(deltas);
  }
}

export async function trainTaskModule(opts: TrainTaskOptions): Promise<TrainTaskResult> {
  const task = getTask(opts.task, opts.tasksDir);
  if (task.kind !== 'upstream' && opts.library) {
    throw new LorahubError(
      'BAD_ARGUMENT',
      `task "${task.name}" is a ${task.kind} task: modules trained on held-out tasks must not enter the library (train with an ${opt('out')} folder and without adding, e.g. as a baseline)`,
    );
  }
  if (!opts.library && !opts.out) throw new LorahubError('BAD_ARGUMENT', 'nowhere to put the module: give an output folder or a library');
  const name = opts.name ?? (opts.spec.dylora ? `${task.name}-dylora` : task.name);
  // Fail before training, not after it.
  if (opts.library?.hasModule(name) && !opts.force) {
    throw new LorahubError('BAD_ARGUMENT', `module "${name}" already exists in ${opts.library.dir} (use ${opt('force')} to replace it, or ${opt('name')})`);
  }
  const fingerprint = await modelFingerprint(opts.modelDir);
  if (opts.library && !opts.force) {
    // A module the library would refuse at the end (it would break the default compose) is refused
    // before the training run rather than after it.
    const conflict = await opts.library.samplingConflict(plannedLayout(loadT5Config(opts.modelDir), opts.spec, name), fingerprint, name);
    if (conflict) throw samplingConflictError(name, `trained on ${task.name}`, conflict);
  }
  const model = T5Model.load(opts.modelDir);
  try {
    const tok = loadTokenizer(opts.modelDir);
    // A module learns its task in every phrasing, formats included (the base saw the instruction forms).
    const data = withFormats(task);
    const train = taskExamples(data, 'train');
    const { module, loop } = await trainLora({
      model,
      tokenizer: tok,
      examples: train,
      spec: opts.spec,
      steps: opts.steps,
      batchSize: opts.batchSize,
      microBatchTokens: opts.microBatchTokens,
      lr: opts.lr,
      seed: opts.seed,
      name,
      baseModelNameOrPath: baseNameOf(model, opts.modelDir),
      baseId: fingerprint,
      checkpoint: opts.checkpoint,
      resume: opts.resume,
      signal: opts.signal,
      onProgress: opts.onProgress,
      hooks: opts.hooks,
      run: { task: task.name },
      engine: opts.engine,
    });
    module.metadata = { ...module.metadata, [BASE_FINGERPRINT_METADATA_KEY]: fingerprint };

    const test = subset(taskExamples(data, 'test'), opts.evalTest);
    const trainEval = subset(train, opts.evalTrain ?? 100);
    opts.onPhase?.('evaluate', `${test.length} test and ${trainEval.length} train examples`);
    const tail = loop.losses.slice(-Math.max(1, Math.ceil(loop.losses.length / 10)));
    const metrics: Record<string, MetricValue> = {
      ...evaluateModule(model, tok, module, test, trainEval).metrics,
      // Mean of the last 10% of steps: one batch's loss is noisy.
      train_loss: tail.reduce((s, x) => s + x, 0) / tail.length,
      steps: loop.steps,
      seed: opts.seed,
      train_seconds: Math.round(loop.seconds),
    };
    if (opts.spec.dylora && opts.spec.dylora.min < opts.spec.dylora.max) {
      const low = truncateDyLora(module, opts.spec.dylora.min);
      Object.assign(metrics, evaluateModule(model, tok, low, test, trainEval, `@r${opts.spec.dylora.min}`).metrics);
    }

    const tmp = opts.out ? undefined : mkdtempSync(join(tmpdir(), 'lorahub-train-'));
    const outDir = opts.out ?? join(tmp as string, name);
    try {
      opts.onPhase?.('save', opts.library ? `${name} into ${opts.library.dir}` : outDir);
      await writeAdapter(outDir, module, { dtype: opts.dtype });
      const added = opts.library
        ? await opts.library.addModule(outDir, { name, task: task.name, metrics, base: opts.modelDir, force: opts.force })
        : null;
      if (opts.checkpoint && !opts.keepCheckpoint) removeCheckpoint(opts.checkpoint.dir);
      return { name, task: task.name, out: opts.out ?? null, module, metrics, loop, added };
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  } finally {
    model.dispose();
  }
}
