/**
 * Trains lorahub's own small base model (DESIGN.md, "the embedded default"): a T5 v1.1 model
 * (gated-gelu, untied LM head, no dropout) over the ByT5 byte vocabulary, trained from scratch
 *   1. briefly on span corruption (Raffel et al. 2020, §3.1.4) of text from the upstream tasks,
 *   2. then on the instruction mixture of every UPSTREAM task (a mini-FLAN, Wei et al. 2022).
 * Target tasks never enter either phase (asserted), so they stay held out for LoRAHub.
 *
 * The weights are tf.Variables behind an ordinary T5Model (model.ts only reads
 * `weights.tensors`), in our layout (Linear weights [dIn, dOut]); they are written out as a
 * Hugging Face checkpoint folder (HF names and layouts, F16 or F32) with its tokenizer files:
 * ByT5's bytes, or a word vocabulary counted from the same upstream mixture (tokenizers/words.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { LorahubError } from '../errors.ts';
import { writeFilesAtomic, type FileToWrite } from '../io/atomic.ts';
import { encodeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import { t5ConfigFromHf, type T5Config } from '../models/t5/config.ts';
import { batchLoss } from '../models/t5/loss.ts';
import { T5Model } from '../models/t5/model.ts';
import { byT5TokenizerFiles, randomT5HfConfig, t5InitStd } from '../models/t5/random.ts';
import { oursShape, t5WeightTable } from '../models/t5/checkpoint.ts';
import { taskExamples } from '../tasks/dataset.ts';
import { getTasks, listTasks } from '../tasks/registry.ts';
import type { TaskDef, TextExample, TokenExample } from '../tasks/types.ts';
import { ByteTokenizer } from '../tokenizers/bytes.ts';
import { JsonTokenizer } from '../tokenizers/sentencepiece.ts';
import { buildWordTokenizer, wordTokenizerConfigs } from '../tokenizers/words.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { BucketSampler, collate, DEFAULT_SPAN_CORRUPTION, defaultMicroBatchTokens, microBatches, encodeExamples, ExampleStream, isCursor, spanCorrupt, type Cursor } from './data.ts';
import { exactMatchAccuracy, subset } from './evaluate.ts';
import { runTraining, type CheckpointOptions, type LoopResult, type LrSchedule, type Progress, type TrainHooks, type TrainProblem } from './loop.ts';
import { derivedRng, Rng } from '../rng.ts';
import { BASE_PRESETS, DEFAULT_BASE_TOKENIZER, DEFAULT_BASE_WEIGHT_DECAY, type BaseSize, type BaseTokenizerKind } from './presets.ts';
import type { TrainEngine } from './engine.ts';
import type { OrtTrainStep } from '../engine/ort/train-step.ts';

/** ByT5 keeps 125 sentinels (<extra_id_i>) after the 259 byte/special ids: vocab 384. The word vocabulary keeps as many. */
const EXTRA_IDS = 125;

/** A base's tokenizer and the files that describe it in the saved folder. */
export interface BaseVocabulary {
  kind: BaseTokenizerKind;
  tokenizer: Tokenizer;
  files: FileToWrite[];
  /** sha256 of a counted vocabulary's tokenizer.json (16 hex digits), so a resume with other task data is refused. */
  digest?: string;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/**
 * The tokenizer a base of `kind` trains with. Words are counted from `texts` (the upstream
 * mixture: inputs and targets), so no target task's wording enters the vocabulary.
 */
export function baseVocabulary(kind: BaseTokenizerKind, texts: readonly string[]): BaseVocabulary {
  if (kind === 'bytes') {
    const tokenizer = new ByteTokenizer({ extraIds: EXTRA_IDS });
    return { kind, tokenizer, files: byT5TokenizerFiles(EXTRA_IDS) };
  }
  if (kind !== 'words') throw new LorahubError('BAD_ARGUMENT', `unknown base tokenizer "${String(kind)}" (expected bytes or words)`);
  const tokenizerJson = buildWordTokenizer(texts, { extraIds: EXTRA_IDS });
  const { config, specialTokens } = wordTokenizerConfigs(EXTRA_IDS);
  // Compact: it is read by programs, and it is the folder's largest text file.
  const data = `${JSON.stringify(tokenizerJson)}\n`;
  return {
    kind,
    tokenizer: new JsonTokenizer(tokenizerJson, { config }),
    digest: createHash('sha256').update(data).digest('hex').slice(0, 16),
    files: [
      { name: 'tokenizer.json', data },
      { name: 'special_tokens_map.json', data: json(specialTokens) },
      { name: 'tokenizer_config.json', data: json(config) },
    ],
  };
}

/** A complete HF config.json for a preset (every field transformers writes for T5 v1.1). */
export function baseHfConfig(size: BaseSize, nameOrPath: string): Record<string, unknown> {
  const preset = BASE_PRESETS[size];
  if (!preset) throw new LorahubError('BAD_ARGUMENT', `unknown base size "${size}" (expected ${Object.keys(BASE_PRESETS).join(' or ')})`);
  // randomT5HfConfig('tiny') supplies the T5 v1.1 + ByT5 fields; the preset replaces its shapes.
  return { _name_or_path: nameOrPath, ...randomT5HfConfig('tiny'), ...preset };
}

/**
 * Seeded initial weights as variables, keyed by our names. Normals are drawn in the weight
 * table's order and HF layout (so a seed means the same weights whatever our layout), layer
 * norms start at 1.
 */
export function initBaseParams(cfg: T5Config, seed: number): Map<string, tf.Variable> {
  // Rng, not random.ts's Sampler: Sampler seeds xoroshiro directly and its first normals are ~0.
  const rng = Rng.fromSeed(seed);
  const out = new Map<string, tf.Variable>();
  for (const e of t5WeightTable(cfg)) {
    const n = e.hfShape.reduce((a, b) => a * b, 1);
    const data = e.hf.endsWith('layer_norm.weight') ? new Float32Array(n).fill(1) : rng.fillNormal(n, t5InitStd(e.hf, cfg, cfg.dModel ** -0.5));
    out.set(
      e.ours,
      tf.tidy(() => {
        const t = tf.tensor(data, e.hfShape);
        return tf.variable(e.transpose ? tf.transpose(t) : t, true);
      }),
    );
  }
  return out;
}

/** A T5Model whose weights ARE the variables (no copy): training them changes the model. */
export function modelOverParams(cfg: T5Config, params: Map<string, tf.Variable>): T5Model {
  const tensors = new Map<string, tf.Tensor>(params);
  const lmHeadT = (cfg.tieWordEmbeddings ? undefined : params.get('lmHead')) as tf.Tensor2D | undefined;
  if (!lmHeadT) throw new LorahubError('UNSUPPORTED', 'base training supports untied LM heads only (T5 v1.1)');
  return new T5Model(cfg, { tensors, lmHeadT });
}

export type WeightsDtype = 'F16' | 'F32';

/**
 * Writes an HF checkpoint folder: config.json, model.safetensors (HF names and layouts),
 * generation_config.json and the tokenizer files (default: ByT5's). F16 halves the size; values
 * beyond F16's range are refused rather than silently turned into infinities.
 */
export function saveBaseModel(
  dir: string,
  rawConfig: Record<string, unknown>,
  params: ReadonlyMap<string, tf.Tensor>,
  dtype: WeightsDtype,
  tokenizerFiles: FileToWrite[] = byT5TokenizerFiles(EXTRA_IDS),
): void {
  const cfg = t5ConfigFromHf(rawConfig);
  const tensors: TensorToWrite[] = [];
  for (const e of t5WeightTable(cfg)) {
    const t = params.get(e.ours);
    if (!t) throw new LorahubError('INTERNAL', `saveBaseModel: no weight "${e.ours}"`);
    const hf = tf.tidy(() => (e.transpose ? tf.transpose(t) : tf.clone(t)));
    const data = Float32Array.from(hf.dataSync() as Float32Array);
    hf.dispose();
    if (dtype === 'F16') {
      const bad = data.findIndex((x) => !(Math.abs(x) <= 65504));
      if (bad >= 0) throw new LorahubError('NUMERIC', `${e.hf}: value ${data[bad]} does not fit float16; save with F32`);
    }
    tensors.push({ name: e.hf, dtype, shape: e.hfShape, data });
  }
  const config = { ...rawConfig, torch_dtype: dtype === 'F16' ? 'float16' : 'float32' };
  writeFilesAtomic(dir, [
    { name: 'model.safetensors', data: encodeSafetensors(tensors, { format: 'pt' }) },
    { name: 'generation_config.json', data: json({ decoder_start_token_id: cfg.decoderStartTokenId, eos_token_id: cfg.eosTokenId, pad_token_id: cfg.padTokenId }) },
    ...tokenizerFiles,
    // config.json last: it is what makes the folder a model.
    { name: 'config.json', data: json(config) },
  ]);
}

/**
 * The upstream tasks of the registry — or only those named in `names`, in registry order — after
 * checking that no target task is among them (naming one is an error, not a silent skip).
 */
export function upstreamTasks(tasksDir?: string, names?: readonly string[]): TaskDef[] {
  if (names !== undefined) {
    if (names.length === 0) throw new LorahubError('BAD_ARGUMENT', 'base training needs at least one task');
    const tasks = getTasks(names, tasksDir);
    assertUpstreamOnly(tasks);
    return tasks;
  }
  const tasks = listTasks(tasksDir).filter((t) => t.kind === 'upstream');
  assertUpstreamOnly(tasks);
  if (tasks.length === 0) throw new LorahubError('NOT_FOUND', `no upstream tasks in ${tasksDir ?? 'the task registry'}`);
  return tasks;
}

/** Throws if any task of a base-training mixture is a target task (they must stay held out). */
export function assertUpstreamOnly(tasks: readonly TaskDef[]): void {
  const bad = tasks.filter((t) => t.kind !== 'upstream');
  if (bad.length > 0) {
    throw new LorahubError('BAD_ARGUMENT', `base training must not see target tasks, got ${bad.map((t) => `"${t.name}" (${t.kind})`).join(', ')}`);
  }
}

/** The instruction mixture: every task's train split (capped at `maxPerTask`), examples-proportional. */
export function upstreamMixture(tasks: readonly TaskDef[], maxPerTask?: number): TextExample[] {
  assertUpstreamOnly(tasks);
  return tasks.flatMap((t) => subset(taskExamples(t, 'train'), maxPerTask));
}

/** Span-corrupted batches over texts; the corruption of batch (epoch, index) is fixed by the seed. */
class SpanStream {
  private readonly texts: number[][];
  private readonly sampler: BucketSampler;
  private readonly seed: number;
  private readonly sentinel: (i: number) => number;
  private readonly eos: number;
  position: Cursor = { epoch: 0, index: 0 };

  constructor(tok: Tokenizer, texts: readonly string[], batchSize: number, seed: number, vocabSize: number) {
    // Token ids without the trailing eos: spanCorrupt re-terminates both sides.
    this.texts = texts.map((t) => tok.encode(t).slice(0, -1));
    this.sampler = new BucketSampler(
      this.texts.map((t) => t.length),
      seed,
      { batchSize: Math.min(batchSize, texts.length), windowBatches: 16 },
    );
    this.seed = seed;
    // <extra_id_i> is the i-th id from the top of the vocabulary (T5/ByT5 convention, tokenizers/bytes.ts).
    this.sentinel = (i) => vocabSize - 1 - (i % EXTRA_IDS);
    this.eos = tok.eosId;
  }

  next(): TokenExample[] {
    const rng = derivedRng(this.seed, 'span', this.position.epoch, this.position.index);
    const { indices, cursor } = this.sampler.next(this.position);
    this.position = cursor;
    return indices.map((i) => spanCorrupt(this.texts[i], rng, this.sentinel, this.eos, DEFAULT_SPAN_CORRUPTION));
  }
}

export interface TrainBaseOptions {
  size: BaseSize;
  steps: number;
  /** Leading steps of span corruption (the rest is instruction tuning). */
  pretrainSteps: number;
  batchSize: number;
  lr: LrSchedule;
  clipNorm?: number;
  /** AdamW's decoupled weight decay (default DEFAULT_BASE_WEIGHT_DECAY). */
  weightDecay?: number;
  /** Micro-batch budget in padded tokens (gradient accumulation); default defaultMicroBatchTokens. */
  microBatchTokens?: number;
  seed: number;
  /** Recorded as the model's `_name_or_path` (and so as base_model_name_or_path of its modules). */
  name: string;
  /** The vocabulary (default DEFAULT_BASE_TOKENIZER). */
  tokenizer?: BaseTokenizerKind;
  tasksDir?: string;
  /** Only these upstream tasks (default: every upstream task of the registry). */
  tasks?: readonly string[];
  /** Train examples per upstream task (default: the whole train split). */
  maxPerTask?: number;
  checkpoint?: CheckpointOptions;
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  hooks?: TrainHooks;
  /** What computes the gradients (default tfjs's tape). */
  engine?: TrainEngine;
}

export interface TrainBaseResult {
  /** HF config.json of the trained model. */
  config: Record<string, unknown>;
  /** The trained weights (caller disposes, e.g. with disposeParams). */
  params: Map<string, tf.Variable>;
  model: T5Model;
  tokenizer: Tokenizer;
  /** The tokenizer's files for saveBaseModel. */
  tokenizerFiles: FileToWrite[];
  tasks: TaskDef[];
  loop: LoopResult;
  parameters: number;
}

export function disposeParams(params: Map<string, tf.Variable>): void {
  for (const v of params.values()) v.dispose();
}

/** Trains the base model; returns it in memory (save it with saveBaseModel). */
export async function trainBase(opts: TrainBaseOptions): Promise<TrainBaseResult> {
  // pretrainSteps ≥ steps is allowed (a run cut short, or extended later with --resume).
  if (!Number.isInteger(opts.pretrainSteps) || opts.pretrainSteps < 0) {
    throw new LorahubError('BAD_ARGUMENT', `pretraining steps must be a non-negative integer, got ${opts.pretrainSteps}`);
  }
  const tasks = upstreamTasks(opts.tasksDir, opts.tasks);
  const mixture = upstreamMixture(tasks, opts.maxPerTask);
  const weightDecay = opts.weightDecay ?? DEFAULT_BASE_WEIGHT_DECAY;
  const vocabulary = baseVocabulary(opts.tokenizer ?? DEFAULT_BASE_TOKENIZER, mixture.flatMap((e) => [e.input, e.target]));
  const raw = {
    ...baseHfConfig(opts.size, opts.name),
    vocab_size: vocabulary.tokenizer.vocabSize,
    lorahub_training: {
      size: opts.size,
      seed: opts.seed,
      steps: opts.steps,
      pretrain_steps: opts.pretrainSteps,
      batch_size: opts.batchSize,
      weight_decay: weightDecay,
      tokenizer: vocabulary.kind,
      upstream_tasks: tasks.map((t) => t.name),
    },
  };
  const cfg = t5ConfigFromHf(raw);
  const tok = vocabulary.tokenizer;
  const params = initBaseParams(cfg, opts.seed);
  let ortStep: OrtTrainStep | undefined;
  try {
    const model = modelOverParams(cfg, params);
    const instruct = new ExampleStream(encodeExamples(tok, mixture), opts.batchSize, opts.seed);
    const spans = new SpanStream(
      tok,
      mixture.map((e) => `${e.input} ${e.target}`),
      opts.batchSize,
      opts.seed,
      cfg.vocabSize,
    );
    const microTokens = opts.microBatchTokens ?? defaultMicroBatchTokens(cfg);
    // On ort a step is one pass over the whole batch (no wasm heap to stay under).
    ortStep = opts.engine?.name === 'ort' ? await (await import('../engine/ort/train-step.ts')).OrtTrainStep.create({ cfg, trainable: new Set(params.keys()) }, opts.engine.threads) : undefined;
    const onOrt = ortStep;
    const problem: TrainProblem = {
      params,
      planStep: (step) => {
        const examples = step < opts.pretrainSteps ? spans.next() : instruct.next();
        if (onOrt) {
          const batch = collate(examples, cfg);
          return { gradients: (values) => onOrt.run(values, batch), tokens: batch.tokens };
        }
        const micro = microBatches(examples, cfg, microTokens);
        return { losses: micro.batches.map((batch) => () => batchLoss(model, batch)), tokens: micro.tokens };
      },
      cursor: () => ({ instruct: instruct.cursor, span: { ...spans.position } }),
      restoreCursor: (c, where) => {
        if (!isCursor(c.instruct) || !isCursor(c.span)) throw new LorahubError('BAD_FILE', `${where}: checkpoint has no data cursors`);
        instruct.cursor = c.instruct;
        spans.position = { ...c.span };
      },
    };
    const loop = await runTraining(problem, {
      steps: opts.steps,
      lr: opts.lr,
      adam: { weightDecay },
      clipNorm: opts.clipNorm ?? 1,
      seed: opts.seed,
      checkpoint: opts.checkpoint,
      resume: opts.resume,
      run: {
        kind: 'base',
        // Absent for tfjs, so that checkpoints written before the ort engine still resume.
        ...(onOrt ? { engine: 'ort' } : {}),
        size: opts.size,
        // Absent for bytes, so that checkpoints written before the word vocabulary still resume.
        ...(vocabulary.kind === 'bytes' ? {} : { tokenizer: vocabulary.kind, vocabulary: vocabulary.digest }),
        config: BASE_PRESETS[opts.size],
        pretrainSteps: opts.pretrainSteps,
        batchSize: opts.batchSize,
        microBatchTokens: microTokens,
        tasks: tasks.map((t) => t.name),
        maxPerTask: opts.maxPerTask ?? null,
        steps: opts.steps,
      },
      // A resumed run may go on longer, or with another learning rate (the schedule depends on the total anyway).
      runMayDiffer: ['steps', 'lr'],
      signal: opts.signal,
      onProgress: opts.onProgress,
      hooks: opts.hooks,
    });
    raw.lorahub_training.steps = loop.steps;
    const parameters = [...params.values()].reduce((s, v) => s + v.size, 0);
    return { config: raw, params, model, tokenizer: tok, tokenizerFiles: vocabulary.files, tasks, loop, parameters };
  } catch (err) {
    disposeParams(params);
    throw err;
  } finally {
    await ortStep?.release();
  }
}

/** Exact match of the model on the first `n` test examples of each task. */
export function evaluateUpstream(model: T5Model, tok: Tokenizer, tasks: readonly TaskDef[], n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tasks) out[t.name] = exactMatchAccuracy(model, tok, subset(taskExamples(t, 'test'), n)).accuracy;
  return out;
}

export interface BuildBaseOptions extends TrainBaseOptions {
  out: string;
  dtype: WeightsDtype;
  /** Upstream test examples per task for the final exact-match report (0: none). */
  evalPerTask: number;
  /** Called when training is done and saving (then evaluation) starts. */
  onPhase?: (phase: 'save' | 'evaluate', detail: string) => void;
}

export interface BuildBaseResult {
  out: string;
  config: Record<string, unknown>;
  parameters: number;
  loop: LoopResult;
  /** Exact match per upstream task, of the SAVED model (after any F16 rounding). */
  evaluation: Record<string, number>;
}

/** `lorahub train-base`: trains, writes the HF folder, then evaluates what was written. */
export async function buildBaseModel(opts: BuildBaseOptions): Promise<BuildBaseResult> {
  const r = await trainBase(opts);
  try {
    opts.onPhase?.('save', opts.out);
    saveBaseModel(opts.out, r.config, r.params, opts.dtype, r.tokenizerFiles);
  } finally {
    disposeParams(r.params);
  }
  let evaluation: Record<string, number> = {};
  if (opts.evalPerTask > 0) {
    opts.onPhase?.('evaluate', `${opts.evalPerTask} test examples of each of ${r.tasks.length} upstream tasks`);
    const saved = T5Model.load(opts.out);
    try {
      evaluation = evaluateUpstream(saved, r.tokenizer, r.tasks, opts.evalPerTask);
    } finally {
      saved.dispose();
    }
  }
  return { out: opts.out, config: r.config, parameters: r.parameters, loop: r.loop, evaluation };
}
