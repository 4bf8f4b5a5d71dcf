/**
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
