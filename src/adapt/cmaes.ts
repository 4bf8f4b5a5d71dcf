/**
 * CMA-ES with ask/tell, after N. Hansen, "The CMA Evolution Strategy: A Tutorial",
 * arXiv:1604.00772 (2016–2023), Appendix A, and the structure of pycma's `purecma.py`:
 * fixed strategy parameters (`CmaesParameters`) are computed once and kept apart from the
 * changing state (mean m, step-size σ, paths pσ and pc, covariance C and its lazily updated
 * eigendecomposition C = B·diag(D)²·Bᵀ).
 *
 * Defaults follow pycma (`cma.CMAEvolutionStrategy`): the *active* covariance update with
 * negative recombination weights (`CMA_active=True`) and pycma's box-constraint handling
 * `BoundTransform`. Equation numbers below refer to the tutorial.
 *
 * Box bounds. The search runs in an unbounded genotype space; `ask()` maps every sample
 * through a piecewise linear/quadratic periodic transformation into [lower, upper]
 * (pycma `transformations.BoxConstraintsLinQuadTransformation`), so every candidate handed
 * out is feasible. `tell()` takes those feasible points (phenotypes); the genotype behind
 * each is looked up from the last `ask()`, and a point that was not asked for is mapped back
 * with the inverse transformation (so injected solutions work too).
 */
import { LorahubError } from '../errors.ts';
import { BoxTransform } from './box-transform.ts';
import { symmetricEigen, identity } from './eigen.ts';
import type { Rng } from '../rng.ts';

export interface CmaesOptions {
  /** Initial mean, a feasible point (inside the bounds when there are bounds). */
  x0: number[];
  /** Initial step-size: the standard deviation of every coordinate in the first generation. */
  sigma0: number;
  /**
   * λ, candidates per generation; default 4 + ⌊3 ln n⌋ (eq. 48), the textbook value that
   * bench:cmaes compares with pycma. ADAPT always passes its own (optimizer.ts SEARCH_DEFAULTS).
   */
  popsize?: number;
  /** Per-coordinate or common lower bounds; omitted or -Infinity means unbounded below. */
  lowerBounds?: number[] | number;
  upperBounds?: number[] | number;
  /** Injected so that the same seed gives the same run (see rng.ts). */
  rng: Rng;
  /** Stop after this many evaluations; default λ·(100 + 150 (n+3)²/√λ) as pycma's maxiter. */
  maxEvaluations?: number;
  /** Stop when the recent f-values span less than this; default 1e-11 (pycma `tolfun`). */
  tolFun?: number;
  /** Stop when σ·max(|pc|, √diag C) < tolX in every coordinate; default 1e-11 (pycma `tolx`). */
  tolX?: number;
  /** Stop when the best f of a generation is ≤ ftarget. */
  ftarget?: number;
  /**
   * Mirrored sampling (Brockhoff, Auger, Hansen, Arnold, Hohm, "Mirrored sampling and sequential
   * selection for evolution strategies", PPSN 2010): candidates come in pairs m ± σBDz.
   */
  mirrored?: boolean;
}

/** Strategy parameters that never change during a run (tutorial Table 1 and eqs. 48–58). */
export interface CmaesParameters {
  readonly dimension: number;
  /** λ, population size. */
  readonly lambda: number;
  /** μ = ⌊λ/2⌋, number of positive recombination weights. */
  readonly mu: number;
  /** All λ weights, by rank: μ positive ones summing to 1, then zero or negative ones (eq. 53). */
  readonly weights: readonly number[];
  /** Variance-effective selection mass of the positive weights, μ_eff (Table 1). */
  readonly mueff: number;
  /** The same for the negative weights, μ_eff⁻ (Table 1). */
  readonly mueffMinus: number;
  /** Learning rate of the evolution path for C (eq. 56). */
  readonly cc: number;
  /** Learning rate of the evolution path for σ (eq. 55). */
  readonly cs: number;
  /** Rank-one learning rate (eq. 57). */
  readonly c1: number;
  /** Rank-μ learning rate (eq. 58). */
  readonly cmu: number;
  /** Damping for σ (eq. 55). */
  readonly damps: number;
  /** E‖N(0, I)‖ ≈ √n (1 − 1/(4n) + 1/(21n²)) (tutorial, below eq. 44). */
  readonly chiN: number;
  /** Evaluations between eigendecompositions (purecma `lazy_gap_evals`). */
  readonly lazyGapEvals: number;
}

/** Why a run stopped: keys as in purecma/pycma, values are the thresholds that were hit. */
export type StopReasons = Record<string, number | boolean>;

/** A JSON number that may be infinite (JSON has no Infinity; `JSON.stringify` would write null). */
export type JsonNumber = number | 'Infinity' | '-Infinity';

/** JSON-serialisable snapshot of a run, for checkpoints; see `CMAES.fromState`. */
export interface CmaesState {
  readonly version: 1;
  readonly popsize: number;
  readonly lowerBounds: JsonNumber[];
  readonly upperBounds: JsonNumber[];
  readonly maxEvaluations: number;
  readonly tolFun: number;
  readonly tolX: number;
  readonly ftarget: number | null;
  /** Absent in snapshots written before mirrored sampling existed: false. */
  readonly mirrored?: boolean;
  /** Mean in genotype space. */
  readonly mean: number[];
  readonly sigma: number;
  readonly ps: number[];
  readonly pc: number[];
  readonly C: number[][];
  readonly B: number[][];
  readonly D: number[];
  readonly condition: number;
  readonly eigenEvaluations: number;
  readonly countEvaluations: number;
  readonly generation: number;
  readonly best: { x: number[]; f: JsonNumber; evaluations: number };
  readonly lastFitness: JsonNumber[];
  readonly fitnessHistory: JsonNumber[];
  readonly pending: { x: number[]; genotype: number[] }[] | null;
}

/**
 * Fixed strategy parameters for dimension n, along the dependency chain
 * λ → weights → μ_eff → c1, cμ → negative weights (pycma `recombination_weights.py`).
 */
export function cmaesParameters(n: number, popsize?: number): CmaesParameters {
  if (!Number.isInteger(n) || n < 1) {
    throw new LorahubError('INTERNAL', `CMA-ES: dimension must be a positive integer, got ${n}`);
  }
  const lambda = popsize ?? 4 + Math.floor(3 * Math.log(n)); // eq. 48
  if (!Number.isInteger(lambda) || lambda < 2) {
    throw new LorahubError('BAD_ARGUMENT', `CMA-ES: popsize must be an integer ≥ 2, got ${popsize}`);
  }
  const mu = Math.floor(lambda / 2);

  // Raw weights w'_i = ln((λ+1)/2) − ln i (eq. 49): positive for i ≤ μ, ≤ 0 after.
  const raw = Array.from({ length: lambda }, (_, i) => Math.log((lambda + 1) / 2) - Math.log(i + 1));
  const pos = raw.filter((w) => w > 0);
  const neg = raw.filter((w) => w < 0);
  const sumPos = pos.reduce((s, w) => s + w, 0);
  const sumNeg = -neg.reduce((s, w) => s + w, 0);
  const mueff = sumPos ** 2 / pos.reduce((s, w) => s + w * w, 0);
  const mueffMinus = neg.length > 0 ? sumNeg ** 2 / neg.reduce((s, w) => s + w * w, 0) : 0;

  // Learning rates as in the tutorial's Table 1 (eqs. 54–58, α_cov = 2, c_m = 1). pycma 4.5
  // deviates slightly (cσ = min(1/2, (μ_eff + 2)/(n + μ_eff + 3)), an extra +1/4 in cμ's
  // numerator); with the tutorial values our evaluation counts match pycma's medians within
  // a few percent (scripts/bench-cmaes.ts), so we keep the published ones.
  const cs = (mueff + 2) / (n + mueff + 5);
  const damps = 1 + 2 * Math.max(0, Math.sqrt((mueff - 1) / (n + 1)) - 1) + cs;
  const cc = (4 + mueff / n) / (n + 4 + (2 * mueff) / n);
  const c1 = 2 / ((n + 1.3) ** 2 + mueff);
  const cmu = Math.min(1 - c1, (2 * (mueff - 2 + 1 / mueff)) / ((n + 2) ** 2 + mueff));

  // Negative weights sum to −min(α_μ⁻, α_μeff⁻, α_posdef⁻) (eqs. 50, 53): α_μ⁻ = 1 + c1/cμ gives
  // c1 + cμ Σw = 0, so C does not decay in eq. 47; α_posdef⁻ keeps C positive definite.
  const alphaMu = 1 + c1 / cmu;
  const alphaMueff = 1 + (2 * mueffMinus) / (mueff + 2);
  const alphaPosdef = (1 - c1 - cmu) / (n * cmu);
  const negScale = Math.min(alphaMu, alphaMueff, alphaPosdef);
  const weights = raw.map((w) => (w > 0 ? w / sumPos : w < 0 ? (negScale * w) / sumNeg : 0));

  return {
    dimension: n,
    lambda,
    mu,
    weights,
    mueff,
    mueffMinus,
    cc,
    cs,
    c1,
    cmu,
    damps,
    chiN: Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n)),
    // purecma: postpone the O(n³) eigendecomposition so that it costs O(n²) per evaluation.
    lazyGapEvals: (0.5 * n * lambda) / (c1 + cmu) / (n * n),
  };
}

interface Pending {
  x: number[];
  genotype: number[];
}

interface CmaesCore {
  params: CmaesParameters;
  box: BoxTransform;
  maxEvaluations: number;
  tolFun: number;
  tolX: number;
  ftarget: number | null;
  mirrored: boolean;
}

/** Ranking treats NaN as +Infinity: a failed evaluation is the worst possible candidate. */
function sanitise(f: number): number {
  return Number.isNaN(f) ? Infinity : f;
}

export class CMAES {
  readonly params: CmaesParameters;
  private readonly box: BoxTransform;
  private readonly rng: Rng;
  private readonly maxEvaluations: number;
  private readonly tolFun: number;
  private readonly tolX: number;
  private readonly ftarget: number | null;
  private readonly mirrored: boolean;

  // ---- changing state (purecma's CMAES attributes) ----
  private xmean: number[]; // genotype space
  private sigmaValue: number;
  private ps: number[];
  private pc: number[];
  private C: number[][];
  private B: number[][]; // eigenvectors of C as columns
  private D: number[]; // square roots of the eigenvalues of C
  private condition = 1;
  private eigenEvaluations = 0;
  private counteval = 0;
  private iteration = 0;
  private bestSoFar: { x: number[]; f: number; evaluations: number };
  private lastFitness: number[] = []; // sorted f-values of the last generation
  private fitnessHistory: number[] = []; // best f per generation, most recent last
  private pending: Pending[] | null = null;

  constructor(opts: CmaesOptions) {
    const n = opts.x0.length;
    const core = validateOptions(opts);
    this.params = core.params;
    this.box = core.box;
    this.maxEvaluations = core.maxEvaluations;
    this.tolFun = core.tolFun;
    this.tolX = core.tolX;
    this.ftarget = core.ftarget;
    this.mirrored = core.mirrored;
    this.rng = opts.rng;

    this.xmean = this.box.inverse(opts.x0);
    this.sigmaValue = opts.sigma0;
    this.ps = new Array<number>(n).fill(0);
    this.pc = new Array<number>(n).fill(0);
    this.C = identity(n);
    this.B = identity(n);
    this.D = new Array<number>(n).fill(1);
    this.bestSoFar = { x: [...opts.x0], f: Infinity, evaluations: 0 };
  }

  get countEvaluations(): number {
    return this.counteval;
  }

  get generation(): number {
    return this.iteration;
  }

  get sigma(): number {
    return this.sigmaValue;
  }

  /** The distribution mean mapped into the box (pycma's `xfavorite`); often better than `best`. */
  get mean(): number[] {
    return this.box.transform(this.xmean);
  }

  /**
   * The coordinates in which the current distribution is N(0, I): u = D⁻¹Bᵀ(x − m)/σ, and back
   * x = m + σBDu, centred on the mean's image in the box (for a point inside the box's linear
   * part, phenotype and genotype coincide). Valid for the population of the last `ask()`, which
   * brings the lazy eigendecomposition up to date; the surrogate (surrogate.ts) fits in them.
   */
  samplingCoordinates(): { center: number[]; toModel: number[][]; fromModel: number[][] } {
    const n = this.params.dimension;
    const s = this.sigmaValue;
    return {
      center: this.box.transform(this.xmean),
      toModel: Array.from({ length: n }, (_, k) => Array.from({ length: n }, (_, i) => this.B[i][k] / (this.D[k] * s))),
      fromModel: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, k) => s * this.B[i][k] * this.D[k])),
    };
  }

  /** Best evaluated solution so far (feasible point), its f and the evaluation count when found. */
  get best(): { x: number[]; f: number; evaluations: number } {
    return { x: [...this.bestSoFar.x], f: this.bestSoFar.f, evaluations: this.bestSoFar.evaluations };
  }

  /**
   * λ new candidates x_k = T(m + σ B D z_k), z_k ~ N(0, I) (eqs. 38–40), T the box transform.
   * Calling `ask()` again before `tell()` replaces the pending generation.
   */
  ask(): number[][] {
    this.updateEigensystem();
    const { dimension: n, lambda } = this.params;
    const pending: Pending[] = [];
    let last: number[] = [];
    for (let k = 0; k < lambda; k++) {
      const z = this.mirrored && k % 2 === 1 ? last.map((v) => -v) : this.rng.normals(n);
      last = z;
      const genotype = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        let y = 0;
        for (let j = 0; j < n; j++) y += this.B[i][j] * this.D[j] * z[j];
        genotype[i] = this.xmean[i] + this.sigmaValue * y;
      }
      pending.push({ x: this.box.transform(genotype), genotype });
    }
    this.pending = pending;
    return pending.map((p) => [...p.x]);
  }

  /**
   * Updates m, pσ, pc, C and σ from λ evaluated candidates (tutorial Appendix A, eqs. 41–47,
   * including the active update with negative weights). Candidates may come in any order.
   * NaN values rank as +Infinity.
   */
  tell(solutions: number[][], values: number[]): void {
    const { dimension: n, lambda, mu, weights, mueff, cs, cc, c1, cmu, damps, chiN } = this.params;
    if (solutions.length !== lambda || values.length !== lambda) {
      throw new LorahubError(
        'INTERNAL',
        `CMA-ES tell: expected λ = ${lambda} solutions and values, got ${solutions.length} and ${values.length}`,
      );
    }
    const genotypes = solutions.map((x, k) => this.genotypeOf(x, k));
    const f = values.map((v, k) => {
      if (typeof v !== 'number') throw new LorahubError('INTERNAL', `CMA-ES tell: value ${k} is not a number`);
      return sanitise(v);
    });
    // Stable ranking: ties (e.g. several +Infinity) keep their input order, so runs are reproducible.
    const order = f.map((_, k) => k).sort((a, b) => (f[a] < f[b] ? -1 : f[a] > f[b] ? 1 : a - b));

    this.counteval += lambda;
    this.iteration += 1;
    this.pending = null;
    const top = order[0];
    if (f[top] < this.bestSoFar.f) {
      this.bestSoFar = { x: [...solutions[top]], f: f[top], evaluations: this.counteval };
    }
    this.lastFitness = order.map((k) => f[k]);
    this.fitnessHistory.push(f[top]);
    const historyLength = 10 + Math.ceil((30 * n) / lambda); // pycma's fit.hist length for tolfun
    if (this.fitnessHistory.length > historyLength) this.fitnessHistory.shift();

    const xold = this.xmean;
    const sigma = this.sigmaValue;
    // y_k = (x_k − m)/σ in genotype space, in rank order (eq. 41's y_{i:λ}).
    const ys = order.map((k) => genotypes[k].map((g, i) => (g - xold[i]) / sigma));

    // Mean: m ← m + σ Σ_{i≤μ} w_i y_{i:λ} (eq. 41, c_m = 1).
    const ymean = new Array<number>(n).fill(0);
    for (let r = 0; r < mu; r++) {
      for (let i = 0; i < n; i++) ymean[i] += weights[r] * ys[r][i];
    }
    this.xmean = xold.map((m, i) => m + sigma * ymean[i]);

    // Step-size path: pσ ← (1 − cσ) pσ + √(cσ(2 − cσ) μ_eff) C^{-1/2} ⟨y⟩_w (eq. 43).
    const zmean = this.whiten(ymean);
    const csn = Math.sqrt(cs * (2 - cs) * mueff);
    this.ps = this.ps.map((p, i) => (1 - cs) * p + csn * zmean[i]);
    const psNormSq = this.ps.reduce((s, p) => s + p * p, 0);

    // h_σ stalls pc when ‖pσ‖ is large, i.e. while σ is still growing fast (tutorial, below
    // eq. 45, with the correction for pσ's start at 0; compared in squared form as pycma does).
    const hsig = psNormSq / n / (1 - (1 - cs) ** (2 * this.iteration)) < 2 + 4 / (n + 1) ? 1 : 0;
    const ccn = Math.sqrt(cc * (2 - cc) * mueff);
    this.pc = this.pc.map((p, i) => (1 - cc) * p + hsig * ccn * ymean[i]); // eq. 45

    // Covariance (eq. 47): C ← (1 + c1 δ(hσ) − c1 − cμ Σw) C + c1 pc pcᵀ + cμ Σ w°_i y_i y_iᵀ,
    // δ(hσ) = (1 − hσ) cc (2 − cc); w°_i = w_i · n/‖C^{-1/2} y_i‖² for negative w_i (eq. 46),
    // which bounds how much an unlucky direction can shrink C.
    const sumW = weights.reduce((s, w) => s + w, 0);
    const c1a = c1 * (1 - (1 - hsig) * cc * (2 - cc));
    this.scaleC(1 - c1a - cmu * sumW);
    this.addOuter(this.pc, c1);
    for (let r = 0; r < lambda; r++) {
      let w = weights[r];
      if (w === 0) continue;
      if (w < 0) {
        const z = this.whiten(ys[r]);
        const normSq = z.reduce((s, v) => s + v * v, 0);
        w *= normSq > 0 ? n / normSq : 0;
      }
      this.addOuter(ys[r], cmu * w);
    }

    // Step size (eq. 44), with purecma's cap of the exponent at 1 against huge first steps.
    this.sigmaValue = sigma * Math.exp(Math.min(1, (cs / damps) * (Math.sqrt(psNormSq) / chiN - 1)));
  }

  /** Satisfied termination criteria (purecma `stop()`); an empty object means keep going. */
  stop(): StopReasons {
    const res: StopReasons = {};
    if (this.counteval <= 0) return res;
    if (this.counteval >= this.maxEvaluations) res.maxfevals = this.maxEvaluations;
    if (this.ftarget !== null && this.lastFitness.length > 0 && this.lastFitness[0] <= this.ftarget) {
      res.ftarget = this.ftarget;
    }
    if (this.condition > 1e14) res.condition = this.condition;
    const recent = [...this.lastFitness, ...this.fitnessHistory];
    const hi = Math.max(...recent);
    const lo = Math.min(...recent);
    if (this.iteration > 1 && (hi === lo || hi - lo < this.tolFun)) res.tolfun = this.tolFun;
    let spread = 0;
    for (let i = 0; i < this.params.dimension; i++) {
      spread = Math.max(spread, Math.abs(this.pc[i]), Math.sqrt(this.C[i][i]));
    }
    if (this.sigmaValue * spread < this.tolX) res.tolx = this.tolX;
    if (!Number.isFinite(this.sigmaValue)) res.sigma = this.sigmaValue;
    return res;
  }

  /** JSON-serialisable snapshot. Restore the Rng from its own snapshot taken at the same time. */
  state(): CmaesState {
    return {
      version: 1,
      popsize: this.params.lambda,
      lowerBounds: this.box.lower.map(encodeNumber),
      upperBounds: this.box.upper.map(encodeNumber),
      maxEvaluations: this.maxEvaluations,
      tolFun: this.tolFun,
      tolX: this.tolX,
      ftarget: this.ftarget,
      mirrored: this.mirrored,
      mean: [...this.xmean],
      sigma: this.sigmaValue,
      ps: [...this.ps],
      pc: [...this.pc],
      C: this.C.map((row) => [...row]),
      B: this.B.map((row) => [...row]),
      D: [...this.D],
      condition: this.condition,
      eigenEvaluations: this.eigenEvaluations,
      countEvaluations: this.counteval,
      generation: this.iteration,
      best: { x: [...this.bestSoFar.x], f: encodeNumber(this.bestSoFar.f), evaluations: this.bestSoFar.evaluations },
      lastFitness: this.lastFitness.map(encodeNumber),
      fitnessHistory: this.fitnessHistory.map(encodeNumber),
      pending: this.pending?.map((p) => ({ x: [...p.x], genotype: [...p.genotype] })) ?? null,
    };
  }

  /**
   * Resumes a run from `state()`. With `rng` restored from a snapshot taken together with the
   * state, the run continues on exactly the trajectory it would have followed.
   */
  static fromState(state: CmaesState, rng: Rng): CMAES {
    if (state.version !== 1) {
      throw new LorahubError('BAD_FILE', `CMA-ES state: unsupported version ${String(state.version)}`);
    }
    const best = { x: state.best.x, f: decodeNumber(state.best.f), evaluations: state.best.evaluations };
    const es = new CMAES({
      x0: best.x,
      sigma0: state.sigma,
      popsize: state.popsize,
      lowerBounds: state.lowerBounds.map(decodeNumber),
      upperBounds: state.upperBounds.map(decodeNumber),
      rng,
      maxEvaluations: state.maxEvaluations,
      tolFun: state.tolFun,
      tolX: state.tolX,
      ftarget: state.ftarget ?? undefined,
      mirrored: state.mirrored === true,
    });
    const n = es.params.dimension;
    const vec = (v: number[], name: string): number[] => {
      if (v.length !== n || !v.every(Number.isFinite)) {
        throw new LorahubError('BAD_FILE', `CMA-ES state: ${name} must hold ${n} finite numbers`);
      }
      return [...v];
    };
    const mat = (m: number[][], name: string): number[][] => {
      if (m.length !== n) throw new LorahubError('BAD_FILE', `CMA-ES state: ${name} must be ${n}×${n}`);
      return m.map((row, i) => vec(row, `${name}[${i}]`));
    };
    es.xmean = vec(state.mean, 'mean');
    es.ps = vec(state.ps, 'ps');
    es.pc = vec(state.pc, 'pc');
    es.C = mat(state.C, 'C');
    es.B = mat(state.B, 'B');
    es.D = vec(state.D, 'D');
    es.condition = state.condition;
    es.eigenEvaluations = state.eigenEvaluations;
    es.counteval = state.countEvaluations;
    es.iteration = state.generation;
    es.bestSoFar = best;
    es.lastFitness = state.lastFitness.map(decodeNumber);
    es.fitnessHistory = state.fitnessHistory.map(decodeNumber);
    es.pending = state.pending?.map((p) => ({ x: vec(p.x, 'pending x'), genotype: vec(p.genotype, 'pending genotype') })) ?? null;
    return es;
  }

  // ---- internals ----

  /** The genotype behind a told solution: the asked one if it matches, else the inverse map. */
  private genotypeOf(x: number[], k: number): number[] {
    const n = this.params.dimension;
    if (!Array.isArray(x) || x.length !== n) {
      throw new LorahubError('INTERNAL', `CMA-ES tell: solution ${k} must have ${n} coordinates`);
    }
    const asked = this.pending?.find((p) => p.x.every((v, i) => v === x[i]));
    if (asked) return asked.genotype;
    if (!x.every(Number.isFinite)) {
      throw new LorahubError('INTERNAL', `CMA-ES tell: solution ${k} has a non-finite coordinate`);
    }
    return this.box.inverse(x);
  }

  /** C^{-1/2} y = B D^{-1} Bᵀ y with the current (possibly lazily stale) eigensystem. */
  private whiten(y: readonly number[]): number[] {
    const n = y.length;
    const t = new Array<number>(n).fill(0);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += this.B[i][j] * y[i];
      t[j] = s / this.D[j];
    }
    const out = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += this.B[i][j] * t[j];
      out[i] = s;
    }
    return out;
  }

  private scaleC(factor: number): void {
    for (const row of this.C) for (let j = 0; j < row.length; j++) row[j] *= factor;
  }

  /** C += factor · v vᵀ; the product v_i v_j = v_j v_i keeps C exactly symmetric. */
  private addOuter(v: readonly number[], factor: number): void {
    const n = v.length;
    for (let i = 0; i < n; i++) {
      const fi = factor * v[i];
      const row = this.C[i];
      for (let j = 0; j < n; j++) row[j] += fi * v[j];
    }
  }

  /** Lazy eigendecomposition (purecma `update_eigensystem`): at most every `lazyGapEvals`. */
  private updateEigensystem(): void {
    if (this.counteval <= this.eigenEvaluations + this.params.lazyGapEvals) return;
    const { values, vectors } = symmetricEigen(this.C);
    const top = values[values.length - 1];
    // With the active update C stays positive definite in exact arithmetic (α_posdef⁻);
    // a floor keeps rounding from producing √(negative). `condition` then reports it.
    const floor = top * 1e-20;
    this.condition = top / Math.max(values[0], floor);
    this.B = vectors;
    this.D = values.map((v) => Math.sqrt(Math.max(v, floor)));
    this.eigenEvaluations = this.counteval;
  }
}

function validateOptions(opts: CmaesOptions): CmaesCore {
  const n = opts.x0.length;
  if (n < 1 || !opts.x0.every(Number.isFinite)) {
    throw new LorahubError('INTERNAL', 'CMA-ES: x0 must be a non-empty array of finite numbers');
  }
  if (!(opts.sigma0 > 0) || !Number.isFinite(opts.sigma0)) {
    throw new LorahubError('BAD_ARGUMENT', `CMA-ES: sigma0 must be a positive finite number, got ${opts.sigma0}`);
  }
  const params = cmaesParameters(n, opts.popsize);
  const lower = broadcastBounds(opts.lowerBounds, n, -Infinity, 'lowerBounds');
  const upper = broadcastBounds(opts.upperBounds, n, Infinity, 'upperBounds');
  for (let i = 0; i < n; i++) {
    if (!(lower[i] < upper[i])) {
      throw new LorahubError('INTERNAL', `CMA-ES: bound ${i}: lower ${lower[i]} must be below upper ${upper[i]}`);
    }
    if (opts.x0[i] < lower[i] || opts.x0[i] > upper[i]) {
      throw new LorahubError('INTERNAL', `CMA-ES: x0[${i}] = ${opts.x0[i]} is outside [${lower[i]}, ${upper[i]}]`);
    }
  }
  const lambda = params.lambda;
  const maxEvaluations = opts.maxEvaluations ?? lambda * Math.floor(100 + (150 * (n + 3) ** 2) / Math.sqrt(lambda));
  if (!(maxEvaluations > 0)) {
    throw new LorahubError('INTERNAL', `CMA-ES: maxEvaluations must be positive, got ${maxEvaluations}`);
  }
  const tolFun = opts.tolFun ?? 1e-11;
  const tolX = opts.tolX ?? 1e-11;
  if (!(tolFun >= 0) || !(tolX >= 0)) {
    throw new LorahubError('INTERNAL', `CMA-ES: tolFun and tolX must be ≥ 0, got ${tolFun} and ${tolX}`);
  }
  if (opts.ftarget !== undefined && Number.isNaN(opts.ftarget)) {
    throw new LorahubError('INTERNAL', 'CMA-ES: ftarget must be a number');
  }
  return {
    params,
    box: new BoxTransform(lower, upper),
    maxEvaluations,
    tolFun,
    tolX,
    ftarget: opts.ftarget ?? null,
    mirrored: opts.mirrored === true,
  };
}

function broadcastBounds(b: number[] | number | undefined, n: number, fill: number, name: string): number[] {
  if (b === undefined) return new Array<number>(n).fill(fill);
  const arr = typeof b === 'number' ? new Array<number>(n).fill(b) : [...b];
  if (arr.length !== n) {
    throw new LorahubError('INTERNAL', `CMA-ES: ${name} has ${arr.length} entries, expected ${n}`);
  }
  if (arr.some((v) => Number.isNaN(v))) throw new LorahubError('INTERNAL', `CMA-ES: ${name} contains NaN`);
  return arr;
}

function encodeNumber(v: number): JsonNumber {
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

function decodeNumber(v: JsonNumber): number {
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return v;
}
