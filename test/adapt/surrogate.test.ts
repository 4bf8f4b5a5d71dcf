import { describe, expect, it } from 'vitest';
import { leastSquares, symmetricEigen } from '../../src/adapt/eigen.ts';
import {
  coefficientCount,
  DEFAULT_SURROGATE_SETTINGS,
  identityCoordinates,
  kendallTau,
  QuadraticModel,
  SurrogateArchive,
  toModelCoordinates,
  type Coordinates,
} from '../../src/adapt/surrogate.ts';
import { Rng } from '../../src/rng.ts';

/** f(x) = c + ½(x − x*)ᵀH(x − x*) with H = QΛQᵀ, Λ in [1, 100]: a rotated, ill-conditioned bowl. */
function knownQuadratic(n: number, seed: number): { f: (x: number[]) => number; xopt: number[]; h: number[][] } {
  const rng = Rng.fromSeed(seed);
  const a = Array.from({ length: n }, () => rng.normals(n));
  const { vectors: q } = symmetricEigen(a.map((row, i) => row.map((v, j) => v + a[j][i])));
  const lambda = Array.from({ length: n }, (_, i) => 10 ** ((2 * i) / (n - 1)));
  const h = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => lambda.reduce((s, l, k) => s + q[i][k] * l * q[j][k], 0)));
  const xopt = Array.from({ length: n }, () => rng.uniform() * 2 - 1);
  const f = (x: number[]) => {
    const d = x.map((v, i) => v - xopt[i]);
    return 3 + 0.5 * d.reduce((s, di, i) => s + di * h[i].reduce((t, hij, j) => t + hij * d[j], 0), 0);
  };
  return { f, xopt, h };
}

/** A non-trivial affine change of coordinates (a shear and scaling around a centre). */
function shearedCoordinates(n: number): Coordinates {
  const toModel = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 2 + i : j === i + 1 ? 0.5 : 0)));
  // The upper bidiagonal inverse, by back substitution on each unit vector.
  const fromModel = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let col = 0; col < n; col++) {
    for (let i = n - 1; i >= 0; i--) {
      const rhs = (i === col ? 1 : 0) - (i + 1 < n ? toModel[i][i + 1] * fromModel[i + 1][col] : 0);
      fromModel[i][col] = rhs / toModel[i][i];
    }
  }
  return { center: Array.from({ length: n }, (_, i) => 0.1 * i), toModel, fromModel };
}

function samplePoints(n: number, count: number, seed: number): number[][] {
  const rng = Rng.fromSeed(seed);
  return Array.from({ length: count }, () => rng.normals(n));
}

describe('leastSquares', () => {
  it('interpolates consistent data exactly, over- and under-determined', () => {
    const rows = [
      [1, 0, 0],
      [1, 1, 0],
      [1, 0, 1],
      [1, 2, 3],
    ];
    const c = leastSquares(rows, [1, 3, 0, 2], [1, 1, 1, 1]); // y = 1 + 2a − b
    expect(c[0]).toBeCloseTo(1, 12);
    expect(c[1]).toBeCloseTo(2, 12);
    expect(c[2]).toBeCloseTo(-1, 12);
    // Two rows, three unknowns: the minimum-norm solution of [1 1 0]c = 2, [1 0 1]c = 2 is (4/3, 2/3, 2/3).
    const m = leastSquares(rows.slice(1, 3), [2, 2], [1, 1]);
    expect(m[0]).toBeCloseTo(4 / 3, 12);
    expect(m[1]).toBeCloseTo(2 / 3, 12);
    expect(m[2]).toBeCloseTo(2 / 3, 12);
  });

  it('weights rows: a heavy row is fitted more closely', () => {
    const rows = [[1], [1]];
    expect(leastSquares(rows, [0, 1], [1, 1])[0]).toBeCloseTo(0.5, 12);
    // Row factors scale residuals: minimise (c − 0)² + (3(c − 1))² → c = 9/10.
    expect(leastSquares(rows, [0, 1], [1, 3])[0]).toBeCloseTo(0.9, 12);
  });

  it('falls back to the pseudo-inverse for rank-deficient data', () => {
    // Two identical columns: the minimum-norm solution splits the coefficient evenly.
    const c = leastSquares(
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
      [2, 4, 6],
      [1, 1, 1],
    );
    expect(c[0]).toBeCloseTo(1, 10);
    expect(c[1]).toBeCloseTo(1, 10);
  });
});

describe('the surrogate is exact on quadratics', () => {
  it('a full model recovers a known quadratic and its optimum, in any affine coordinates', () => {
    const n = 5;
    const { f, xopt, h } = knownQuadratic(n, 7);
    for (const [coords, plain] of [
      [identityCoordinates(n), true],
      [shearedCoordinates(n), false],
    ] as const) {
      const archive = new SurrogateArchive(n);
      for (const x of samplePoints(n, 40, 11)) archive.add(x, f(x));
      expect(archive.kind()).toBe('full');
      const model = archive.fit(coords);
      if (!model) throw new Error('no model');
      for (const x of samplePoints(n, 5, 12)) expect(model.predict(x)).toBeCloseTo(f(x), 8);
      // The model's minimiser (an unconstrained Newton point: the ball is huge) is x*.
      const u = model.minimizeInBall(new Array<number>(n).fill(0), 1e6);
      const x = coords.fromModel.map((row, i) => coords.center[i] + row.reduce((s, a, j) => s + a * u[j], 0));
      x.forEach((v, i) => expect(v).toBeCloseTo(xopt[i], 8));
      // In x's own coordinates the model's Hessian is H itself.
      if (plain) {
        model.hessian.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(h[i][j], 7)));
      }
    }
  });

  it('a diagonal model is exact on a separable quadratic, a linear one on a linear function', () => {
    const n = 6;
    const xopt = [0.5, -1, 0.25, 2, 0, -0.75];
    const sep = (x: number[]) => x.reduce((s, v, i) => s + (i + 1) * (v - xopt[i]) ** 2, 1);
    const archive = new SurrogateArchive(n, { ...DEFAULT_SURROGATE_SETTINGS, maxKind: 'diagonal' });
    for (const x of samplePoints(n, 30, 3)) archive.add(x, sep(x));
    expect(archive.kind()).toBe('diagonal');
    const model = archive.fit(identityCoordinates(n));
    if (!model) throw new Error('no model');
    model.minimizeInBall(new Array<number>(n).fill(0), 100).forEach((v, i) => expect(v).toBeCloseTo(xopt[i], 9));

    const lin = (x: number[]) => 2 + x.reduce((s, v, i) => s + (i - 2) * v, 0);
    const few = new SurrogateArchive(n);
    for (const x of samplePoints(n, 9, 4)) few.add(x, lin(x));
    expect(few.kind()).toBe('linear');
    const m = few.fit(identityCoordinates(n));
    if (!m) throw new Error('no model');
    expect(m.gradient.map((g) => Number(g.toFixed(9)))).toEqual([-2, -1, 0, 1, 2, 3]);
    expect(m.constant).toBeCloseTo(2, 9);
  });

  it('grows the model with the archive: linear, then diagonal, then full (pycma thresholds)', () => {
    const n = 3;
    const archive = new SurrogateArchive(n);
    const kinds: string[] = [];
    samplePoints(n, 16, 5).forEach((x) => {
      archive.add(x, x[0]);
      kinds.push(archive.kind());
    });
    // diagonal once ¾·size ≥ 1.1·7 (size 11), full once ¾·size ≥ 1.1·10 (size 15)
    expect(kinds.indexOf('diagonal') + 1).toBe(11);
    expect(kinds.indexOf('full') + 1).toBe(15);
    expect(coefficientCount('full', 20)).toBe(231);
    // A full quadratic over 30 modules (496 coefficients) would cost ~0.25 s per fit: capped.
    expect(new SurrogateArchive(20).kinds()).toEqual(['linear', 'diagonal', 'full']);
    expect(new SurrogateArchive(30).kinds()).toEqual(['linear', 'diagonal']);
  });

  it('keeps failed evaluations out and the newest points first', () => {
    const archive = new SurrogateArchive(2);
    archive.add([0, 0], 1);
    archive.add([1, 0], Number.POSITIVE_INFINITY);
    archive.add([0, 1], 3);
    archive.add([1, 1], 2);
    expect(archive.entries.map((p) => p.f)).toEqual([2, 3, 1]);
    archive.sortNewest(2);
    expect(archive.entries.map((p) => p.f)).toEqual([2, 3, 1]);
    archive.add([2, 2], 0);
    archive.sortNewest(3);
    expect(archive.entries.map((p) => p.f)).toEqual([0, 2, 3, 1]);
    expect(new SurrogateArchive(2, DEFAULT_SURROGATE_SETTINGS, archive.state()).entries).toEqual(archive.entries);
  });
});

describe('QuadraticModel.minimizeInBall', () => {
  const n = 3;
  const coords = identityCoordinates(n);

  it('a linear model steps the radius along −g', () => {
    const m = new QuadraticModel('linear', coords, [1, 3, 0, -4]);
    const u = m.minimizeInBall([1, 1, 1], 2);
    expect(u.map((v) => Number(v.toFixed(12)))).toEqual([-0.2, 1, 2.6]);
  });

  it('an indefinite model ends on the boundary, below every other point of the ball', () => {
    // m(u) = u0 − u1 + u0² − 2u1² + ½u2²
    const m = new QuadraticModel('diagonal', coords, [0, 1, -1, 0, 1, -2, 0.25]);
    const u = m.minimizeInBall([0, 0, 0], 1);
    expect(Math.hypot(...u)).toBeCloseTo(1, 9);
    const best = m.predictModel(u);
    const rng = Rng.fromSeed(9);
    for (let k = 0; k < 2000; k++) {
      const z = rng.normals(n);
      const r = rng.uniform() ** (1 / n) / Math.hypot(...z);
      expect(m.predictModel(z.map((v) => v * r))).toBeGreaterThanOrEqual(best - 1e-12);
    }
  });

  it('the hard case (g orthogonal to the most negative curvature) still reaches the boundary', () => {
    const m = new QuadraticModel('diagonal', coords, [0, 0.1, 0, 0, 1, -1, 1]);
    const u = m.minimizeInBall([0, 0, 0], 1);
    expect(Math.hypot(...u)).toBeCloseTo(1, 9);
    expect(m.predictModel(u)).toBeLessThan(-0.99);
  });

  it('model coordinates round-trip', () => {
    const c = shearedCoordinates(4);
    const x = [0.3, -1, 2, 0.5];
    const u = toModelCoordinates(c, x);
    const back = c.fromModel.map((row, i) => c.center[i] + row.reduce((s, a, j) => s + a * u[j], 0));
    back.forEach((v, i) => expect(v).toBeCloseTo(x[i], 12));
  });
});

describe('kendallTau', () => {
  it('matches hand-counted values (τ-b with ties, as scipy)', () => {
    expect(kendallTau([1, 2, 3, 4], [10, 20, 30, 40])).toBe(1);
    expect(kendallTau([1, 2, 3, 4], [4, 3, 2, 1])).toBe(-1);
    // 7 concordant, 3 discordant pairs of 10
    expect(kendallTau([1, 2, 3, 4, 5], [3, 1, 2, 5, 4])).toBeCloseTo(0.4, 15);
    // one tie in a: 2 / √(2·3)
    expect(kendallTau([1, 1, 2], [1, 2, 3])).toBeCloseTo(2 / Math.sqrt(6), 15);
    expect(kendallTau([1, 1, 1], [1, 2, 3])).toBe(0);
  });
});
