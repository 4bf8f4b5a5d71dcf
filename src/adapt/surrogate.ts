/**
 * A linear-quadratic surrogate of the objective, after N. Hansen, "A Global Surrogate Assisted
 * CMA-ES", GECCO 2019 (lq-CMA-ES; pycma `cma/fitness_models.py`, `LQModel` and
 * `SurrogatePopulation`), written for this project:
 *
 * - An archive of truly evaluated points, newest first.
 * - A model whose complexity grows with the archive: linear (n + 1 coefficients), then with a
 *   diagonal quadratic term (2n + 1), then full quadratic (n(n + 3)/2 + 1). A kind is used once
 *   the share of the archive the fit uses holds `minRelativeSize` times its coefficients.
 * - Fitted by weighted least squares on the best `truncationRatio` of the archive, the rows
 *   scaled by rank from `maxWeight` (best) down to 1 (worst used), as pycma does. With fewer
 *   points than coefficients the minimum-norm solution is taken (a pseudo-inverse).
 * - Fitted in coordinates handed in by the caller: CMA-ES passes its own sampling coordinates
 *   u = D⁻¹Bᵀ(x − m)/σ, where the current search distribution is N(0, I). There a diagonal
 *   quadratic follows the principal axes CMA-ES has learnt, and the least-squares problem is
 *   well conditioned because the points of interest have |u| of order one.
 * - Kendall's rank correlation τ between the model and the true values of the most recent
 *   points decides whether the model may rank the rest of a population (`kendallTau`).
 *
 * Everything here is deterministic: refitting from the same archive and coordinates gives the
 * same model bit for bit, so a snapshot only needs the archive.
 */
import { LorahubError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { CMAES, type CmaesState } from './cmaes.ts';
import { leastSquares, trustRegionStep } from './eigen.ts';

export type ModelKind = 'linear' | 'diagonal' | 'full';

/** Kinds from the simplest up; the archive size picks the most complex one it supports. */
export const MODEL_KINDS: readonly ModelKind[] = ['linear', 'diagonal', 'full'];

/** Number of model coefficients ("degrees of freedom") of a kind in n dimensions. */
export function coefficientCount(kind: ModelKind, n: number): number {
  if (kind === 'linear') return n + 1;
  if (kind === 'diagonal') return 2 * n + 1;
  return (n * (n + 3)) / 2 + 1;
}

export interface SurrogateSettings {
  /** Fit on this share of the archive, the best points (pycma `truncation_ratio`: 3/4). */
  readonly truncationRatio: number;
  /** A kind is used once truncationRatio·size ≥ minRelativeSize·coefficients (pycma: 1.1). */
  readonly minRelativeSize: number;
  /** Regression row factors run linearly from this (best point) down to 1 (pycma `max_weight`: 20). */
  readonly maxWeight: number;
  /** Archive cap: this many times the full model's coefficients (pycma `max_relative_size_end`: 2). */
  readonly maxRelativeSize: number;
  /** Most complex kind allowed. */
  readonly maxKind: ModelKind;
  /**
   * Kinds with more coefficients are never used (not in pycma): a fit runs after every round of
   * evaluations, and measured here a full quadratic costs 0.8 ms in 10 dimensions (66
   * coefficients), 24 ms in 20 (231) and 240 ms in 30 (496, on 992 points). 250 keeps the full
   * model up to 20 dimensions; above, the diagonal one is the most complex.
   */
  readonly maxCoefficients: number;
}

/** pycma's values (`LQModelSettings`), which Hansen (2019) tuned on the BBOB testbed. */
export const DEFAULT_SURROGATE_SETTINGS: SurrogateSettings = Object.freeze({
  truncationRatio: 0.75,
  minRelativeSize: 1.1,
  maxWeight: 20,
  maxRelativeSize: 2,
  maxKind: 'full' as const,
  maxCoefficients: 250,
});

/** An affine change of coordinates u = A(x − center), and back x = center + A⁻¹u. */
export interface Coordinates {
  readonly center: readonly number[];
  /** A, `[n][n]`. */
  readonly toModel: readonly (readonly number[])[];
  /** A⁻¹, `[n][n]`. */
  readonly fromModel: readonly (readonly number[])[];
}

export function identityCoordinates(n: number): Coordinates {
  const eye = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  return { center: new Array<number>(n).fill(0), toModel: eye, fromModel: eye };
}

function applyMatrix(m: readonly (readonly number[])[], v: readonly number[]): number[] {
  return m.map((row) => row.reduce((s, a, j) => s + a * v[j], 0));
}

export function toModelCoordinates(c: Coordinates, x: readonly number[]): number[] {
  return applyMatrix(
    c.toModel,
    x.map((v, i) => v - c.center[i]),
  );
}

export function fromModelCoordinates(c: Coordinates, u: readonly number[]): number[] {
  return applyMatrix(c.fromModel, u).map((v, i) => v + c.center[i]);
}

/** Regression features of u for a kind: [1, u, (u²), (uᵢuⱼ for i < j)]. */
export function features(u: readonly number[], kind: ModelKind): number[] {
  const z = [1, ...u];
  if (kind === 'linear') return z;
  for (const v of u) z.push(v * v);
  if (kind === 'full') {
    for (let i = 0; i < u.length; i++) for (let j = i + 1; j < u.length; j++) z.push(u[i] * u[j]);
  }
  return z;
}

/** A fitted model m(u) = c₀ + gᵀu + ½uᵀHu in the coordinates it was fitted in. */
export class QuadraticModel {
  readonly kind: ModelKind;
  readonly coordinates: Coordinates;
  readonly coefficients: readonly number[];
  /** m(0). */
  readonly constant: number;
  /** ∇m(0). */
  readonly gradient: readonly number[];
  /** ∇²m, zero for a linear model. */
  readonly hessian: readonly (readonly number[])[];

  constructor(kind: ModelKind, coordinates: Coordinates, coefficients: readonly number[]) {
    const n = coordinates.center.length;
    if (coefficients.length !== coefficientCount(kind, n)) {
      throw new LorahubError('INTERNAL', `QuadraticModel: ${kind} in ${n} dimensions needs ${coefficientCount(kind, n)} coefficients, got ${coefficients.length}`);
    }
    this.kind = kind;
    this.coordinates = coordinates;
    this.coefficients = [...coefficients];
    this.constant = coefficients[0];
    this.gradient = coefficients.slice(1, n + 1);
    const h = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    if (kind !== 'linear') {
      for (let i = 0; i < n; i++) h[i][i] = 2 * coefficients[n + 1 + i];
    }
    if (kind === 'full') {
      let k = 2 * n + 1;
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          h[i][j] = coefficients[k];
          h[j][i] = coefficients[k];
          k++;
        }
      }
    }
    this.hessian = h;
  }

  /** Model value at a point in the objective's coordinates. */
  predict(x: readonly number[]): number {
    return this.predictModel(toModelCoordinates(this.coordinates, x));
  }

  /** Model value at a point in model coordinates u. */
  predictModel(u: readonly number[]): number {
    const z = features(u, this.kind);
    return z.reduce((s, v, i) => s + v * this.coefficients[i], 0);
  }

  /**
   * The minimiser of the model over the ball ‖u − u₀‖ ≤ radius (model coordinates): the
   * trust-region subproblem from u₀ (eigen.ts `trustRegionStep`). A linear model steps the
   * radius along −∇m.
   */
  minimizeInBall(u0: readonly number[], radius: number): number[] {
    // ∇m(u₀) = g + H u₀
    const g = this.gradient.map((gi, i) => gi + this.hessian[i].reduce((s, h, j) => s + h * u0[j], 0));
    const step = trustRegionStep(this.hessian, g, radius);
    return u0.map((u, i) => u + step[i]);
  }
}

/**
 * Kendall's τ-b between two equally long sequences (ties count zero, and the normalisation
 * corrects for them as scipy's `kendalltau` does); 0 when either sequence is constant.
 */
export function kendallTau(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new LorahubError('INTERNAL', 'kendallTau: sequences of different lengths');
  let s = 0;
  let pairsA = 0;
  let pairsB = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < i; j++) {
      const da = Math.sign(a[i] - a[j]);
      const db = Math.sign(b[i] - b[j]);
      s += da * db;
      pairsA += da !== 0 ? 1 : 0;
      pairsB += db !== 0 ? 1 : 0;
    }
  }
  return pairsA > 0 && pairsB > 0 ? s / Math.sqrt(pairsA * pairsB) : 0;
}

export interface ArchivePoint {
  x: number[];
  f: number;
}

/**
 * The evaluated points, newest first, and the model fitted to them. Only finite values enter:
 * a failed evaluation says nothing a regression could use.
 */
export class SurrogateArchive {
  readonly dim: number;
  readonly settings: SurrogateSettings;
  private points: ArchivePoint[] = [];

  constructor(dim: number, settings: SurrogateSettings = DEFAULT_SURROGATE_SETTINGS, points: ArchivePoint[] = []) {
    this.dim = dim;
    this.settings = settings;
    for (const p of [...points].reverse()) this.add(p.x, p.f);
  }

  get size(): number {
    return this.points.length;
  }

  /** Newest first. */
  get entries(): readonly ArchivePoint[] {
    return this.points;
  }

  add(x: readonly number[], f: number): void {
    if (x.length !== this.dim) throw new LorahubError('INTERNAL', `surrogate: point has ${x.length} coordinates, expected ${this.dim}`);
    if (!Number.isFinite(f)) return;
    this.points.unshift({ x: [...x], f });
    const full = coefficientCount(this.kinds().at(-1) ?? 'linear', this.dim);
    const floor = Math.ceil((full * this.settings.minRelativeSize) / this.settings.truncationRatio);
    const cap = Math.max(Math.ceil(this.settings.maxRelativeSize * full), floor);
    if (this.points.length > cap) this.points.length = cap;
  }

  /** Orders the newest k points by value, best first (pycma sorts each sweep of evaluations so). */
  sortNewest(k: number): void {
    const head = this.points.slice(0, k).sort((a, b) => a.f - b.f);
    this.points.splice(0, head.length, ...head);
  }

  /** The kinds the settings allow in this dimension, simplest first (linear always). */
  kinds(): ModelKind[] {
    const { maxKind, maxCoefficients } = this.settings;
    return MODEL_KINDS.slice(0, MODEL_KINDS.indexOf(maxKind) + 1).filter((k, i) => i === 0 || coefficientCount(k, this.dim) <= maxCoefficients);
  }

  /** The most complex kind the archive supports. */
  kind(): ModelKind {
    const { truncationRatio, minRelativeSize } = this.settings;
    let best: ModelKind = 'linear';
    for (const kind of this.kinds()) {
      if (this.size * truncationRatio >= minRelativeSize * coefficientCount(kind, this.dim)) best = kind;
    }
    return best;
  }

  /** Fits the model in the given coordinates; null with fewer than 2 points. */
  fit(coordinates: Coordinates): QuadraticModel | null {
    if (this.size < 2) return null;
    const kind = this.kind();
    const p = coefficientCount(kind, this.dim);
    const use = Math.min(this.size, Math.max(p + 2, Math.floor(this.settings.truncationRatio * (this.size + 1))));
    // Stable: equal values keep their archive order (newest first).
    const order = this.points.map((_, k) => k).sort((a, b) => this.points[a].f - this.points[b].f || a - b).slice(0, use);
    const rows = order.map((k) => features(toModelCoordinates(coordinates, this.points[k].x), kind));
    const y = order.map((k) => this.points[k].f);
    const w = order.map((_, r) => (use === 1 ? this.settings.maxWeight : this.settings.maxWeight - ((this.settings.maxWeight - 1) * r) / (use - 1)));
    return new QuadraticModel(kind, coordinates, leastSquares(rows, y, w));
  }

  /** τ between the true values and the model's on the newest `count` points (0 below 3). */
  kendall(model: QuadraticModel, count: number): number {
    const recent = this.points.slice(0, Math.min(count, this.size));
    if (recent.length < 3) return 0;
    return kendallTau(
      recent.map((p) => p.f),
      recent.map((p) => model.predict(p.x)),
    );
  }

  state(): ArchivePoint[] {
    return this.points.map((p) => ({ x: [...p.x], f: p.f }));
  }
}

// ---- lq-CMA-ES: CMA-ES whose populations the surrogate ranks ----

/**
 * lq-CMA-ES's settings (Hansen 2019; pycma `SurrogatePopulationSettings`): how much the model must
 * agree with the truth before it may stand in for it, and how it proposes candidates itself.
 */
export interface LqSettings {
  readonly surrogate: SurrogateSettings;
  /** Kendall τ between model and truth on the newest points that lets the model rank the rest (pycma 0.85). */
  readonly tauThreshold: number;
  /** τ is measured on at least this many of the newest points (pycma 15). */
  readonly minTauPoints: number;
  /**
   * Put the model's minimiser within a trust region around the mean into every population as
   * its last candidate (pycma's `ModelInjectionCallback` injects the model optimum likewise).
   */
  readonly inject: boolean;
  /** The trust region's radius in sampling coordinates, times √n + 2n/(n + 2) (pycma's clip for injected steps). */
  readonly injectRadius: number;
  /**
   * Before CMA-ES starts: probe each module alone at this weight, x₀ + c·eᵢ (0: no probes), and
   * start CMA-ES from the best of x₀ and the probes (the best single module, when one beats the
   * base). The n probes also give the surrogate its first well-posed linear model.
   */
  readonly design: number;
}

/**
 * pycma's values, except `design`: 0.75 is COBYLA's first step here (a quarter of the ±1.5 box);
 * on bench:search it made lq-CMA-ES reach COBYLA@40's objective sooner (README "ADAPT").
 */
export const DEFAULT_LQ_SETTINGS: LqSettings = Object.freeze({
  surrogate: DEFAULT_SURROGATE_SETTINGS,
  tauThreshold: 0.85,
  minTauPoints: 15,
  inject: true,
  injectRadius: 1,
  design: 0.75,
});

export interface LqCmaesOptions {
  x0: number[];
  sigma0: number;
  popsize: number;
  lower: number[];
  upper: number[];
  mirrored: boolean;
  /** Shared with the caller, who snapshots it (`Rng.state()`) beside `LqCmaes.snapshot()`. */
  rng: Rng;
  settings: LqSettings;
}

/** A value as JSON can hold it: +∞ (a failed evaluation) as a string, "not evaluated yet" as null. */
type StoredValue = number | 'Infinity' | null;

/** The population in progress: all λ candidates and the true values of those evaluated so far. */
interface Generation {
  xs: number[][];
  values: (number | null)[];
  /** Evaluate (in the model's order) until this many are evaluated, then test τ again. */
  target: number;
}

/** Everything but the Rng; with it, `new LqCmaes(sameOptions, snapshot)` continues bit for bit. */
export interface LqCmaesSnapshot {
  cmaes: CmaesState;
  /** The surrogate's archive, newest first; the model is refitted from it. */
  archive: ArchivePoint[];
  generation: { xs: number[][]; values: StoredValue[]; target: number } | null;
  /** What the last `ask()` handed out, until told: indices into the generation, or design points. */
  asked: number[];
  /** Design points still to ask for. */
  design: number[][];
}

/**
 * lq-CMA-ES (Hansen, GECCO 2019; pycma `fmin_lq_surr2`), one generation at a time:
 *  1. CMA-ES samples λ candidates; the model's trust-region minimiser replaces the last.
 *  2. They are evaluated in the model's order, a round at a time (pycma: first
 *     ⌊1 + max(λ/50, 4 − archive size)⌋, then 1.5× as many), one round per `ask()`; after each
 *     round the model is refitted and Kendall's τ between it and the true values of the newest
 *     points decides: τ ≥ threshold lets the model rank the rest.
 *  3. CMA-ES is told the whole population: the true values when all were evaluated, else the
 *     model's, shifted so that their best equals the best true value (as pycma does).
 */
export class LqCmaes {
  readonly lambda: number;
  private readonly o: LqCmaesOptions;
  private es: CMAES;
  private readonly archive: SurrogateArchive;
  private design: number[][];
  private gen: Generation | null;
  private asked: number[];
  /** The model for the current coordinates and archive; refitted when either changes. */
  private model: QuadraticModel | null = null;
  private modelFresh = false;

  constructor(o: LqCmaesOptions, snapshot?: LqCmaesSnapshot) {
    this.o = o;
    this.lambda = o.popsize;
    const n = o.x0.length;
    if (!snapshot) {
      this.es = this.newCmaes(o.x0);
      this.archive = new SurrogateArchive(n, o.settings.surrogate);
      const c = o.settings.design;
      this.design = c > 0 ? o.x0.map((_, i) => o.x0.map((v, j) => (j === i ? Math.min(o.upper[j], Math.max(o.lower[j], v + c)) : v))) : [];
      this.gen = null;
      this.asked = [];
      return;
    }
    this.es = CMAES.fromState(snapshot.cmaes, o.rng);
    if (this.es.params.dimension !== n || this.es.params.lambda !== o.popsize) {
      throw new LorahubError('BAD_FILE', `resume lq-cmaes: snapshot has dim ${this.es.params.dimension} and λ ${this.es.params.lambda}, options say ${n} and ${o.popsize}`);
    }
    const points = (v: unknown, what: string, finite: boolean): void => {
      const ok = Array.isArray(v) && v.every((p) => (finite ? Array.isArray(p?.x) && p.x.length === n && Number.isFinite(p.f) : Array.isArray(p) && p.length === n && p.every(Number.isFinite)));
      if (!ok) throw new LorahubError('BAD_FILE', `resume lq-cmaes: ${what} must hold points of ${n} numbers`);
    };
    points(snapshot.archive, 'archive', true);
    points(snapshot.design, 'design', false);
    this.archive = new SurrogateArchive(n, o.settings.surrogate, snapshot.archive);
    this.design = snapshot.design.map((x) => [...x]);
    this.gen = snapshot.generation === null ? null : loadGeneration(snapshot.generation, n, o.popsize);
    this.asked = Array.isArray(snapshot.asked) && snapshot.asked.every(Number.isInteger) ? [...snapshot.asked] : [];
  }

  /** Evaluations made elsewhere (adapt scores w = 0 first): the surrogate learns from them too. */
  observe(xs: number[][], fs: number[]): void {
    xs.forEach((x, k) => this.archive.add(x, Number.isNaN(fs[k]) ? Infinity : fs[k]));
    this.modelFresh = false;
  }

  /** The next candidates to evaluate truly: at most `max` (the budget left), at least one. */
  ask(max: number): number[][] {
    if (this.design.length > 0) {
      const k = Math.max(1, Math.min(this.lambda, this.design.length, max));
      this.asked = Array.from({ length: k }, (_, i) => i);
      return this.design.slice(0, k).map((x) => [...x]);
    }
    const gen = this.gen ?? this.startGeneration();
    const pending = gen.values.map((v, k) => (v === null ? k : -1)).filter((k) => k >= 0);
    const model = this.fitted();
    const predicted = model ? gen.xs.map((x) => model.predict(x)) : null;
    // The model's order; ties (or no model yet) in sampling order.
    const order = predicted ? [...pending].sort((a, b) => predicted[a] - predicted[b] || a - b) : pending;
    const evaluated = gen.values.length - pending.length;
    this.asked = order.slice(0, Math.max(1, Math.min(gen.target - evaluated, max, pending.length)));
    return this.asked.map((i) => [...gen.xs[i]]);
  }

  /** True values for exactly the candidates of the last `ask()`, in order. */
  tell(xs: number[][], fs: number[]): void {
    const fromDesign = this.design.length > 0;
    const expected = fromDesign ? this.asked.map((i) => this.design[i]) : this.asked.map((i) => this.gen?.xs[i]);
    if (xs.length !== expected.length || !xs.every((x, k) => expected[k] !== undefined && x.every((v, i) => v === expected[k]?.[i]))) {
      throw new LorahubError('INTERNAL', 'lq-cmaes tell: expected exactly the candidates of the last ask, in order');
    }
    const values = fs.map((f) => (Number.isNaN(f) ? Infinity : f));
    const asked = this.asked;
    this.asked = [];
    this.observe(xs, values);
    if (fromDesign) {
      this.design.splice(0, xs.length);
      if (this.design.length === 0) {
        // Start from the best of x₀ (if it was observed) and the probes.
        const best = this.archive.entries.reduce((a, b) => (b.f < a.f ? b : a));
        this.es = this.newCmaes(best.x);
      }
      return;
    }
    const gen = this.gen as Generation;
    asked.forEach((i, k) => {
      gen.values[i] = values[k];
    });
    // The generation's finite values head the archive, best first (pycma `model.sort`).
    this.archive.sortNewest(gen.values.filter((v) => v !== null && Number.isFinite(v)).length);
    if (gen.values.every((v) => v !== null)) {
      this.finishGeneration(gen.values as number[]);
      return;
    }
    const model = this.fitted();
    const evaluated = gen.values.filter((v) => v !== null).length;
    const nTau = Math.floor(Math.max(this.o.settings.minTauPoints, Math.min(1.2 * evaluated, 0.75 * this.lambda)));
    if (model && this.archive.kendall(model, nTau) >= this.o.settings.tauThreshold) {
      this.finishGeneration(surrogateValues(model, gen));
      return;
    }
    gen.target += Math.ceil(gen.target / 2);
  }

  /** CMA-ES's stop criteria (pycma keys), checked between generations only; empty: go on. */
  stop(): string[] {
    if (this.gen !== null || this.design.length > 0) return [];
    return Object.keys(this.es.stop()).filter((k) => k !== 'maxfevals');
  }

  snapshot(): LqCmaesSnapshot {
    const g = this.gen;
    return {
      cmaes: this.es.state(),
      archive: this.archive.state(),
      generation: g === null ? null : { xs: g.xs.map((x) => [...x]), values: g.values.map((v) => (v === Infinity ? 'Infinity' : v)), target: g.target },
      asked: [...this.asked],
      design: this.design.map((x) => [...x]),
    };
  }

  private newCmaes(x0: number[]): CMAES {
    return new CMAES({
      x0,
      sigma0: this.o.sigma0,
      popsize: this.o.popsize,
      lowerBounds: this.o.lower,
      upperBounds: this.o.upper,
      rng: this.o.rng,
      mirrored: this.o.mirrored,
      // CMA-ES counts λ per generation, truly evaluated or not: the caller keeps the budget.
      maxEvaluations: Number.MAX_SAFE_INTEGER,
    });
  }

  /** Samples a population and puts the model's trust-region minimiser in as its last candidate. */
  private startGeneration(): Generation {
    const xs = this.es.ask();
    this.modelFresh = false;
    const { inject, injectRadius, surrogate } = this.o.settings;
    const model = this.fitted();
    if (inject && model) {
      const n = this.o.x0.length;
      const u = model.minimizeInBall(new Array<number>(n).fill(0), injectRadius * (Math.sqrt(n) + (2 * n) / (n + 2)));
      const x = fromModelCoordinates(model.coordinates, u);
      if (x.every(Number.isFinite)) xs[xs.length - 1] = x.map((v, i) => Math.min(this.o.upper[i], Math.max(this.o.lower[i], v)));
    }
    const target = Math.floor(1 + Math.max((this.lambda * 2) / 100, 3 / surrogate.truncationRatio - this.archive.size));
    this.gen = { xs, values: new Array<number | null>(xs.length).fill(null), target };
    return this.gen;
  }

  private finishGeneration(values: number[]): void {
    const gen = this.gen as Generation;
    this.es.tell(gen.xs, values);
    this.gen = null;
    this.modelFresh = false;
  }

  /** The model in the current population's sampling coordinates (null below 2 archived points). */
  private fitted(): QuadraticModel | null {
    if (!this.modelFresh) {
      this.model = this.archive.fit(this.es.samplingCoordinates());
      this.modelFresh = true;
    }
    return this.model;
  }
}

/** Model values for the whole population, shifted so that their best equals the best true value; failures stay +∞. */
function surrogateValues(model: QuadraticModel, gen: Generation): number[] {
  const predicted = gen.xs.map((x) => model.predict(x));
  const trueBest = Math.min(...gen.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const modelBest = Math.min(...predicted);
  return predicted.map((p, k) => (gen.values[k] === Infinity ? Infinity : Number.isFinite(trueBest) ? p - modelBest + trueBest : p));
}

function loadGeneration(g: NonNullable<LqCmaesSnapshot['generation']>, n: number, lambda: number): Generation {
  const okX = Array.isArray(g.xs) && g.xs.length === lambda && g.xs.every((x) => Array.isArray(x) && x.length === n && x.every(Number.isFinite));
  const okV = Array.isArray(g.values) && g.values.length === lambda && g.values.every((v) => v === null || v === 'Infinity' || typeof v === 'number');
  if (!okX || !okV || !Number.isInteger(g.target)) {
    throw new LorahubError('BAD_FILE', `resume lq-cmaes: the generation must hold ${lambda} candidates of ${n} numbers, their values and a target`);
  }
  return { xs: g.xs.map((x) => [...x]), values: g.values.map((v) => (v === 'Infinity' ? Infinity : v)), target: g.target };
}
