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
import { LorahubError, opt } from '../errors.ts';
import { evaluateExactMatch } from '../eval/evaluate.ts';
import { makeDir, removeAbandonedTemps, writeFileAtomic } from '../io/atomic.ts';
import { writeAdapter } from '../io/peft.ts';
import { loadBaseModel, openLibraryIfExists, resolveModules, samplePool, type Library } from '../library/index.ts';
import { composeStackModule, stackModules, type Harmonize, type ModuleStack } from '../lora/compose.ts';
import type { LoraModule } from '../lora/module.ts';
import { drawExamples, fewShot, getTask, loadDataFile, taskExamples, type Example, type FewShotDraw } from '../tasks/index.ts';
import { Rng } from '../rng.ts';
import { LazyTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';
import { adapt, BASE_NOT_FINITE, type AdaptResult, type AdaptSettings, type AdaptSnapshot, type Evaluator, type GenerationRecord } from './adapt.ts';
import { autoWorkers, BatchedEvaluator, WorkerEvaluator } from './evaluator.ts';
import { buildFewShotBatch, FewShotObjective, l1Regularization, type FewShotBatch, type LossNormalization, type ObjectiveOptions } from './objective.ts';
import { lossCurveSvg } from './plot.ts';
import { resolveOptimizer } from './optimizer.ts';
import { scoreModulesAlone, selectLowest, type Selection } from './select.ts';

/** Modules sampled from the library when none are named (the paper's 20). */
export const DEFAULT_NUM_MODULES = 20;
/**
 * `compose --select K` by default: the K modules of the library with the lowest few-shot loss
 * alone (select.ts). Measured with `npm run bench:fewshot -- --select …` on real BBH with the
 * shipped fourth edition (README, "The few-shot objective"): of K = 5, 8, 12 and the paper's 20
 * at random, 12 had the best mean over six targets (51.3% against 49.3% for 5 and 49.4% at
 * random) and, unlike 5, closes brackets above the label prior on dyck_languages; on
 * boolean_expressions' fresh seeds 6–15, 85.9% against 84.8% (5) and 81.7% (random).
 */
export const DEFAULT_SELECT = 12;
/**
 * Few-shot examples: 20, not the paper's 5, and drawn with the answers taking turns, not at
 * random. Measured with `npm run bench:fewshot` on real BBH boolean_expressions, 5 seeds (README,
 * "The few-shot objective"): 5 → 20 examples +3 to +8 points of accuracy at every L1 strength;
 * balanced above random in all 9 (L1 strength, examples) pairs, by 0.6 to 4.1 points.
 */
export const DEFAULT_EXAMPLES = 20;
export const DEFAULT_DRAW: FewShotDraw = 'balanced';

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
  /** How the few-shot examples are drawn from a larger pool (default DEFAULT_DRAW). */
  draw?: FewShotDraw;
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
  /** More test files (e.g. the real BBH file of the task), each evaluated like the test set. */
  alsoTest?: string[];
  /** Also evaluate every module alone on each test set and report the best (default false; the CLI's default is on). */
  bestSingle?: boolean;
  /**
   * Compose only the K modules whose few-shot objective alone is lowest (select.ts), chosen from
   * `modules` or, without them, from every library module compatible with the base (then
   * `numModules` does not apply). Absent: no selection.
   */
  select?: number;
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
  examples: Example[];
  objective: ObjectiveOptions;
  settings: AdaptSettings;
  /** Whether the run ends with the accuracy evaluation (absent in runs saved before it was recorded: yes). */
  noEval?: boolean;
  testLimit?: number;
  /** How the examples were drawn (absent in older runs: random). */
  draw?: FewShotDraw;
  /** Absent in older runs: none, and no best single module. */
  alsoTest?: string[];
  bestSingle?: boolean;
  /** K of `compose --select`; absent in runs without selection (and in older runs). */
  select?: number;
  /**
   * Set once the selection has run (before run.json is first written): the pool it chose from
   * (`moduleItems` then holds the K chosen) and every candidate's score. A resumed run reads it
   * back and never selects again.
   */
  selection?: Selection & { poolItems: string[] };
}

/** Exact match on one test set: the base model, the composed module, and the best module alone. */
export interface TestResult {
  /** "task <name> test split" or the file's path. */
  source: string;
  examples: number;
  zero_shot: number;
  composed: number;
  /** The best of the run's modules evaluated alone (weight 1), chosen on this test set as in the paper's table. */
  best_single: { module: string; accuracy: number } | null;
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
  /**
   * The composed module whose weight-1 point is the result, when it scored below everything the
   * search found (a search cut short by --budget or --time-limit); null otherwise (notWorseThanBestSingle).
   */
  single_module_result: string | null;
  non_finite_candidates: number;
  zero_shot_accuracy: number | null;
  accuracy: number | null;
  test_examples: number;
  /** Every test set evaluated (the first is the one above), with the best single module. */
  tests: TestResult[];
  /** With --select: K, the size of the pool and each candidate's objective alone, lowest first; else null. */
  selection: Selection | null;
  engine: EngineName;
  device: DeviceName;
  /** Threads one forward pass of the search used (per worker when there are workers). */
  threads: number;
  /** The package (and tfjs backend / execution provider) that ran the forward passes. */
  backend: string;
  workers: number;
  seed: number;
  settings: AdaptSettings & { loss_normalization: LossNormalization; alpha: number; batch_size: number | null; examples: number; draw: FewShotDraw; harmonize: Harmonize };
  /** select_s: the --select pass (0 without one, and on resume). */
  timings: { load_s: number; select_s: number; search_s: number; evaluate_s: number; total_s: number; evaluations_per_s: number };
  examples: Example[];
  trace: { generation: number; evaluations: number; seconds: number; best: number; values: number[]; candidates: number[][] }[];
  outputs: { adapter: string; report: string; loss_curve: string };
  resumed: boolean;
}

export interface ComposeHooks {
  onStart?(info: { modules: string[]; dim: number; budget: number; popsize: number | undefined; workers: number; engine: EngineInfo }): void;
  onGeneration?(rec: GenerationRecord, settings: AdaptSettings): void;
  onPhase?(phase: 'load' | 'select' | 'search' | 'evaluate' | 'save', detail?: string): void;
  interrupted?(): boolean;
}

function resolveFewShot(req: ComposeRequest): Example[] {
  if (req.task && req.data) throw new LorahubError('BAD_ARGUMENT', `give ${opt('task')} or ${opt('data')}, not both`);
  if (!req.task && !req.data) throw new LorahubError('BAD_ARGUMENT', `give ${opt('task')} or ${opt('data')}`);
  if (!Number.isInteger(req.examples) || req.examples < 1) throw new LorahubError('BAD_ARGUMENT', `${opt('examples')} must be a positive integer, got ${req.examples}`);
  if (req.task) {
    const task = getTask(req.task);
    const pool = taskExamples(task, 'train');
    if (pool.length < req.examples) {
      throw new LorahubError('BAD_ARGUMENT', `task "${task.name}" has ${pool.length} training examples, fewer than ${opt('examples')} ${req.examples}`);
    }
    return fewShot(task, req.examples, req.settings.seed, req.draw ?? DEFAULT_DRAW);
  }
  // Text or token ids (a model folder without tokenizer files composes from ids).
  const all = loadDataFile(req.data as string);
  if (all.length < req.examples) {
    if (req.examplesExplicit) {
      throw new LorahubError('BAD_ARGUMENT', `${req.data}: ${all.length} examples, fewer than ${opt('examples')} ${req.examples}`);
    }
    return all;
  }
  if (all.length === req.examples) return all;
  // More examples than asked: a seeded sample, like the reference's random few-shot draw.
  return sampleSeeded(all, req.examples, req.settings.seed, req.draw ?? DEFAULT_DRAW);
}

/** A seeded draw of k lines (kept in file order), like the reference's random few-shot sample. */
function sampleSeeded(all: Example[], k: number, seed: number, draw: FewShotDraw): Example[] {
  const rng = Rng.fromSeed(seed);
  const idx =
    draw === 'random'
      ? rng.shuffle(all.map((_, i) => i)).slice(0, k)
      : drawExamples(all.map((e, i) => ({ target: e.target ?? JSON.stringify(e.labels ?? null), i })), k, rng, draw).map((e) => e.i);
  return idx.sort((a, b) => a - b).map((i) => all[i]);
}

/** The test sets to evaluate: the main one (a file, else the task's test split), then alsoTest. */
function testSets(spec: RunSpec): { source: string; examples: Example[] }[] {
  if (spec.noEval) return [];
  const limit = (test: Example[]) => (spec.testLimit !== undefined ? test.slice(0, spec.testLimit) : test);
  const sets: { source: string; examples: Example[] }[] = [];
  if (spec.testData) sets.push({ source: spec.testData, examples: limit(loadDataFile(spec.testData)) });
  else if (spec.task) sets.push({ source: `task ${spec.task} test split`, examples: limit(taskExamples(getTask(spec.task), 'test')) });
  for (const file of spec.alsoTest ?? []) sets.push({ source: file, examples: limit(loadDataFile(file)) });
  return sets.filter((t) => t.examples.length > 0);
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
  if (!modelDir) throw new LorahubError('BAD_ARGUMENT', `no ${opt('model')} given and no default base model in ${req.library ?? './modules'}`);
  let items = req.modules;
  if (req.select !== undefined) {
    if (!Number.isInteger(req.select) || req.select < 1) throw new LorahubError('BAD_ARGUMENT', `${opt('select')} must be a positive integer, got ${req.select}`);
    if (!items) {
      if (!lib) throw new LorahubError('BAD_ARGUMENT', `no ${opt('modules')} given and no module library (./modules or ${opt('library')}) to select from`);
      // The whole compatible pool, name-sorted: the selection, not a sample, narrows it.
      items = samplePool(lib, (await loadBaseModel(modelDir)).fingerprint)
        .map((e) => e.name)
        .sort();
      if (items.length === 0) throw new LorahubError('NOT_FOUND', `library ${lib.dir} has no module compatible with ${modelDir}`);
    }
  } else if (!items) {
    if (!lib) throw new LorahubError('BAD_ARGUMENT', `no ${opt('modules')} given and no module library (./modules or ${opt('library')}) to sample from`);
    const base = await loadBaseModel(modelDir);
    const candidates = samplePool(lib, base.fingerprint);
    if (candidates.length === 0) throw new LorahubError('NOT_FOUND', `library ${lib.dir} has no module compatible with ${modelDir}`);
    if (candidates.length < req.numModules && req.numModulesExplicit) {
      throw new LorahubError('BAD_ARGUMENT', `library ${lib.dir} has ${candidates.length} modules compatible with ${modelDir}, fewer than ${opt('numModules')} ${req.numModules}`);
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
    draw: req.draw ?? DEFAULT_DRAW,
    alsoTest: (req.alsoTest ?? []).map((f) => resolve(f)),
    bestSingle: req.bestSingle ?? false,
    select: req.select,
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
    throw new LorahubError('BAD_ARGUMENT', `${out} already holds a run (resume it with ${opt('resume')} ${out}, or give another ${opt('out')})`);
  }
  if (entries.length > 0) {
    throw new LorahubError('BAD_ARGUMENT', `${out} is not empty and holds no run: give ${opt('out')} a new or empty folder`);
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

/** A run to execute: what run.json says, and where a resumed one stopped. */
interface OpenedRun {
  spec: RunSpec;
  lib: Library | undefined;
  out: string;
  snapshot?: AdaptSnapshot;
  resumed: boolean;
}

/** Step 1: plan a new run from the request, or read a saved one back (`resumeDir`). */
async function openRun(req: ComposeRequest, resumeDir: string | undefined): Promise<OpenedRun> {
  if (!resumeDir) return { ...(await planCompose(req)), out: req.out, resumed: false };
  const spec = readJsonFile<RunSpec>(join(resumeDir, 'run.json'));
  if (spec.version !== 1) throw new LorahubError('BAD_FILE', `${resumeDir}/run.json: unknown version ${String(spec.version)}`);
  // A run killed mid-write leaves its temporary files (a half-written adapter or state.json).
  removeAbandonedTemps(resumeDir);
  const statePath = join(resumeDir, 'state.json');
  const snapshot = existsSync(statePath) ? readJsonFile<AdaptSnapshot>(statePath) : undefined;
  return { spec, lib: await openLibraryIfExists(spec.library ?? undefined), out: resumeDir, snapshot, resumed: true };
}

/** Everything the search and the evaluation read, loaded once. */
interface LoadedRun {
  tok: Tokenizer;
  stack: ModuleStack;
  objective: FewShotObjective;
}

/**
 * Step 2: the tokenizer (loaded only if some example is text) and the few-shot batch — built
 * once, for the selection (step 2a) and the search alike.
 */
function loadFewShot(model: EngineModel, spec: RunSpec): { tok: Tokenizer; batch: FewShotBatch } {
  const tok = new LazyTokenizer(spec.modelDir);
  return { tok, batch: buildFewShotBatch(tok, spec.examples, model.config) };
}

/**
 * Step 2b: the module stack (validated and harmonised before any search; see loadStack) and the
 * objective over the few-shot batch.
 */
async function loadRun(model: EngineModel, spec: RunSpec, lib: Library | undefined, { tok, batch }: { tok: Tokenizer; batch: FewShotBatch }): Promise<LoadedRun> {
  const stack = await loadStack(spec, lib);
  return { tok, stack, objective: new FewShotObjective(model, stack, batch, spec.objective) };
}

/**
 * Step 2a (--select, new runs only): score every module of the pool alone on the few-shot batch
 * and keep the K lowest (select.ts). Returns the spec with `moduleItems` narrowed to them and the
 * selection recorded, so run.json holds the outcome and a resumed run does not select again.
 */
export async function selectModules(model: EngineModel, spec: RunSpec, lib: Library | undefined, batch: FewShotBatch, hooks: ComposeHooks = {}): Promise<RunSpec> {
  const pool = spec.moduleItems;
  const k = Math.min(spec.select as number, pool.length);
  hooks.onPhase?.('select', `${k} of ${pool.length} modules, by each one's few-shot loss alone`);
  const base = await loadBaseModel(spec.modelDir);
  const load = (names: string[]) => resolveModules(names, { library: lib, base });
  const scores = await scoreModulesAlone(model, pool, load, batch, spec.objective, spec.harmonize);
  const { chosen, ranked } = selectLowest(scores, k);
  return { ...spec, moduleItems: chosen.map((i) => pool[i]), selection: { k, pool: pool.length, scores: ranked, poolItems: pool } };
}

/** Step 3: who scores populations — this thread, or worker threads splitting the engine's threads. */
async function startEvaluator(req: ComposeRequest, model: EngineModel, run: LoadedRun): Promise<{ evaluator: Evaluator; workers: number; threads: number }> {
  const info = model.info;
  const workers = req.workers === 'auto' ? autoWorkers(info.engine) : req.workers;
  const threads = workers > 1 ? Math.max(1, Math.floor(info.threads / workers)) : info.threads;
  if (workers <= 1) return { evaluator: new BatchedEvaluator(run.objective), workers, threads };
  // Workers load on the engine resolved here (never auto again).
  const evaluator = new WorkerEvaluator({
    workers,
    modelDir: model.dir,
    stack: run.stack,
    batch: run.objective.batch,
    objective: run.objective.options,
    engine: { engine: info.engine, device: info.device, threads, backend: req.engine?.backend },
  });
  await evaluator.ready();
  return { evaluator, workers, threads };
}

/** Step 4: ADAPT, checkpointing every generation into the run folder. */
async function search(model: EngineModel, spec: RunSpec, opened: OpenedRun, evaluator: Evaluator, hooks: ComposeHooks): Promise<AdaptResult & { singleModule: string | null }> {
  let result: AdaptResult;
  try {
    result = await adapt(
      spec.moduleNames.length,
      evaluator,
      spec.settings,
      {
        onGeneration: hooks.onGeneration,
        interrupted: hooks.interrupted,
        checkpoint: (s) => writeFileAtomic(join(opened.out, 'state.json'), JSON.stringify(s)),
      },
      opened.snapshot,
    );
  } catch (err) {
    // adapt() does not know the model: name it and the engine, as score, generate and eval do.
    if (err instanceof LorahubError && err.message === BASE_NOT_FINITE) throw nonFiniteError(model, "the base model's few-shot objective (w = 0)", err);
    throw err;
  } finally {
    await evaluator.close?.();
  }
  if (result.stopReason === 'interrupted') {
    throw new LorahubError('INTERRUPTED', `interrupted after ${result.evaluations} evaluations; resume it with ${opt('resume')} ${opened.out}`);
  }
  return notWorseThanBestSingle(result, spec);
}

/**
 * Step 4b: the result is never worse than the best composed module alone (weight 1), as it is
 * never worse than w = 0. The selection scored each of them (the loss without its L1 term,
 * select.ts); when the best of those, L1 term added, is below the search's result (a search cut
 * short by --budget or --time-limit), that point is the result, with the selection's value as its
 * objective (its pass held other modules: equal to the composed stack's up to round-off). No
 * evaluation is added, so --budget stays a cap, and the search never sees the point, so its
 * trajectory is the one bench:search measures. With a box bound below 1 (compose --bound) weight 1
 * is outside the box the user asked for, so no module alone is a candidate.
 */
function notWorseThanBestSingle(result: AdaptResult, spec: RunSpec): AdaptResult & { singleModule: string | null } {
  if (spec.settings.bound < 1) return { ...result, singleModule: null };
  const names = spec.moduleNames;
  const unit = (i: number) => names.map((_, j) => (j === i ? 1 : 0));
  let best = -1;
  let bestValue = result.objective;
  for (const { module, loss } of spec.selection?.scores ?? []) {
    const i = names.indexOf(module);
    if (i < 0) continue;
    const value = loss + l1Regularization(unit(i), spec.objective.alpha);
    if (value < bestValue) [best, bestValue] = [i, value];
  }
  if (best < 0) return { ...result, singleModule: null };
  return { ...result, weights: unit(best), objective: bestValue, singleModule: names[best] };
}

/**
 * Step 5: exact match on each test set — the base model, the composed module and (bestSingle)
 * every module alone at weight 1, of which the best is reported: the comparison the paper makes.
 * With a selection, "every module" is the whole pool it chose from, not only the K composed, so
 * the composition is compared with the best module it could have been, not with its own parts.
 */
async function evaluateRun(model: EngineModel, tok: Tokenizer, spec: RunSpec, lib: Library | undefined, stack: ModuleStack, composed: LoraModule, hooks: ComposeHooks): Promise<TestResult[]> {
  const sets = testSets(spec);
  const pool = spec.selection?.poolItems;
  const singles = !spec.bestSingle ? 0 : (pool?.length ?? stack.names.length);
  hooks.onPhase?.(
    'evaluate',
    sets.length > 0 ? `${sets.map((t) => t.examples.length).join(' + ')} test examples${singles > 0 ? `, and each of the ${singles} modules alone` : ''}` : undefined,
  );
  const accuracy = async (examples: Example[], module?: LoraModule) => (await evaluateExactMatch(model, tok, examples, module)).accuracy;
  const results: TestResult[] = [];
  for (const { source, examples } of sets) {
    results.push({ source, examples: examples.length, zero_shot: await accuracy(examples), composed: await accuracy(examples, composed), best_single: null });
  }
  const base = pool && singles > 0 ? await loadBaseModel(spec.modelDir) : undefined;
  // Each module alone is loaded or composed once (one at a time, so N large modules are never
  // all held) and scored on every test set.
  for (let i = 0; i < singles; i++) {
    const alone = pool
      ? (await resolveModules([pool[i]], { library: lib, base }))[0]
      : composeStackModule(stack, stack.names.map((_, j) => (j === i ? 1 : 0)), stack.names[i]);
    const name = pool ? alone.name : stack.names[i];
    for (const [k, { examples }] of sets.entries()) {
      const a = await accuracy(examples, alone);
      const best = results[k].best_single;
      if (!best || a > best.accuracy) results[k].best_single = { module: name, accuracy: a };
    }
  }
  return results;
}

/** Step 6: the composed adapter (PEFT) and the loss curve, each written atomically. */
async function saveOutputs(out: string, spec: RunSpec, composed: LoraModule, result: AdaptResult): Promise<ComposeReport['outputs']> {
  const adapter = join(out, 'adapter');
  await writeAdapter(adapter, { ...composed, config: { ...composed.config, base_model_name_or_path: spec.modelDir } });
  const lossCurve = join(out, 'loss-curve.svg');
  writeFileAtomic(lossCurve, await lossCurveSvg(result.trace, `lorahub compose ${spec.task ?? spec.data ?? ''} (seed ${spec.settings.seed})`));
  return { adapter, report: join(out, 'report.json'), loss_curve: lossCurve };
}

/**
 * Runs (or resumes) a composition: open (plan or read back) → load → search → evaluate → save.
 * `resumeDir`: continue the run saved there with the settings in its run.json; `req` then only
 * supplies the workers and the engine.
 */
export async function runCompose(req: ComposeRequest, hooks: ComposeHooks = {}, resumeDir?: string): Promise<ComposeReport> {
  const t0 = performance.now();
  hooks.onPhase?.('load');
  const engine = await openEngine(req.engine);
  const opened = await openRun(req, resumeDir);
  const { out, resumed } = opened;
  const madeOut = resumed ? false : prepareRunFolder(out);
  let model: EngineModel | undefined;
  try {
    model = await engine.load(opened.spec.modelDir);
    const fewShot = loadFewShot(model, opened.spec);
    const tSelect0 = performance.now();
    const planned = opened.spec.select !== undefined && !opened.spec.selection ? await selectModules(model, opened.spec, opened.lib, fewShot.batch, hooks) : opened.spec;
    const selectS = (performance.now() - tSelect0) / 1000;
    const loaded = await loadRun(model, planned, opened.lib, fewShot);
    // `--optimizer auto` becomes the search it stands for with this many modules, in run.json and the report.
    const settings = { ...planned.settings, optimizer: resolveOptimizer(planned.settings.optimizer, loaded.stack.names.length) };
    const spec: RunSpec = { ...planned, settings, moduleNames: loaded.stack.names };
    if (!resumed) writeFileAtomic(join(out, 'run.json'), `${JSON.stringify(spec, null, 2)}\n`);
    const { evaluator, workers, threads } = await startEvaluator(req, model, loaded);
    const tLoad = performance.now();
    hooks.onStart?.({ modules: spec.moduleNames, dim: spec.moduleNames.length, budget: spec.settings.budget, popsize: spec.settings.popsize, workers, engine: model.info });
    hooks.onPhase?.('search');
    const result = await search(model, spec, opened, evaluator, hooks);
    const tSearch = performance.now();
    const composed = composeStackModule(loaded.stack, result.weights, 'lorahub-composed');
    const tests = await evaluateRun(model, loaded.tok, spec, opened.lib, loaded.stack, composed, hooks);
    const tEval = performance.now();
    hooks.onPhase?.('save');
    const outputs = await saveOutputs(out, spec, composed, result);
    const info = model.info;
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
      single_module_result: result.singleModule,
      non_finite_candidates: result.nonFinite,
      zero_shot_accuracy: tests[0]?.zero_shot ?? null,
      accuracy: tests[0]?.composed ?? null,
      test_examples: tests[0]?.examples ?? 0,
      tests,
      selection: spec.selection ? { k: spec.selection.k, pool: spec.selection.pool, scores: spec.selection.scores } : null,
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
        draw: spec.draw ?? 'random',
        harmonize: spec.harmonize,
      },
      timings: {
        load_s: (tLoad - t0) / 1000 - selectS,
        select_s: selectS,
        search_s: (tSearch - tLoad) / 1000,
        evaluate_s: (tEval - tSearch) / 1000,
        total_s: (performance.now() - t0) / 1000,
        evaluations_per_s: result.evaluations / Math.max(result.seconds, 1e-9),
      },
      examples: spec.examples,
      trace: result.trace,
      outputs,
      resumed,
    };
    writeFileAtomic(outputs.report, `${JSON.stringify(report, null, 2)}\n`);
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
