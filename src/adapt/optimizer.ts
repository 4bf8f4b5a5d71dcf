/**
 * One ask/tell interface over the searches LoRAHub composition can use, so that a
 * population-parallel scorer drives all of them the same way, and ADAPT's default search
 * settings in one place (`SEARCH_DEFAULTS`):
 *
 *   const opt = createOptimizer('cmaes', { dim, lower: -1.5, upper: 1.5, budget: 40, seed });
 *   while (!opt.done()) { const xs = opt.ask(); opt.tell(xs, await scoreAll(xs)); }
 *   opt.best();
 *
 * - `auto` (the default): `cobyla-lq` for at most `SEARCH_DEFAULTS.lqMaxModules` modules, `cobyla`
 *   above; `createOptimizer` resolves it from `dim`, and the optimiser it builds carries the real name.
 * - `cobyla-lq`: COBYLA for the reference's budget (`SEARCH_DEFAULTS.cobylaEvaluations`, the w = 0
 *   evaluation observed included), then lq-CMA-ES from COBYLA's best point with σ₀
 *   `SEARCH_DEFAULTS.chainSigma0`, every evaluation so far in its surrogate's archive. Its first 40 points are COBYLA@40's, so it is never behind the
 *   reference at the reference's budget; the rest of the budget goes to the search that ends lower.
 * - `lq-cmaes`: CMA-ES with a linear-quadratic surrogate (surrogate.ts; Hansen, GECCO 2019):
 *   single-module probes first, then generations whose candidates the model ranks, so that
 *   `ask()` hands out only the few a generation must truly evaluate (1 to λ).
 * - `cmaes`: CMA-ES (cmaes.ts), λ candidates per `ask()`, the search the LoRAHub paper describes.
 * - `cobyla`: COBYLA (Powell 1994) from NLopt via nlopt-js (cobyla.ts). The reference lorahub
 *   code calls nevergrad's `NGOpt(budget=40)`, which for 20 bounded weights picks COBYLA; this
 *   lets us compare against that. It is sequential: one candidate per `ask()`; it needs
 *   `await prepareOptimizer('cobyla')` once (nlopt-js initialises asynchronously) and finite
 *   bounds; `sigma0` and `popsize` do not apply to it.
 * - `random`: uniform samples in the box, a floor to compare against.
 *
 * Budget: `budget` counts evaluations (told values). No optimiser asks for more than the
 * remaining budget; CMA-ES's last generation is cut short when λ does not divide the budget
 * (those points still count for `best()`, but a partial generation cannot update CMA-ES).
 * Values that are NaN count as +Infinity (worst).
 */
import { LorahubError } from '../errors.ts';
import { CMAES, cmaesParameters, type CmaesState } from './cmaes.ts';
import { cobylaNextPoint, cobylaValue, loadNlopt, nloptLoaded, type CobylaEvaluation } from './cobyla.ts';
import { Rng, type RngState } from '../rng.ts';
import { DEFAULT_LQ_SETTINGS, LqCmaes, type LqCmaesSnapshot, type LqSettings } from './surrogate.ts';

export type OptimizerName = 'auto' | 'cobyla-lq' | 'lq-cmaes' | 'cmaes' | 'cobyla' | 'random';
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['auto', 'cobyla-lq', 'lq-cmaes', 'cmaes', 'cobyla', 'random'];
/** The searches `auto` chooses between (every name but `auto`). */
export type SearchName = Exclude<OptimizerName, 'auto'>;

/**
 * ADAPT's default search, the one place it is stated: `lorahub compose`, `adapt()` and
 * `createOptimizer` all take their defaults from here. Measured with `npm run bench:search`
 * (README "Search"):
 * - optimizer `auto`. On compose's default problem (the best 5 modules, 20 examples) COBYLA
 *   converges within ~40 evaluations (its objective at 100 and 300 nearly equal) and lq-CMA-ES,
 *   from scratch, ends lower at 300 (17 of 20 runs on boolean_expressions and navigate) but
 *   reaches COBYLA@40's objective only after 56 evaluations in the median. Chained (`cobyla-lq`):
 *   COBYLA@40 by construction, then at or below COBYLA@300 in 53 of 60 runs on six worlds
 *   (`chainSigma0`). With 20 modules COBYLA is
 *   still descending at 40 and every chain measured ended above COBYLA@300 (0–2 of 10, switching
 *   at 40 to 160), as did lq-CMA-ES and CMA-ES alone (5 of 25): there COBYLA runs throughout.
 *   With the best 8 and 10 of the library (boolean_expressions, navigate, seeds 1–5) the chain
 *   ended at or below COBYLA@300 in 7 and 4 of 10 runs (with the first chain's step, 1/√n, 6 of
 *   10 at 10; lq-CMA-ES alone 7 of 10): hence `lqMaxModules` 8.
 * - popsize λ = 6 and σ₀ = 1/√n (CMA-ES, lq-CMA-ES; random search's batch): λ = 6 beat the
 *   textbook 4 + ⌊3 ln n⌋ (10, 12, 14 for n = 10, 20, 30) at these budgets; σ₀ = 1/√n keeps the first
 *   candidates at ‖w‖ ≈ 1 whatever the number of modules (σ₀ = 0.5 over 20 modules sums twenty
 *   deltas at ‖w‖ ≈ 2.2, which mostly wrecks the base model).
 * - budget 300 and the ±1.5 box: the LoRAHub paper's and the reference's settings.
 */
export const SEARCH_DEFAULTS: Readonly<{
  optimizer: OptimizerName;
  budget: number;
  bound: number;
  popsize: number;
  sigma0: (dim: number) => number;
  chainSigma0: (dim: number) => number;
  cobylaEvaluations: number;
  lqMaxModules: number;
}> = Object.freeze({
  optimizer: 'auto',
  budget: 300,
  bound: 1.5,
  popsize: 6,
  sigma0: (dim: number) => 1 / Math.sqrt(dim),
  /**
   * `cobyla-lq`: lq-CMA-ES's σ₀ after the switch (what `--sigma0` sets for it), twice `sigma0`:
   * from COBYLA's local optimum the search must leave its basin. bench:search, compose's default
   * problem (6 worlds × seeds 1–10; README "Search"): the step after the switch ×1 / ×1.5 / ×2 /
   * ×3 ended at or below COBYLA@300 in 55 / 51 / 53 / 55 of 60 runs, mean objective at 300
   * 0.5453 / 0.5407 / 0.5363 / 0.5343, at 100 0.5493 / 0.5503 / 0.5478 / 0.5510, held-out
   * accuracy −0.1 / +0.2 / +1.5 / +2.0 points against COBYLA@40 (restarting from w = 0 instead:
   * 56/60, 0.5435, +0.5). On fresh seeds 11–20 (5 worlds, 50 runs) ×1 / ×2 / ×3: 45 / 45 / 39
   * at or below COBYLA@300, objective 0.4889 / 0.4770 / 0.4734, accuracy +1.2 / +1.7 / +2.2.
   * ×2 keeps ×1's share of runs below COBYLA@300 and ends lower; ×3 is nearly a fresh start.
   */
  chainSigma0: (dim: number) => 2 / Math.sqrt(dim),
  /** `cobyla-lq`: evaluations COBYLA makes before lq-CMA-ES takes over (the reference's budget, w = 0 included). */
  cobylaEvaluations: 40,
  /** `auto`: `cobyla-lq` up to this many modules, `cobyla` above. */
  lqMaxModules: 8,
});

/** The search `name` stands for with `dim` modules: `auto` resolved, any other name itself. */
export function resolveOptimizer(name: OptimizerName, dim: number): SearchName {
  if (name !== 'auto') return name;
  return dim <= SEARCH_DEFAULTS.lqMaxModules ? 'cobyla-lq' : 'cobyla';
}

export interface Optimizer {
  /** The search that runs (never `auto`: createOptimizer resolves it). */
  readonly name: SearchName;
  /** Candidates per `ask()`: λ for CMA-ES and random search, 1 for COBYLA (sequential). */
  readonly popsize: number;
  /** Candidates to evaluate next (at most `popsize`, never beyond the budget); empty once `done()`. */
  ask(): number[][];
  /** Values for the candidates of the last `ask()`, all of them (CMA-ES accepts any order). */
  tell(xs: number[][], fs: number[]): void;
  done(): boolean;
  /**
   * Why `done()` is true, or null while running: 'budget', CMA-ES's stop keys joined by ','
   * (e.g. 'tolfun'), or 'converged' when COBYLA met its own tolerance.
   */
  stopReason(): string | null;
  /** Best told candidate so far (f = +Infinity before any tell). */
  best(): { x: number[]; f: number };
  /** JSON-serialisable snapshot; `createOptimizer(name, sameOptions, snapshot)` resumes from it. */
  state(): OptimizerState;
  /** Evaluations made outside ask/tell (adapt scores w = 0 first) that a model-based search can learn from. */
  observe?(xs: number[][], fs: number[]): void;
}

/** Snapshots carry their optimiser's name and a version so that a mismatched resume fails loudly. */
export type OptimizerState = CobylaLqState | LqCmaesState | CmaesOptimizerState | RandomSearchState | CobylaState;

export interface OptimizerOptions {
  dim: number;
  /** Start point; default all zeros (LoRAHub starts from w = 0). */
  x0?: number[];
  /** CMA-ES initial step-size; default `SEARCH_DEFAULTS.sigma0(dim)`. */
  sigma0?: number;
  lower?: number | number[];
  upper?: number | number[];
  /** Total number of evaluations. */
  budget: number;
  seed: number;
  /** CMA-ES λ and random-search batch size; default `SEARCH_DEFAULTS.popsize`. Ignored by COBYLA. */
  popsize?: number;
  /** CMA-ES and lq-CMA-ES: mirrored sampling (cmaes.ts); default false. */
  mirrored?: boolean;
  /** lq-CMA-ES only: the surrogate's settings (defaults: `DEFAULT_LQ_SETTINGS`). */
  lq?: Partial<LqSettings>;
}

/**
 * Loads what an optimiser needs before `createOptimizer` can build it. Only COBYLA needs
 * anything (the nlopt-js WebAssembly module, which initialises asynchronously).
 */
export async function prepareOptimizer(name: OptimizerName): Promise<void> {
  if (name === 'cobyla' || name === 'cobyla-lq' || name === 'auto') await loadNlopt();
}

/**
 * Builds an optimiser; with `resume` (a `state()` snapshot taken with the same options) it
 * continues that run exactly where it stopped, same candidates included.
 */
export function createOptimizer(name: OptimizerName, opts: OptimizerOptions, resume?: unknown): Optimizer {
  const search = resolveOptimizer(name, opts.dim);
  const o = normaliseOptions(search === 'cobyla-lq' ? { ...opts, sigma0: opts.sigma0 ?? SEARCH_DEFAULTS.chainSigma0(opts.dim) } : opts);
  switch (search) {
    case 'cobyla-lq':
      return new CobylaLqOptimizer(o, resume === undefined ? undefined : checkState(resume, 'cobyla-lq'));
    case 'lq-cmaes':
      return new LqCmaesOptimizer(o, resume === undefined ? undefined : checkState(resume, 'lq-cmaes'));
    case 'cmaes':
      return new CmaesOptimizer(o, resume === undefined ? undefined : checkState(resume, 'cmaes'));
    case 'random':
      return new RandomSearch(o, resume === undefined ? undefined : checkState(resume, 'random'));
    case 'cobyla':
      return new CobylaOptimizer(o, resume === undefined ? undefined : checkState(resume, 'cobyla'));
    default:
      throw new LorahubError('BAD_ARGUMENT', `unknown optimizer ${String(name)}; known: ${OPTIMIZER_NAMES.join(', ')}`);
  }
}

interface Normalised {
  dim: number;
  x0: number[];
  sigma0: number;
  lower: number[];
  upper: number[];
  budget: number;
  seed: number;
  popsize: number;
  mirrored: boolean;
  lq: LqSettings;
}

function normaliseOptions(opts: OptimizerOptions): Normalised {
  const { dim, budget, seed } = opts;
  if (!Number.isInteger(dim) || dim < 1) throw new LorahubError('INTERNAL', `optimizer: dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(budget) || budget < 1) {
    throw new LorahubError('INTERNAL', `optimizer: budget must be a positive integer, got ${budget}`);
  }
  const bounds = (b: number | number[] | undefined, fill: number, what: string): number[] => {
    const arr = b === undefined ? new Array<number>(dim).fill(fill) : typeof b === 'number' ? new Array<number>(dim).fill(b) : [...b];
    if (arr.length !== dim || arr.some(Number.isNaN)) {
      throw new LorahubError('INTERNAL', `optimizer: ${what} must be a number or ${dim} numbers`);
    }
    return arr;
  };
  const lower = bounds(opts.lower, -Infinity, 'lower');
  const upper = bounds(opts.upper, Infinity, 'upper');
  const x0 = opts.x0 ? [...opts.x0] : new Array<number>(dim).fill(0);
  if (x0.length !== dim || !x0.every(Number.isFinite)) {
    throw new LorahubError('INTERNAL', `optimizer: x0 must hold ${dim} finite numbers`);
  }
  for (let i = 0; i < dim; i++) {
    if (!(lower[i] < upper[i])) throw new LorahubError('INTERNAL', `optimizer: bound ${i}: lower ${lower[i]} ≥ upper ${upper[i]}`);
    if (x0[i] < lower[i] || x0[i] > upper[i]) {
      throw new LorahubError('INTERNAL', `optimizer: x0[${i}] = ${x0[i]} is outside [${lower[i]}, ${upper[i]}]`);
    }
  }
  const sigma0 = opts.sigma0 ?? SEARCH_DEFAULTS.sigma0(dim);
  const popsize = cmaesParameters(dim, opts.popsize ?? SEARCH_DEFAULTS.popsize).lambda; // validates it
  const lq = { ...DEFAULT_LQ_SETTINGS, ...opts.lq, surrogate: { ...DEFAULT_LQ_SETTINGS.surrogate, ...opts.lq?.surrogate } };
  return { dim, x0, sigma0, lower, upper, budget, seed, popsize, mirrored: opts.mirrored === true, lq };
}

/**
 * The snapshot's envelope is checked here; its contents are validated where they are used
 * (`CMAES.fromState`, `Rng.fromState`, the COBYLA replay, which rejects a history NLopt
 * would not have produced).
 */
function checkState<N extends SearchName>(state: unknown, name: N): Extract<OptimizerState, { optimizer: N }> {
  if (typeof state !== 'object' || state === null) {
    throw new LorahubError('BAD_FILE', `resume ${name}: the optimizer state must be an object`);
  }
  const r = state as Record<string, unknown>;
  if (r.optimizer !== name || r.version !== 1) {
    throw new LorahubError(
      'BAD_FILE',
      `resume ${name}: the snapshot is from optimizer ${String(r.optimizer)} (version ${String(r.version)}), not ${name} (version 1)`,
    );
  }
  return state as Extract<OptimizerState, { optimizer: N }>;
}

interface BestState {
  x: number[];
  /** null stands for +Infinity (nothing finite told yet); JSON has no Infinity. */
  f: number | null;
}

/** Best-so-far bookkeeping shared by the three optimisers. */
class BestTracker {
  x: number[];
  f = Infinity;

  constructor(x0: number[]) {
    this.x = [...x0];
  }

  update(xs: number[][], fs: number[]): void {
    xs.forEach((x, k) => {
      const f = Number.isNaN(fs[k]) ? Infinity : fs[k];
      if (f < this.f) {
        this.f = f;
        this.x = [...x];
      }
    });
  }

  get(): { x: number[]; f: number } {
    return { x: [...this.x], f: this.f };
  }

  save(): BestState {
    return { x: [...this.x], f: Number.isFinite(this.f) ? this.f : null };
  }

  load(b: BestState, dim: number): void {
    if (!Array.isArray(b.x) || b.x.length !== dim || !(b.f === null || typeof b.f === 'number')) {
      throw new LorahubError('BAD_FILE', `resume: best must be {x: ${dim} numbers, f: number | null}`);
    }
    this.x = [...b.x];
    this.f = b.f ?? Infinity;
  }
}

function checkEvaluations(e: unknown, budget: number): number {
  if (typeof e !== 'number' || !Number.isInteger(e) || e < 0 || e > budget) {
    throw new LorahubError('BAD_FILE', `resume: evaluations must be an integer in [0, ${budget}], got ${String(e)}`);
  }
  return e;
}

function checkTell(name: string, dim: number, xs: number[][], fs: number[]): void {
  if (xs.length !== fs.length) {
    throw new LorahubError('INTERNAL', `${name} tell: ${xs.length} candidates but ${fs.length} values`);
  }
  xs.forEach((x, k) => {
    if (x.length !== dim) throw new LorahubError('INTERNAL', `${name} tell: candidate ${k} has ${x.length} coordinates, expected ${dim}`);
  });
}

export interface CmaesOptimizerState {
  optimizer: 'cmaes';
  version: 1;
  cmaes: CmaesState;
  rng: RngState;
  evaluations: number;
  lastAsked: number;
  best: BestState;
}

/**
 * What the two population searches share: the evaluation budget (a generation is cut to what is
 * left), the check that `tell` answers the last `ask`, and the best truly evaluated point.
 * Subclasses say how to propose (`propose`), learn (`learn`) and when they stop on their own.
 */
abstract class BudgetedPopulationSearch {
  abstract readonly name: SearchName;
  readonly popsize: number;
  protected readonly dim: number;
  protected readonly budget: number;
  protected readonly bestSoFar: BestTracker;
  protected evaluations = 0;
  protected lastAsked = 0;

  constructor(o: Normalised) {
    this.dim = o.dim;
    this.budget = o.budget;
    this.popsize = o.popsize;
    this.bestSoFar = new BestTracker(o.x0);
  }

  /** At most `left` candidates (left ≥ 1). */
  protected abstract propose(left: number): number[][];
  /** The told candidates and their values, after the bookkeeping. */
  protected abstract learn(xs: number[][], fs: number[]): void;
  /** The search's own stop reasons (the budget aside). */
  protected abstract ownStop(): string[];

  ask(): number[][] {
    if (this.done()) return [];
    const xs = this.propose(this.budget - this.evaluations);
    this.lastAsked = xs.length;
    return xs;
  }

  tell(xs: number[][], fs: number[]): void {
    checkTell(this.name, this.dim, xs, fs);
    if (xs.length !== this.lastAsked) {
      throw new LorahubError('INTERNAL', `${this.name} tell: expected the ${this.lastAsked} candidates of the last ask, got ${xs.length}`);
    }
    this.bestSoFar.update(xs, fs);
    this.evaluations += xs.length;
    this.lastAsked = 0;
    this.learn(xs, fs);
  }

  done(): boolean {
    return this.stopReason() !== null;
  }

  stopReason(): string | null {
    if (this.evaluations >= this.budget) return 'budget';
    const reasons = this.ownStop();
    return reasons.length > 0 ? reasons.join(',') : null;
  }

  best(): { x: number[]; f: number } {
    return this.bestSoFar.get();
  }
}

class CmaesOptimizer extends BudgetedPopulationSearch implements Optimizer {
  readonly name = 'cmaes';
  private readonly rng: Rng;
  private readonly es: CMAES;

  constructor(o: Normalised, resume?: CmaesOptimizerState) {
    super(o);
    if (resume) {
      this.rng = Rng.fromState(resume.rng);
      this.es = CMAES.fromState(resume.cmaes, this.rng);
      if (this.es.params.dimension !== o.dim || this.es.params.lambda !== o.popsize) {
        throw new LorahubError(
          'BAD_FILE',
          `resume cmaes: snapshot has dim ${this.es.params.dimension} and λ ${this.es.params.lambda}, options say ${o.dim} and ${o.popsize}`,
        );
      }
      this.evaluations = checkEvaluations(resume.evaluations, o.budget);
      this.lastAsked = checkEvaluations(resume.lastAsked, o.popsize);
      this.bestSoFar.load(resume.best, o.dim);
      return;
    }
    this.rng = Rng.fromSeed(o.seed);
    this.es = new CMAES({
      x0: o.x0,
      sigma0: o.sigma0,
      popsize: o.popsize,
      lowerBounds: o.lower,
      upperBounds: o.upper,
      rng: this.rng,
      maxEvaluations: o.budget,
      mirrored: o.mirrored,
    });
  }

  protected propose(left: number): number[][] {
    return this.es.ask().slice(0, left);
  }

  protected learn(xs: number[][], fs: number[]): void {
    // A generation cut short by the budget is the last one: nothing left to spend an update on.
    if (xs.length === this.es.params.lambda) this.es.tell(xs, fs);
  }

  protected ownStop(): string[] {
    // maxfevals is the budget (maxEvaluations = budget), reported as 'budget' by the base.
    return Object.keys(this.es.stop()).filter((k) => k !== 'maxfevals');
  }

  state(): CmaesOptimizerState {
    return {
      optimizer: 'cmaes',
      version: 1,
      cmaes: this.es.state(),
      rng: this.rng.state(),
      evaluations: this.evaluations,
      lastAsked: this.lastAsked,
      best: this.bestSoFar.save(),
    };
  }
}

export interface RandomSearchState {
  optimizer: 'random';
  version: 1;
  rng: RngState;
  evaluations: number;
  best: BestState;
}

class RandomSearch implements Optimizer {
  readonly name = 'random';
  readonly popsize: number;
  private readonly rng: Rng;
  private readonly o: Normalised;
  private readonly bestSoFar: BestTracker;
  private evaluations = 0;

  constructor(o: Normalised, resume?: RandomSearchState) {
    if (!o.lower.every(Number.isFinite) || !o.upper.every(Number.isFinite)) {
      throw new LorahubError('INTERNAL', 'random search needs finite lower and upper bounds');
    }
    this.o = o;
    this.popsize = o.popsize;
    this.bestSoFar = new BestTracker(o.x0);
    this.rng = resume ? Rng.fromState(resume.rng) : Rng.fromSeed(o.seed);
    if (resume) {
      this.evaluations = checkEvaluations(resume.evaluations, o.budget);
      this.bestSoFar.load(resume.best, o.dim);
    }
  }

  ask(): number[][] {
    const k = Math.max(0, Math.min(this.popsize, this.o.budget - this.evaluations));
    const { lower, upper } = this.o;
    return Array.from({ length: k }, () => lower.map((lb, i) => lb + (upper[i] - lb) * this.rng.uniform()));
  }

  tell(xs: number[][], fs: number[]): void {
    checkTell('random', this.o.dim, xs, fs);
    this.bestSoFar.update(xs, fs);
    this.evaluations += xs.length;
  }

  done(): boolean {
    return this.evaluations >= this.o.budget;
  }

  stopReason(): string | null {
    return this.done() ? 'budget' : null;
  }

  best(): { x: number[]; f: number } {
    return this.bestSoFar.get();
  }

  state(): RandomSearchState {
    return { optimizer: 'random', version: 1, rng: this.rng.state(), evaluations: this.evaluations, best: this.bestSoFar.save() };
  }
}

export interface CobylaState {
  optimizer: 'cobyla';
  version: 1;
  x0: number[];
  lower: number[];
  upper: number[];
  budget: number;
  /** Every evaluated point with the value NLopt saw (after the penalty and clamp). */
  history: CobylaEvaluation[];
  finished: boolean;
  best: BestState;
}

/** COBYLA as an ask/tell optimiser (see cobyla.ts for the replay adapter over nlopt-js). */
class CobylaOptimizer implements Optimizer {
  readonly name = 'cobyla';
  readonly popsize = 1;
  private readonly o: Normalised;
  private readonly bestSoFar: BestTracker;
  private history: CobylaEvaluation[] = [];
  private pendingPoint: number[] | null = null;
  private finished = false;

  constructor(o: Normalised, resume?: CobylaState) {
    if (!nloptLoaded()) {
      throw new LorahubError('INTERNAL', "COBYLA: nlopt-js is not loaded yet; await prepareOptimizer('cobyla') first");
    }
    if (!o.lower.every(Number.isFinite) || !o.upper.every(Number.isFinite)) {
      throw new LorahubError('INTERNAL', 'COBYLA needs finite lower and upper bounds (nlopt-js can hang without them)');
    }
    this.o = o;
    this.bestSoFar = new BestTracker(o.x0);
    if (resume) {
      const same = (a: unknown, b: number[]): boolean => Array.isArray(a) && a.length === b.length && a.every((v, i) => v === b[i]);
      if (!same(resume.x0, o.x0) || !same(resume.lower, o.lower) || !same(resume.upper, o.upper) || !Array.isArray(resume.history)) {
        throw new LorahubError('BAD_FILE', 'resume cobyla: x0 and bounds must be the ones the run started with');
      }
      checkEvaluations(resume.history.length, o.budget);
      resume.history.forEach((h, k) => {
        if (!Array.isArray(h.x) || h.x.length !== o.dim || !h.x.every(Number.isFinite) || !Number.isFinite(h.f)) {
          throw new LorahubError('BAD_FILE', `resume cobyla: history entry ${k} must be {x: ${o.dim} finite numbers, f: finite}`);
        }
      });
      this.history = resume.history.map((h) => ({ x: [...h.x], f: h.f }));
      this.finished = resume.finished === true;
      this.bestSoFar.load(resume.best, o.dim);
    }
  }

  /** One candidate: COBYLA is sequential. */
  ask(): number[][] {
    if (this.done()) return [];
    this.pendingPoint ??= cobylaNextPoint(this.o, this.history);
    if (this.pendingPoint === null) {
      this.finished = true; // NLopt stopped on its own (xtol reached)
      return [];
    }
    return [[...this.pendingPoint]];
  }

  tell(xs: number[][], fs: number[]): void {
    checkTell('cobyla', this.o.dim, xs, fs);
    const p = this.pendingPoint;
    if (p === null || xs.length !== 1 || !xs[0].every((v, i) => v === p[i])) {
      throw new LorahubError('INTERNAL', 'cobyla tell: expected exactly the one candidate of the last ask');
    }
    this.bestSoFar.update(xs, fs);
    this.history.push({ x: [...p], f: cobylaValue(fs[0], this.history) });
    this.pendingPoint = null;
  }

  done(): boolean {
    return this.stopReason() !== null;
  }

  stopReason(): string | null {
    if (this.history.length >= this.o.budget) return 'budget';
    return this.finished ? 'converged' : null;
  }

  best(): { x: number[]; f: number } {
    return this.bestSoFar.get();
  }

  state(): CobylaState {
    const { x0, lower, upper, budget } = this.o;
    return {
      optimizer: 'cobyla',
      version: 1,
      x0: [...x0],
      lower: [...lower],
      upper: [...upper],
      budget,
      history: this.history.map((h) => ({ x: [...h.x], f: h.f })),
      finished: this.finished,
      best: this.bestSoFar.save(),
    };
  }
}

export interface LqCmaesState {
  optimizer: 'lq-cmaes';
  version: 1;
  lq: LqCmaesSnapshot;
  rng: RngState;
  evaluations: number;
  best: BestState;
}

/** lq-CMA-ES (surrogate.ts `LqCmaes`) behind the common interface: the budget and the best truly evaluated point. */
class LqCmaesOptimizer extends BudgetedPopulationSearch implements Optimizer {
  readonly name = 'lq-cmaes';
  private readonly rng: Rng;
  private readonly lq: LqCmaes;

  constructor(o: Normalised, resume?: LqCmaesState) {
    super(o);
    this.rng = resume ? Rng.fromState(resume.rng) : Rng.fromSeed(o.seed);
    const { x0, sigma0, popsize, lower, upper, mirrored, lq } = o;
    this.lq = new LqCmaes({ x0, sigma0, popsize, lower, upper, mirrored, rng: this.rng, settings: lq }, resume?.lq);
    if (resume) {
      this.evaluations = checkEvaluations(resume.evaluations, o.budget);
      this.bestSoFar.load(resume.best, o.dim);
    }
  }

  protected propose(left: number): number[][] {
    return this.lq.ask(left);
  }

  protected learn(xs: number[][], fs: number[]): void {
    this.lq.tell(xs, fs);
  }

  protected ownStop(): string[] {
    return this.lq.stop();
  }

  observe(xs: number[][], fs: number[]): void {
    checkTell('lq-cmaes observe', this.dim, xs, fs);
    this.lq.observe(xs, fs);
    this.bestSoFar.update(xs, fs);
  }

  state(): LqCmaesState {
    return { optimizer: 'lq-cmaes', version: 1, lq: this.lq.snapshot(), rng: this.rng.state(), evaluations: this.evaluations, best: this.bestSoFar.save() };
  }
}

/** A point as a chain's state keeps it: +∞ (a failed evaluation) as null, JSON having no Infinity. */
interface StoredPoint {
  x: number[];
  f: number | null;
}

export interface CobylaLqState {
  optimizer: 'cobyla-lq';
  version: 1;
  /** COBYLA's run; after the switch it only records what COBYLA did. */
  cobyla: CobylaState;
  /** lq-CMA-ES's, from the switch on (null before), with the budget it was given then. */
  lq: { budget: number; state: LqCmaesState } | null;
  /** Every point seen before the switch (observed ones included), with its true value. */
  points: StoredPoint[];
  evaluations: number;
  best: BestState;
}

/**
 * `cobyla-lq`: COBYLA until `SEARCH_DEFAULTS.cobylaEvaluations` points have been seen (observed
 * ones, i.e. adapt's w = 0, count) or it converges, then lq-CMA-ES for the rest of the budget,
 * started from the best point so far with every point in its surrogate's archive (its probes
 * then look around that point). Why a chain, and why at 40: SEARCH_DEFAULTS.
 */
class CobylaLqOptimizer implements Optimizer {
  readonly name = 'cobyla-lq';
  private readonly o: Normalised;
  private readonly cobyla: CobylaOptimizer;
  private lq: LqCmaesOptimizer | null = null;
  private lqBudget = 0;
  private points: { x: number[]; f: number }[] = [];
  private readonly bestSoFar: BestTracker;
  private evaluations = 0;

  constructor(o: Normalised, resume?: CobylaLqState) {
    this.o = o;
    this.bestSoFar = new BestTracker(o.x0);
    const cobylaBudget = Math.min(o.budget, SEARCH_DEFAULTS.cobylaEvaluations);
    this.cobyla = new CobylaOptimizer({ ...o, budget: cobylaBudget }, resume && checkState(resume.cobyla, 'cobyla'));
    if (!resume) return;
    if (!Array.isArray(resume.points) || !resume.points.every((p) => Array.isArray(p?.x) && p.x.length === o.dim && (p.f === null || typeof p.f === 'number'))) {
      throw new LorahubError('BAD_FILE', `resume cobyla-lq: points must be {x: ${o.dim} numbers, f: number | null}`);
    }
    this.points = resume.points.map((p) => ({ x: [...p.x], f: p.f ?? Infinity }));
    this.evaluations = checkEvaluations(resume.evaluations, o.budget);
    this.bestSoFar.load(resume.best, o.dim);
    if (resume.lq !== null) {
      const budget = resume.lq.budget;
      if (!Number.isInteger(budget) || budget < 1 || budget > o.budget) throw new LorahubError('BAD_FILE', `resume cobyla-lq: lq.budget must be an integer in [1, ${o.budget}]`);
      this.lqBudget = budget;
      this.lq = new LqCmaesOptimizer({ ...o, budget }, checkState(resume.lq.state, 'lq-cmaes'));
    }
  }

  get popsize(): number {
    return this.lq ? this.lq.popsize : 1;
  }

  /** Switches once COBYLA has had its evaluations (or stopped on its own) and budget is left. */
  private phase(): Optimizer {
    if (this.lq) return this.lq;
    const cobylaDone = this.points.length >= SEARCH_DEFAULTS.cobylaEvaluations || this.cobyla.done();
    if (!cobylaDone || this.evaluations >= this.o.budget) return this.cobyla;
    // From the best point seen, with the budget left.
    this.lqBudget = this.o.budget - this.evaluations;
    this.lq = new LqCmaesOptimizer({ ...this.o, x0: this.bestSoFar.get().x, budget: this.lqBudget });
    this.lq.observe(
      this.points.map((p) => p.x),
      this.points.map((p) => p.f),
    );
    this.points = [];
    return this.lq;
  }

  ask(): number[][] {
    if (this.done()) return [];
    const xs = this.phase().ask();
    // COBYLA may stop on its own only when asked (NLopt's tolerance); lq-CMA-ES then takes over.
    return xs.length === 0 && !this.lq && this.cobyla.done() ? this.phase().ask() : xs;
  }

  tell(xs: number[][], fs: number[]): void {
    checkTell('cobyla-lq', this.o.dim, xs, fs);
    (this.lq ?? this.cobyla).tell(xs, fs);
    this.bestSoFar.update(xs, fs);
    this.evaluations += xs.length;
    if (!this.lq) this.remember(xs, fs);
  }

  /** Points seen before the switch, for lq-CMA-ES's archive (NaN as +∞, as its archive takes them). */
  private remember(xs: number[][], fs: number[]): void {
    xs.forEach((x, k) => this.points.push({ x: [...x], f: Number.isNaN(fs[k]) ? Infinity : fs[k] }));
  }

  observe(xs: number[][], fs: number[]): void {
    checkTell('cobyla-lq observe', this.o.dim, xs, fs);
    this.bestSoFar.update(xs, fs);
    if (this.lq) this.lq.observe(xs, fs);
    else this.remember(xs, fs);
  }

  done(): boolean {
    return this.stopReason() !== null;
  }

  stopReason(): string | null {
    if (this.evaluations >= this.o.budget) return 'budget';
    return this.lq ? this.lq.stopReason() : null;
  }

  best(): { x: number[]; f: number } {
    return this.bestSoFar.get();
  }

  state(): CobylaLqState {
    return {
      optimizer: 'cobyla-lq',
      version: 1,
      cobyla: this.cobyla.state(),
      lq: this.lq ? { budget: this.lqBudget, state: this.lq.state() } : null,
      points: this.points.map((p) => ({ x: [...p.x], f: Number.isFinite(p.f) ? p.f : null })),
      evaluations: this.evaluations,
      best: this.bestSoFar.save(),
    };
  }
}
