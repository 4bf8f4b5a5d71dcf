import { describe, expect, it } from 'vitest';
import { symmetricEigen } from '../../src/adapt/eigen.ts';
import { LorahubError } from '../../src/errors.ts';

/** B diag(values) Bᵀ, to check a decomposition reproduces its matrix. */
function reconstruct(values: number[], b: number[][]): number[][] {
  const n = values.length;
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => values.reduce((s, v, k) => s + b[i][k] * v * b[j][k], 0)),
  );
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
}

/** Eigenvectors are defined up to sign: compare |cosine| with the expected direction. */
function expectParallel(v: number[], expected: number[]): void {
  const dot = v.reduce((s, x, i) => s + x * expected[i], 0);
  const norm = Math.hypot(...expected);
  expect(Math.abs(dot) / norm).toBeCloseTo(1, 12);
}

describe('symmetricEigen (Jacobi)', () => {
  it('diagonal matrix: values sorted ascending, vectors a permutation of the axes', () => {
    const { values, vectors } = symmetricEigen([
      [3, 0, 0],
      [0, -1, 0],
      [0, 0, 2],
    ]);
    expect(values).toEqual([-1, 2, 3]);
    expect(vectors).toEqual([
      [0, 0, 1],
      [1, 0, 0],
      [0, 1, 0],
    ]);
  });

  it('[[2, 1], [1, 2]] has eigenvalues 1 and 3 along (1, −1) and (1, 1)', () => {
    const { values, vectors } = symmetricEigen([
      [2, 1],
      [1, 2],
    ]);
    expect(values[0]).toBeCloseTo(1, 14);
    expect(values[1]).toBeCloseTo(3, 14);
    expectParallel([vectors[0][0], vectors[1][0]], [1, -1]);
    expectParallel([vectors[0][1], vectors[1][1]], [1, 1]);
  });

  it('tridiagonal (2, −1) matrix: eigenvalues 2 − √2, 2, 2 + √2 with the known eigenvectors', () => {
    const { values, vectors } = symmetricEigen([
      [2, -1, 0],
      [-1, 2, -1],
      [0, -1, 2],
    ]);
    expect(values[0]).toBeCloseTo(2 - Math.SQRT2, 14);
    expect(values[1]).toBeCloseTo(2, 14);
    expect(values[2]).toBeCloseTo(2 + Math.SQRT2, 14);
    const col = (k: number) => vectors.map((row) => row[k]);
    expectParallel(col(0), [1, Math.SQRT2, 1]);
    expectParallel(col(1), [1, 0, -1]);
    expectParallel(col(2), [1, -Math.SQRT2, 1]);
  });

  it('6×6 Hilbert matrix (condition 1.5e7): eigenvalues against mpmath at 40 digits', () => {
    const h = Array.from({ length: 6 }, (_, i) => Array.from({ length: 6 }, (_, j) => 1 / (i + j + 1)));
    // mpmath.eigsy with mp.dps = 40
    const reference = [
      1.0827994845655497685e-7, 0.000012570757122625194923, 0.00061574835418265769765, 0.016321521319875822124,
      0.24236087057520955214, 1.618899858924339097,
    ];
    const { values, vectors } = symmetricEigen(h);
    // Rounding H's entries to float64 alone can move an eigenvalue by about ε‖H‖ ≈ 4e-16
    // (4e-9 relative for λ_min ≈ 1e-7): ask for that absolute accuracy, and 1e-9 relative on λ_min.
    values.forEach((v, k) => expect(Math.abs(v - reference[k])).toBeLessThan(1e-15));
    expect(Math.abs(values[0] - reference[0]) / reference[0]).toBeLessThan(1e-9);
    expect(maxAbsDiff(reconstruct(values, vectors), h)).toBeLessThan(1e-14);
  });

  it('random ill-conditioned SPD matrix: orthonormal vectors, reconstruction to rounding', () => {
    // Q diag(10^k) Qᵀ with Q from Gram–Schmidt on a fixed pseudo-random matrix.
    const n = 8;
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
    const q: number[][] = [];
    for (let k = 0; k < n; k++) {
      const v = Array.from({ length: n }, rand);
      for (const u of q) {
        const d = v.reduce((s, x, i) => s + x * u[i], 0);
        for (let i = 0; i < n; i++) v[i] -= d * u[i];
      }
      const norm = Math.hypot(...v);
      q.push(v.map((x) => x / norm));
    }
    const lambdas = Array.from({ length: n }, (_, k) => 10 ** (k - 4)); // condition 1e7
    const a = Array.from({ length: n }, (_, i) =>
      Array.from({ length: n }, (_, j) => lambdas.reduce((s, l, k) => s + q[k][i] * l * q[k][j], 0)),
    );
    const { values, vectors } = symmetricEigen(a);
    values.forEach((v, k) => expect(Math.abs(v - lambdas[k]) / lambdas[k]).toBeLessThan(1e-6));
    const btb = Array.from({ length: n }, (_, i) =>
      Array.from({ length: n }, (_, j) => vectors.reduce((s, row) => s + row[i] * row[j], 0)),
    );
    const eye = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
    expect(maxAbsDiff(btb, eye)).toBeLessThan(1e-14);
    // rounding relative to ‖A‖ = 1e3
    expect(maxAbsDiff(reconstruct(values, vectors), a)).toBeLessThan(1e-14 * lambdas[n - 1]);
  });

  it('rejects non-square and non-finite input', () => {
    expect(() => symmetricEigen([[1, 2]])).toThrow(LorahubError);
    expect(() => symmetricEigen([[Number.NaN]])).toThrow(/NaN/);
  });
});
