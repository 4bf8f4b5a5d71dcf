/**
 * `lorahub compose` as a library call: resolve the few-shot set, the base model and the modules,
 * run ADAPT, then save the composed adapter (PEFT), report.json, the loss curve, and — when the
 * task has a test split — exact-match accuracy of the base model vs the composed module.
 *
 * The run folder is resumable: run.json holds everything needed to rebuild the objective and
 * state.json the last finished generation (written atomically after each one).
 */
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openEngine } from '../engine/index.ts';
import { nonFiniteError, type DeviceName, type EngineInfo, type EngineModel, type EngineName, type EngineOptions } from '../engine/types.ts';
import { LorahubError } from '../errors.ts';
import { evaluateExactMatch } from '../eval/evaluate.ts';
import { makeDir, writeFileAtomic } from '../io/atomic.ts';
import { writeAdapter } from '../io/peft.ts';
import { loadBaseModel, openLibraryIfExists, resolveModules, samplePool, type Library } from '../library/index.ts';
import { composeStackModule, stackModules, type Harmonize, type ModuleStack } from '../lora/compose.ts';
import { fewShot, getTask, loadExamplesFile, taskExamples, type TextExample } from '../tasks/index.ts';
import { Rng } from '../rng.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { adapt, BASE_NOT_FINITE, type AdaptResult, type AdaptSettings, type AdaptSnapshot, type Evaluator, type GenerationRecord } from './adapt.ts';
import { autoWorkers, BatchedEvaluator, WorkerEvaluator } from './evaluator.ts';
import { buildFewShotBatch, FewShotObjective, type LossNormalization, type ObjectiveOptions } from './objective.ts';
import { lossCurveSvg } from './plot.ts';

export interface ComposeRequest {
  task?: string;
  /** Few-shot examples from a file (BBH json or jsonl) instead of a task's train split. */
  data?: string;
  /** Test examples from a file (else the task's test split, if any). */
  testData?: string;
  model?: string;
  library?: string;
  /** Library names or adapter folders; else `numModules` sampled from the library. */
  modules?: string[];
  numModules: number;
  numModulesExplicit?: boolean;
  harmonize: Harmonize;
  examples: number;
  examplesExplicit?: boolean;
  settings: AdaptSettings;
  normalization: LossNormalization;
  batchSize?: number;
  alpha: number;
  workers: number | 'auto';
  out: string;
  /** The forward engine (--engine, --device, --threads, --backend); default: auto. */
  engine?: EngineOptions;
  /** Skip the accuracy evaluation. */
  noEval?: boolean;
  /** Limit the number of test examples evaluated. */
  testLimit?: number;
}

/** What run.json records: the resolved request. */
export interface RunSpec {
  version: 1;
  task: string | null;
  data: string | null;
  testData: string | null;
  modelDir: string;
  library: string | null;
  moduleItems: string[];
  moduleNames: string[];
  harmonize: Harmonize;
  examples: TextExample[];
  objective: ObjectiveOptions;
  settings: AdaptSettings;
  /** Whether the run ends with the accuracy evaluation (absent in runs saved before it was recorded: yes). */
  noEval?: boolean;
  testLimit?: number;
}

export interface ComposeReport {
  version: 1;
  task: string | null;
  data: string | null;
  model: string;
  modules: string[];
  weights: number[];
  objective: number;
  base_objective: number;
  evaluations: number;
  generations: number;
  seconds: number;
  stop_reason: string;
  non_finite_candidates: number;
  zero_shot_accuracy: number | null;
  accuracy: number | null;
  test_examples: number;
  engine: EngineName;
  device: DeviceName;
  /** Threads one forward pass of the search used (per worker when there are workers). */
  threads: number;
  /** The package (and tfjs backend / execution provider) that ran the forward passes. */
  backend: string;
  workers: number;
  seed: number;
  settings: AdaptSettings & { loss_normalization: LossNormalization; alpha: number; batch_size: number | null; examples: number; harmonize: Harmonize };
  timings: { load_s: number; search_s: number; evaluate_s: number; total_s: number; evaluations_per_s: number };
  examples: TextExample[];
  trace: { generation: number; evaluations: number; seconds: number; best: number; values: number[]; candidates: number[][] }[];
  outputs: { adapter: string; report: string; loss_curve: string };
  resumed: boolean;
}

export interface ComposeHooks {
  onStart?(info: { modules: string[]; dim: number; budget: number; popsize: number | undefined; workers: number; engine: EngineInfo }): void;
  onGeneration?(rec: GenerationRecord, settings: AdaptSettings): void;
  onPhase?(phase: 'load' | 'search' | 'evaluate' | 'save', detail?: string): void;
  interrupted?(): boolean;
}

function resolveFewShot(req: ComposeRequest): TextExample[] {
  if (req.task && req.data) throw new LorahubError('BAD_ARGUMENT', 'give --task or --data, not both');
  if (!req.task && !req.data) throw new LorahubError('BAD_ARGUMENT', 'give --task NAME or --data FILE');
  if (!Number.isInteger(req.examples) || req.examples < 1) throw new LorahubError('BAD_ARGUMENT', `--examples must be a positive integer, got ${req.examples}`);
  if (req.task) {
    const task = getTask(req.task);
    const pool = taskExamples(task, 'train');
    if (pool.length < req.examples) {
      throw new LorahubError('BAD_ARGUMENT', `task "${task.name}" has ${pool.length} training examples, fewer than --examples ${req.examples}`);
    }
    return fewShot(task, req.examples, req.settings.seed);
  }
  const all = loadExamplesFile(req.data as string);
  if (all.length < req.examples) {
    if (req.examplesExplicit) {
      throw new LorahubError('BAD_ARGUMENT', `${req.data}: ${all.length} examples, fewer than --examples ${req.examples}`);
    }
    return all;
  }
  if (all.length === req.examples) return all;
  // More examples than asked: a seeded sample, like the reference's random few-shot draw.
  return sampleSeeded(all, req.examples, req.settings.seed);
}

/** A seeded draw of k lines (kept in file order), like the reference's random few-shot sample. */
function sampleSeeded(all: TextExample[], k: number, seed: number): TextExample[] {
  const idx = Rng.fromSeed(seed).shuffle(all.map((_, i) => i)).slice(0, k);
  return idx.sort((a, b) => a - b).map((i) => all[i]);
}

function testExamples(spec: RunSpec, limit?: number): TextExample[] {
  let test: TextExample[] = [];
  if (spec.testData) test = loadExamplesFile(spec.testData);
  else if (spec.task) test = taskExamples(getTask(spec.task), 'test');
  return limit !== undefined ? test.slice(0, limit) : test;
}

/**
 * The run's modules as one stack. Only the stack is kept: the modules' own arrays die with this
 * call, so 20 FLAN-T5-large modules (~19 MB each) are not held twice beside the stack.
 */
async function loadStack(spec: RunSpec, lib: Library | undefined): Promise<ModuleStack> {
  const base = await loadBaseModel(spec.modelDir);
  return stackModules(await resolveModules(spec.moduleItems, { library: lib, base }), spec.harmonize);
}

/** Resolves a request into a RunSpec (few-shot set, model, modules). */
export async function planCompose(req: ComposeRequest): Promise<{ spec: RunSpec; lib: Library | undefined }> {
  const examples = resolveFewShot(req);
  const lib = await openLibraryIfExists(req.library);
  const modelDir = req.model ?? lib?.defaultBaseDir();
  if (!modelDir) throw new LorahubError('BAD_ARGUMENT', `no --model given and no default base model in ${req.library ?? './modules'}`);
  let items = req.modules;
  if (!items) {
    if (!lib) throw new LorahubError('BAD_ARGUMENT', 'no --modules given and no module library (./modules or --library DIR) to sample from');
    const base = await loadBaseModel(modelDir);
    const candidates = samplePool(lib, base.fingerprint);
    if (candidates.length === 0) throw new LorahubError('NOT_FOUND', `library ${lib.dir} has no module compatible with ${modelDir}`);
    if (candidates.length < req.numModules && req.numModulesExplicit) {
      throw new LorahubError('BAD_ARGUMENT', `library ${lib.dir} has ${candidates.length} modules compatible with ${modelDir}, fewer than --num-modules ${req.numModules}`);
    }
    items = lib.sampleCompatible(Math.min(req.numModules, candidates.length), req.settings.seed, base.fingerprint).map((e) => e.name);
  }
  const spec: RunSpec = {
    version: 1,
    task: req.task ?? null,
    data: req.data ? resolve(req.data) : null,
    testData: req.testData ? resolve(req.testData) : null,
    modelDir: resolve(modelDir),
    library: lib ? resolve(lib.dir) : null,
    moduleItems: items,
    moduleNames: [],
    harmonize: req.harmonize,
    examples,
    objective: { alpha: req.alpha, normalization: req.normalization, batchSize: req.batchSize, harmonize: req.harmonize },
    settings: req.settings,
    noEval: req.noEval ?? false,
    testLimit: req.testLimit,
  };
  return { spec, lib };
}

/**
 * Makes the run folder of a new run before anything is loaded, so that a place that cannot take
 * it fails at once (not after the search), and refuses one that holds a run (resume it instead)
 * or anything else (a run would mix its files with someone else's). Returns whether it made the
 * folder (runCompose removes it again, while still empty, when the run fails).
 */
function prepareRunFolder(out: string): boolean {
  const made = !existsSync(out);
  makeDir(out);
  const entries = readdirSync(out);
  if (entries.includes('run.json')) {
    throw new LorahubError('BAD_ARGUMENT', `${out} already holds a run (use --resume ${out}, or another --out)`);
  }
  if (entries.length > 0) {
    throw new LorahubError('BAD_ARGUMENT', `${out} is not empty and holds no run: give --out a new or empty folder`);
  }
  return made;
}

function readJsonFile<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (cause) {
    throw new LorahubError('BAD_FILE', `${file}: cannot read (${(cause as Error).message})`, { cause });
  }
}

/**
 * Runs (or resumes) a composition. `resumeDir`: continue the run saved there with the settings in
 * its run.json; `req` then only supplies the workers and the engine.
 */
export async function runCompose(req: ComposeRequest, hooks: ComposeHooks = {}, resumeDir?: string): Promise<ComposeReport> {
  const t0 = performance.now();
  hooks.onPhase?.('load');
  const engine = await openEngine(req.engine);
  let spec: RunSpec;
  let lib: Library | undefined;
  let snapshot: AdaptSnapshot | undefined;
  const out = resumeDir ?? req.out;
  if (resumeDir) {
    spec = readJsonFile<RunSpec>(join(resumeDir, 'run.json'));
    if (spec.version !== 1) throw new LorahubError('BAD_FILE', `${resumeDir}/run.json: unknown version ${String(spec.version)}`);
    lib = await openLibraryIfExists(spec.library ?? undefined);
    const statePath = join(resumeDir, 'state.json');
    if (existsSync(statePath)) snapshot = readJsonFile<AdaptSnapshot>(statePath);
  } else {
    ({ spec, lib } = await planCompose(req));
  }
  const resumed = resumeDir !== undefined;
  const madeOut = resumed ? false : prepareRunFolder(out);
  let model: EngineModel | undefined;
  try {
    model = await engine.load(spec.modelDir);
    const tok = loadTokenizer(spec.modelDir);
    // Validated (ranks, targets, scalings) and harmonised before any search; see loadStack.
    const stack = await loadStack(spec, lib);
    spec.moduleNames = stack.names;
    const dim = stack.names.length;
    const batch = buildFewShotBatch(tok, spec.examples);
    const objective = new FewShotObjective(model, stack, batch, spec.objective);
    if (!resumed) writeFileAtomic(join(out, 'run.json'), `${JSON.stringify(spec, null, 2)}\n`);
    const info = model.info;
    const workers = req.workers === 'auto' ? autoWorkers(info.engine) : req.workers;
    // Workers split the engine's threads, and load on the engine resolved here (never auto again).
    const threads = workers > 1 ? Math.max(1, Math.floor(info.threads / workers)) : info.threads;
    const evaluator: Evaluator =
      workers > 1
        ? new WorkerEvaluator({
            workers,
            modelDir: spec.modelDir,
            stack,
            batch,
            objective: objective.options,
            engine: { engine: info.engine, device: info.device, threads, backend: req.engine?.backend },
          })
        : new BatchedEvaluator(objective);
    if (evaluator instanceof WorkerEvaluator) await evaluator.ready();
    const tLoad = performance.now();
    hooks.onStart?.({ modules: spec.moduleNames, dim, budget: spec.settings.budget, popsize: spec.settings.popsize, workers, engine: info });
    hooks.onPhase?.('search');
    let result: AdaptResult;
    try {
      result = await adapt(
        dim,
        evaluator,
        spec.settings,
        {
          onGeneration: hooks.onGeneration,
          interrupted: hooks.interrupted,
          checkpoint: (s) => writeFileAtomic(join(out, 'state.json'), JSON.stringify(s)),
        },
        snapshot,
      );
    } catch (err) {
      // adapt() does not know the model: name it and the engine, as score, generate and eval do.
      if (err instanceof LorahubError && err.message === BASE_NOT_FINITE) throw nonFiniteError(model, "the base model's few-shot objective (w = 0)", err);
      throw err;
    } finally {
      await evaluator.close?.();
    }
    const tSearch = performance.now();
    if (result.stopReason === 'interrupted') {
      throw new LorahubError('INTERRUPTED', `interrupted after ${result.evaluations} evaluations; resume with: lorahub compose --resume ${out}`);
    }
    const composed = composeStackModule(stack, result.weights, 'lorahub-composed');
    const test = spec.noEval ? [] : testExamples(spec, spec.testLimit);
    hooks.onPhase?.('evaluate', test.length > 0 ? `${test.length} test examples` : undefined);
    const zeroShot = test.length > 0 ? (await evaluateExactMatch(model, tok, test)).accuracy : null;
    const acc = test.length > 0 ? (await evaluateExactMatch(model, tok, test, composed)).accuracy : null;
    const tEval = performance.now();
    hooks.onPhase?.('save');
    const adapterDir = join(out, 'adapter');
    composed.config = { ...composed.config, base_model_name_or_path: spec.modelDir };
    await writeAdapter(adapterDir, composed);
    const svgPath = join(out, 'loss-curve.svg');
    writeFileAtomic(svgPath, await lossCurveSvg(result.trace, `lorahub compose ${spec.task ?? spec.data ?? ''} (seed ${spec.settings.seed})`));
    const searchS = (tSearch - tLoad) / 1000;
    const report: ComposeReport = {
      version: 1,
      task: spec.task,
      data: spec.data,
      model: spec.modelDir,
      modules: spec.moduleNames,
      weights: result.weights,
      objective: result.objective,
      base_objective: result.baseObjective,
      evaluations: result.evaluations,
      generations: result.generations,
      seconds: result.seconds,
      stop_reason: result.stopReason,
      non_finite_candidates: result.nonFinite,
      zero_shot_accuracy: zeroShot,
      accuracy: acc,
      test_examples: test.length,
      engine: info.engine,
      device: info.device,
      threads,
      backend: info.provider,
      workers,
      seed: spec.settings.seed,
      settings: {
        ...spec.settings,
        loss_normalization: spec.objective.normalization,
        alpha: spec.objective.alpha,
        batch_size: spec.objective.batchSize ?? null,
        examples: spec.examples.length,
        harmonize: spec.harmonize,
      },
      timings: {
        load_s: (tLoad - t0) / 1000,
        search_s: searchS,
        evaluate_s: (tEval - tSearch) / 1000,
        total_s: (performance.now() - t0) / 1000,
        evaluations_per_s: result.evaluations / Math.max(result.seconds, 1e-9),
      },
      examples: spec.examples,
      trace: result.trace,
      outputs: { adapter: adapterDir, report: join(out, 'report.json'), loss_curve: svgPath },
      resumed,
    };
    writeFileAtomic(join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } catch (err) {
    // A new run that failed before writing anything leaves no empty folder behind.
    if (madeOut && readdirSync(out).length === 0) rmdirSync(out);
    throw err;
  } finally {
    // Every path, errors and interruptions included: an ort session or tfjs weights are not freed by GC.
    await model?.dispose();
  }
}
