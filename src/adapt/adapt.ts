/**
 * ADAPT: the gradient-free search over composition weights (LoRAHub, Huang et al. 2024, §3).
 *
 * The base model alone (w = 0) is always scored first and the result is never worse than it.
 * Each generation the optimiser proposes a population, the evaluator scores it (in one forward
 * pass, or in worker threads), and a snapshot is handed to `checkpoint` so an interrupted run
 * can resume from its last finished generation.
 */
import { LorahubError, opt as option } from '../errors.ts';
import { createOptimizer, prepareOptimizer, SEARCH_DEFAULTS, type Optimizer, type OptimizerName } from './optimizer.ts';
import type { LqSettings } from './surrogate.ts';

/**
 * adapt's error when the base model's objective (w = 0) is NaN/∞: every candidate adds a delta to
 * the same base, so the search cannot start. adapt does not know the model; `lorahub compose`
 * recognises this message and names the model and engine (engine/types.ts nonFiniteError).
 */
export const BASE_NOT_FINITE = 'the base model (w = 0) scores a non-finite objective: check the examples and the model';

/** Scores a population of weight vectors; returns objective values (lower is better). */
export interface Evaluator {
  evaluate(population: number[][]): Promise<number[]>;
  close?(): Promise<void>;
}

export interface AdaptSettings {
  optimizer: OptimizerName;
  /** Maximum objective evaluations, the initial w = 0 one included. */
  budget: number;
  /** Stop after the generation that crosses this many seconds (optional). */
  timeLimitSec?: number;
  seed: number;
  /** Initial step size (CMA-ES σ₀; random search and COBYLA ignore it); default SEARCH_DEFAULTS.sigma0(n). */
  sigma0?: number;
  /** Box bound b: every weight stays in [-b, b] (reference: 1.5). */
  bound: number;
  /** Population size (CMA-ES, lq-CMA-ES, random search); default SEARCH_DEFAULTS.popsize. */
  popsize?: number;
  /** CMA-ES / lq-CMA-ES mirrored sampling, for experiments (scripts/bench-search.ts --variant); default off. */
  mirrored?: boolean;
  /** lq-CMA-ES's surrogate settings, for experiments (scripts/bench-search.ts --variant); default DEFAULT_LQ_SETTINGS. */
  lq?: Partial<LqSettings>;
}

/** ADAPT's defaults, as the CLI shows them; stated (with the measurements behind them) in optimizer.ts SEARCH_DEFAULTS. */
export const DEFAULT_POPSIZE = SEARCH_DEFAULTS.popsize;

export const DEFAULT_SETTINGS: Readonly<Omit<AdaptSettings, 'seed'>> = Object.freeze({
  optimizer: SEARCH_DEFAULTS.optimizer,
  budget: SEARCH_DEFAULTS.budget,
  bound: SEARCH_DEFAULTS.bound,
});

export interface GenerationRecord {
  generation: number;
  /** Evaluations so far (after this generation). */
  evaluations: number;
  /** Seconds since the start of the run (resumed runs continue the clock). */
  seconds: number;
  /** Best objective so far. */
  best: number;
  /** This generation's candidates and values (+∞ for a non-finite objective). */
  candidates: number[][];
  values: number[];
}

export interface AdaptResult {
  weights: number[];
  objective: number;
  /** Objective of the base model alone (w = 0). */
  baseObjective: number;
  evaluations: number;
  seconds: number;
  generations: number;
  stopReason: string;
  /** Candidates whose objective was NaN/∞ (scored +∞, reported, never fatal). */
  nonFinite: number;
  trace: GenerationRecord[];
}

/** What a checkpoint holds: enough to continue the run exactly. */
export interface AdaptSnapshot {
  version: 1;
  dim: number;
  settings: AdaptSettings;
  trace: GenerationRecord[];
  evaluations: number;
  seconds: number;
  best: { weights: number[]; objective: number };
  baseObjective: number;
  nonFinite: number;
  optimizer: unknown;
}

export interface AdaptHooks {
  onGeneration?(rec: GenerationRecord, settings: AdaptSettings): void;
  checkpoint?(snapshot: AdaptSnapshot): void;
  /** Polled between generations: true stops the run (Ctrl-C) after checkpointing. */
  interrupted?(): boolean;
}

function sanitize(values: number[], expected: number): { values: number[]; bad: number } {
  if (values.length !== expected) throw new LorahubError('NUMERIC', `evaluator returned ${values.length} values for ${expected} candidates`);
  let bad = 0;
  const out = values.map((v) => {
    if (Number.isFinite(v)) return v;
    bad++;
    return Number.POSITIVE_INFINITY;
  });
  return { values: out, bad };
}

export async function adapt(dim: number, evaluator: Evaluator, settings: AdaptSettings, hooks: AdaptHooks = {}, resume?: AdaptSnapshot): Promise<AdaptResult> {
  if (dim < 1) throw new LorahubError('INTERNAL', 'adapt: no modules to weight');
  if (!Number.isInteger(settings.budget) || settings.budget < 1) throw new LorahubError('BAD_ARGUMENT', `${option('budget')} must be a positive integer, got ${settings.budget}`);
  if (!(Number.isFinite(settings.bound) && settings.bound > 0)) throw new LorahubError('BAD_ARGUMENT', `${option('bound')} must be a positive number, got ${settings.bound}`);
  const t0 = performance.now();
  const clock = (offset: number) => offset + (performance.now() - t0) / 1000;
  let opt: Optimizer;
  // The settings the run goes by: `auto` resolved, so checkpoints and hooks see the search that runs.
  let s: AdaptSettings;
  let trace: GenerationRecord[];
  let evaluations: number;
  let best: { weights: number[]; objective: number };
  let baseObjective: number;
  let nonFinite: number;
  let offset = 0;
  await prepareOptimizer((resume?.settings ?? settings).optimizer);
  if (resume) {
    if (resume.dim !== dim) throw new LorahubError('INCOMPATIBLE', `resume: the run has ${resume.dim} modules, not ${dim}`);
    opt = createOptimizer(resume.settings.optimizer, optimizerConfig(dim, resume.settings), resume.optimizer);
    s = resume.settings;
    ({ trace, evaluations, best, baseObjective, nonFinite } = structuredClone(resume));
    offset = resume.seconds;
  } else {
    opt = createOptimizer(settings.optimizer, optimizerConfig(dim, settings));
    s = { ...settings, optimizer: opt.name };
    const lambda = opt.popsize;
    if (settings.budget < 1 + lambda) {
      throw new LorahubError(
        'BAD_ARGUMENT',
        `${option('budget')} ${settings.budget} is too small: the base model (1 evaluation) and one ${s.optimizer} generation (${lambda} candidates) need at least ${1 + lambda}`,
      );
    }
    const zero = new Array<number>(dim).fill(0);
    const { values, bad } = sanitize(await evaluator.evaluate([zero]), 1);
    baseObjective = values[0];
    nonFinite = bad;
    if (!Number.isFinite(baseObjective)) {
      throw new LorahubError('NUMERIC', BASE_NOT_FINITE);
    }
    opt.observe?.([zero], values);
    evaluations = 1;
    best = { weights: zero, objective: baseObjective };
    const rec: GenerationRecord = { generation: 0, evaluations, seconds: clock(0), best: baseObjective, candidates: [zero], values };
    trace = [rec];
    hooks.onGeneration?.(rec, s);
  }
  let stopReason = 'budget';
  for (;;) {
    if (opt.done()) {
      stopReason = opt.stopReason() ?? 'converged';
      break;
    }
    if (s.timeLimitSec !== undefined && clock(offset) >= s.timeLimitSec) {
      stopReason = 'time-limit';
      break;
    }
    if (hooks.interrupted?.()) {
      stopReason = 'interrupted';
      break;
    }
    const xs = opt.ask();
    if (xs.length === 0) {
      // COBYLA can stop on its own (NLopt's tolerance met) only when asked for its next point.
      stopReason = opt.stopReason() ?? 'converged';
      break;
    }
    const { values, bad } = sanitize(await evaluator.evaluate(xs), xs.length);
    nonFinite += bad;
    opt.tell(xs, values);
    evaluations += xs.length;
    values.forEach((v, i) => {
      if (v < best.objective) best = { weights: xs[i].slice(), objective: v };
    });
    const rec: GenerationRecord = { generation: trace.length, evaluations, seconds: clock(offset), best: best.objective, candidates: xs, values };
    trace.push(rec);
    hooks.onGeneration?.(rec, s);
    hooks.checkpoint?.({
      version: 1,
      dim,
      settings: s,
      trace,
      evaluations,
      seconds: rec.seconds,
      best,
      baseObjective,
      nonFinite,
      optimizer: opt.state(),
    });
  }
  return {
    weights: best.weights,
    objective: best.objective,
    baseObjective,
    evaluations,
    seconds: clock(offset),
    generations: trace.length - 1,
    stopReason,
    nonFinite,
    trace,
  };
}

function optimizerConfig(dim: number, s: AdaptSettings) {
  return {
    dim,
    x0: new Array<number>(dim).fill(0),
    sigma0: s.sigma0,
    lower: -s.bound,
    upper: s.bound,
    // The w = 0 evaluation is spent before the optimiser starts.
    budget: s.budget - 1,
    seed: s.seed,
    popsize: s.popsize,
    mirrored: s.mirrored,
    lq: s.lq,
  };
}
