/**
 * Small dense linear algebra for the searches: the symmetric eigendecomposition CMA-ES samples
 * with, and the least squares and trust-region step the surrogate (surrogate.ts) fits and
 * minimises its models with.
 *
 * Symmetric eigendecomposition by the cyclic Jacobi method (Golub & Van Loan, "Matrix
 * Computations", 4th ed., §8.5.2–8.5.3). CMA-ES needs C = B·diag(D²)·Bᵀ to sample and to
 * whiten steps; the matrices are small (n ≤ a few dozen composition weights) and symmetric
 * positive definite, where Jacobi is simple, accurate to high relative precision, and needs
 * no dependency.
 */
import { LorahubError } from '../errors.ts';

export interface SymmetricEigen {
  /** Eigenvalues in ascending order (like LAPACK's `dsyev` / numpy's `eigh`). */
  readonly values: number[];
  /** Orthonormal eigenvectors as columns: `vectors[i][k]` is entry i of eigenvector k. */
  readonly vectors: number[][];
  /** Sweeps used; a sweep visits every off-diagonal pair once. */
  readonly sweeps: number;
}

/** Sweeps before giving up; Jacobi converges quadratically, typically in 5–10 sweeps. */
const MAX_SWEEPS = 100;
/** Relative size below which an off-diagonal entry counts as zero (about machine epsilon). */
const RELATIVE_EPS = 2.220446049250313e-16;

/**
 * Eigenvalues and eigenvectors of the symmetric matrix `a` (`[n][n]`, not modified).
 *
 * Symmetry is assumed, not checked: CMA-ES keeps C exactly symmetric by construction (sums of
 * scaled outer products), so a tolerance check here would only cost time.
 */
export function symmetricEigen(a: readonly (readonly number[])[]): SymmetricEigen {
  const n = a.length;
  for (let i = 0; i < n; i++) {
    if (a[i].length !== n) {
      throw new LorahubError('INTERNAL', `symmetricEigen: row ${i} has ${a[i].length} entries, expected ${n}`);
    }
    for (let j = 0; j < n; j++) {
      if (!Number.isFinite(a[i][j])) {
        throw new LorahubError('NUMERIC', `symmetricEigen: entry [${i}][${j}] is ${a[i][j]}`);
      }
    }
  }
  const m = a.map((row) => [...row]);
  const v = identity(n);

  let sweeps = 0;
  while (sweeps < MAX_SWEEPS) {
    sweeps++;
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) rotated = rotate(m, v, p, q) || rotated;
    }
    if (!rotated) break;
  }

  const order = Array.from({ length: n }, (_, k) => k).sort((x, y) => m[x][x] - m[y][y]);
  return {
    values: order.map((k) => m[k][k]),
    vectors: v.map((row) => order.map((k) => row[k])),
    sweeps,
  };
}

/**
 * One Jacobi rotation J(p, q, θ) that zeroes m[p][q]: m ← Jᵀ m J, v ← v J.
 * The angle is the smaller root of t² + 2τt − 1 = 0 with τ = (m_qq − m_pp)/(2 m_pq)
 * (Golub & Van Loan Alg. 8.5.1), which keeps |θ| ≤ π/4 and the update numerically stable.
 *
 * Skips (returns false) when m[p][q] is already negligible next to its diagonal entries,
 * |m_pq| ≤ ε·√|m_pp m_qq|: this relative threshold (Demmel & Veselić, SIAM J. Matrix Anal.
 * Appl. 13(4), 1992) keeps small eigenvalues accurate to high relative precision, which
 * matters when C is ill-conditioned (condition 1e6 on the ellipsoid and beyond). The method
 * has converged when a whole sweep rotates nothing.
 */
function rotate(m: number[][], v: number[][], p: number, q: number): boolean {
  const apq = m[p][q];
  if (Math.abs(apq) <= RELATIVE_EPS * Math.sqrt(Math.abs(m[p][p] * m[q][q]))) {
    m[p][q] = 0;
    m[q][p] = 0;
    return false;
  }
  const tau = (m[q][q] - m[p][p]) / (2 * apq);
  const t = (tau >= 0 ? 1 : -1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
  const c = 1 / Math.sqrt(1 + t * t);
  const s = t * c;
  const n = m.length;
  for (let k = 0; k < n; k++) {
    // columns p and q: m ← m J
    const mkp = m[k][p];
    const mkq = m[k][q];
    m[k][p] = c * mkp - s * mkq;
    m[k][q] = s * mkp + c * mkq;
  }
  for (let k = 0; k < n; k++) {
    // rows p and q: m ← Jᵀ m
    const mpk = m[p][k];
    const mqk = m[q][k];
    m[p][k] = c * mpk - s * mqk;
    m[q][k] = s * mpk + c * mqk;
  }
  m[p][q] = 0; // exact zero by construction; avoid leaving rounding residue
  m[q][p] = 0;
  for (let k = 0; k < n; k++) {
    const vkp = v[k][p];
    const vkq = v[k][q];
    v[k][p] = c * vkp - s * vkq;
    v[k][q] = s * vkp + c * vkq;
  }
  return true;
}

export function identity(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

/**
 * Minimum-norm weighted least squares: c minimising Σₖ (rₖ(zₖᵀc − yₖ))², and of least ‖c‖ when
 * that leaves freedom. Solved through the smaller Gram matrix (m × m below p coefficients,
 * p × p above): by Cholesky when it is clearly positive definite (the usual case, and fast:
 * a fit runs after every evaluation), else through its pseudo-inverse from `symmetricEigen`,
 * eigenvalues under a relative 1e-12 counting as zero (singular values under 1e-6 of the largest).
 */
export function leastSquares(rows: readonly (readonly number[])[], y: readonly number[], rowFactors: readonly number[]): number[] {
  const m = rows.length;
  if (m === 0) throw new LorahubError('INTERNAL', 'leastSquares: no data');
  const p = rows[0].length;
  const z = rows.map((r, k) => r.map((v) => v * rowFactors[k]));
  const t = y.map((v, k) => v * rowFactors[k]);
  if (m >= p) {
    // c = (ZᵀZ)⁺ Zᵀt
    const g = Array.from({ length: p }, () => new Array<number>(p).fill(0));
    const zt = new Array<number>(p).fill(0);
    for (let k = 0; k < m; k++) {
      const row = z[k];
      for (let i = 0; i < p; i++) {
        zt[i] += row[i] * t[k];
        for (let j = 0; j <= i; j++) g[i][j] += row[i] * row[j];
      }
    }
    for (let i = 0; i < p; i++) for (let j = 0; j < i; j++) g[j][i] = g[i][j];
    return pseudoSolve(g, zt);
  }
  // c = Zᵀ (ZZᵀ)⁺ t
  const g = z.map((a) => z.map((b) => a.reduce((s, v, i) => s + v * b[i], 0)));
  const alpha = pseudoSolve(g, t);
  const c = new Array<number>(p).fill(0);
  for (let k = 0; k < m; k++) for (let i = 0; i < p; i++) c[i] += alpha[k] * z[k][i];
  return c;
}

/** G⁺b for a symmetric positive semi-definite G: Cholesky if G is well conditioned, else the eigen pseudo-inverse. */
function pseudoSolve(g: number[][], b: readonly number[]): number[] {
  return choleskySolve(g, b) ?? eigenSolve(g, b);
}

/**
 * G⁻¹b by Cholesky (G = LLᵀ), or null when a pivot falls under 1e-10 of the largest diagonal
 * entry: then G is (nearly) singular and the minimum-norm answer needs the eigen route.
 */
function choleskySolve(g: readonly (readonly number[])[], b: readonly number[]): number[] | null {
  const n = g.length;
  const top = Math.max(...g.map((row, i) => row[i]));
  if (!(top > 0)) return null;
  const l = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    let d = g[j][j];
    for (let k = 0; k < j; k++) d -= l[j][k] * l[j][k];
    if (!(d > 1e-10 * top)) return null;
    const ljj = Math.sqrt(d);
    l[j][j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let v = g[i][j];
      for (let k = 0; k < j; k++) v -= l[i][k] * l[j][k];
      l[i][j] = v / ljj;
    }
  }
  const y = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let v = b[i];
    for (let k = 0; k < i; k++) v -= l[i][k] * y[k];
    y[i] = v / l[i][i];
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let v = y[i];
    for (let k = i + 1; k < n; k++) v -= l[k][i] * x[k];
    x[i] = v / l[i][i];
  }
  return x;
}

function eigenSolve(g: number[][], b: readonly number[]): number[] {
  const { values, vectors } = symmetricEigen(g);
  const n = values.length;
  const tol = Math.max(0, values[n - 1]) * 1e-12;
  const out = new Array<number>(n).fill(0);
  for (let k = 0; k < n; k++) {
    if (!(values[k] > tol)) continue;
    let proj = 0;
    for (let i = 0; i < n; i++) proj += vectors[i][k] * b[i];
    proj /= values[k];
    for (let i = 0; i < n; i++) out[i] += proj * vectors[i][k];
  }
  return out;
}

/**
 * The trust-region subproblem: the step s minimising gᵀs + ½sᵀHs subject to ‖s‖ ≤ radius, for a
 * symmetric H of any inertia, solved exactly in H's eigenbasis (Moré & Sorensen, "Computing a
 * trust region step", SIAM J. Sci. Stat. Comput. 4(3), 1983; Nocedal & Wright, "Numerical
 * Optimization", §4.3): the Newton step −H⁻¹g when H is positive definite and it lies inside;
 * else s(μ) = −(H + μI)⁻¹g on the boundary, μ > max(0, −λ_min) found by bisection on the
 * decreasing ‖s(μ)‖; in the "hard case" (g has no component along the lowest eigenvector) that
 * eigenvector tops the step up to the boundary. H = 0 gives the radius along −g.
 */
export function trustRegionStep(h: readonly (readonly number[])[], g: readonly number[], radius: number): number[] {
  const n = g.length;
  const { values, vectors } = symmetricEigen(h);
  const gq = values.map((_, k) => g.reduce((s, gi, i) => s + vectors[i][k] * gi, 0)); // g in the eigenbasis
  const stepNorm = (mu: number): number => Math.sqrt(gq.reduce((s, c, k) => s + (c / (values[k] + mu)) ** 2, 0));
  const fromEigen = (coef: readonly number[]): number[] =>
    Array.from({ length: n }, (_, i) => coef.reduce((s, c, k) => s + c * vectors[i][k], 0));
  const lambdaMin = values[0];
  const gNorm = Math.sqrt(gq.reduce((s, c) => s + c * c, 0));
  const scale = Math.max(1e-300, ...values.map(Math.abs));
  if (lambdaMin > 1e-12 * scale && stepNorm(0) <= radius) return fromEigen(gq.map((c, k) => -c / values[k]));
  if (gNorm === 0 && lambdaMin >= 0) return new Array<number>(n).fill(0);
  const lo0 = Math.max(0, -lambdaMin);
  const eps = 1e-12 * Math.max(1, scale);
  if (lambdaMin <= 0 && stepNorm(lo0 + eps) < radius) {
    const coef = gq.map((c, k) => (Math.abs(values[k] + lo0) > eps ? -c / (values[k] + lo0) : 0));
    const inside = Math.sqrt(coef.reduce((s, c) => s + c * c, 0));
    coef[0] += Math.sqrt(Math.max(0, radius * radius - inside * inside));
    return fromEigen(coef);
  }
  let lo = lo0;
  let hi = lo0 + gNorm / radius + scale;
  while (stepNorm(hi) > radius) hi *= 2;
  for (let it = 0; it < 200 && hi - lo > 1e-15 * Math.max(1, hi); it++) {
    const mid = 0.5 * (lo + hi);
    if (stepNorm(mid) > radius) lo = mid;
    else hi = mid;
  }
  return fromEigen(gq.map((c, k) => -c / (values[k] + hi)));
}
