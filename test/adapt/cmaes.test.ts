import { describe, expect, it } from 'vitest';
import { BoxTransform } from '../../src/adapt/box-transform.ts';
import { CMAES, cmaesParameters, type CmaesOptions } from '../../src/adapt/cmaes.ts';
import { Rng } from '../../src/rng.ts';
import { LorahubError } from '../../src/errors.ts';

const sphere = (x: readonly number[]): number => x.reduce((s, v) => s + v * v, 0);

/** Runs ask/tell until `stop()` or `maxGenerations`; returns every population asked. */
function run(es: CMAES, f: (x: number[]) => number, maxGenerations: number): number[][][] {
  const populations: number[][][] = [];
  for (let g = 0; g < maxGenerations && Object.keys(es.stop()).length === 0; g++) {
    const xs = es.ask();
    populations.push(xs);
    es.tell(xs, xs.map(f));
  }
  return populations;
}

function make(opts: Partial<CmaesOptions> & { seed?: number } = {}): CMAES {
  const { seed = 1, ...rest } = opts;
  return new CMAES({ x0: [3, 3, 3, 3, 3], sigma0: 1, rng: Rng.fromSeed(seed), ...rest });
}

describe('cmaesParameters against pycma', () => {
  // Reference: pycma 4.5 `RecombinationWeights(λ)` finalised with `finalize_negative_weights(n, c1, cμ)`
  // for the tutorial's c1 and cμ (eqs. 57–58), and pycma's chiN and cc (same formulas as ours).
  it('n = 3: λ = 7, μ = 3, active weights with a zero weight at rank μ + 1', () => {
    const p = cmaesParameters(3);
    expect(p.lambda).toBe(7);
    expect(p.mu).toBe(3);
    const ref = [
      0.5856451065097651, 0.29282255325488254, 0.12153234023535246, 0.0, -0.4241269418431742, -0.7706638857059224,
      -1.0636566969842556,
    ];
    p.weights.forEach((w, i) => expect(w).toBeCloseTo(ref[i], 14));
    expect(p.mueff).toBeCloseTo(2.2548150822016044, 14);
    expect(p.mueffMinus).toBeCloseTo(2.6772307537718913, 14);
    expect(p.c1).toBeCloseTo(0.09640963257927214, 15);
    expect(p.cmu).toBeCloseTo(0.05124308701358615, 15);
    expect(p.cc).toBeCloseTo(0.5588013228860189, 15);
    expect(p.cs).toBeCloseTo(0.4149090010980616, 15);
    expect(p.damps).toBeCloseTo(1.4149090010980616, 15);
    expect(p.chiN).toBeCloseTo(1.5968775302586076, 15);
  });

  it('n = 10: λ = 10; negative weights sum to −(1 + c1/cμ), so C does not decay (eq. 47)', () => {
    const p = cmaesParameters(10);
    expect(p.lambda).toBe(10);
    expect(p.mu).toBe(5);
    const ref = [
      0.45627264690340597, 0.2707530970017852, 0.16223111715866978, 0.08523354710016448, 0.025509591835974777,
      -0.08532086250759856, -0.23647660114809707, -0.3674136577116646, -0.48290832678423457, -0.5862218287788356,
    ];
    p.weights.forEach((w, i) => expect(w).toBeCloseTo(ref[i], 14));
    expect(p.mueff).toBeCloseTo(3.1672992814107017, 14);
    expect(p.c1).toBeCloseTo(0.015283824524751714, 15);
    expect(p.cmu).toBeCloseTo(0.02015428276120837, 15);
    expect(p.cc).toBeCloseTo(0.29499038303562225, 15);
    expect(p.chiN).toBeCloseTo(3.0847265651690123, 14);
    const sum = p.weights.reduce((s, w) => s + w, 0);
    expect(1 - p.c1 - p.cmu * sum).toBeCloseTo(1, 14);
  });

  it('rejects a bad popsize', () => {
    expect(() => cmaesParameters(3, 1)).toThrow(LorahubError);
    expect(() => cmaesParameters(3, 2.5)).toThrow(/popsize/);
  });
});

describe('BoxTransform against pycma BoxConstraintsLinQuadTransformation', () => {
  it('maps R into [−1.5, 1.5] exactly as pycma does (identity inside, quadratic margins, periodic outside)', () => {
    const t = new BoxTransform([-1.5], [1.5]);
    const xs = [-10, -3, -1.6, -1.5, -1.45, -1.4, 0, 0.3, 1.42, 1.5, 1.55, 1.6, 2, 3.7, 100];
    const ref = [
      0.5499999999999985, -0.1499999999999999, -1.4979166666666666, -1.48125, -1.4479166666666667, -1.4, 0, 0.3,
      1.42, 1.48125, 1.4979166666666668, 1.4979166666666666, 1.15, -0.5499999999999994, -0.8000000000000114,
    ];
    xs.forEach((x, k) => expect(t.transform([x])[0]).toBeCloseTo(ref[k], 12));
  });

  it('per-coordinate bounds [[1, 2], [1, 11], …]', () => {
    const t = new BoxTransform([1, 1, 1, 1, 1, 1], [2, 11, 11, 11, 11, 11]);
    const y = t.transform([1.52, -2.2, -0.2, 2, 4, 10.4]);
    [1.52, 4.1000000000000005, 2.0999999999999996, 2.0, 4.0, 10.4].forEach((r, i) => expect(y[i]).toBeCloseTo(r, 12));
  });

  it('inverse maps onto the invertible branch and round-trips', () => {
    const t = new BoxTransform([-1.5], [1.5]);
    const ys = [-1.5, -1.45, -1.3, 0, 1.49, 1.5];
    const ref = [-1.575, -1.452525512860841, -1.3, 0.0, 1.5202277442494834, 1.575];
    ys.forEach((y, k) => {
      const g = t.inverse([y])[0];
      expect(g).toBeCloseTo(ref[k], 12);
      expect(t.transform([g])[0]).toBeCloseTo(y, 12);
    });
    expect(() => t.inverse([1.6])).toThrow(/outside the bounds/);
  });

  it('one-sided and absent bounds', () => {
    const t = new BoxTransform([0, -Infinity, -Infinity], [Infinity, 1, Infinity]);
    for (const x of [-1e6, -3, -0.01, 0, 0.02, 0.5, 3, 1e6]) {
      const [a, b, c] = t.transform([x, x, x]);
      expect(a).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThanOrEqual(1);
      expect(c).toBe(x);
    }
  });
});

describe('CMAES', () => {
  it('the same seed gives exactly the same run; another seed a different one', () => {
    const a = make({ seed: 7 });
    const b = make({ seed: 7 });
    const c = make({ seed: 8 });
    const pa = run(a, sphere, 30);
    const pb = run(b, sphere, 30);
    const pc = run(c, sphere, 30);
    expect(pb).toEqual(pa);
    expect(b.state()).toEqual(a.state());
    expect(pc[0]).not.toEqual(pa[0]);
  });

  it('converges on the 5-D sphere from 3·1 (pycma median: 710 evaluations to 1e-8)', () => {
    const es = make({ seed: 3, ftarget: 1e-8 });
    run(es, sphere, 1000);
    expect(es.stop()).toHaveProperty('ftarget', 1e-8);
    expect(es.best.f).toBeLessThanOrEqual(1e-8);
    expect(es.countEvaluations).toBeLessThan(1000);
    expect(es.countEvaluations % es.params.lambda).toBe(0);
    expect(sphere(es.mean)).toBeLessThan(1e-6);
  });

  it('keeps every candidate in the box and finds the optimum on the bound: (x − 3)² in [−1.5, 1.5] → 1.5', () => {
    const es = new CMAES({ x0: [0], sigma0: 0.5, lowerBounds: -1.5, upperBounds: 1.5, rng: Rng.fromSeed(2) });
    for (const xs of run(es, ([x]) => (x - 3) ** 2, 300)) {
      for (const [x] of xs) {
        expect(x).toBeGreaterThanOrEqual(-1.5);
        expect(x).toBeLessThanOrEqual(1.5);
      }
    }
    expect(es.best.x[0]).toBeCloseTo(1.5, 6);
    expect(es.best.f).toBeCloseTo(2.25, 5);
  });

  it('mixed bounds, optimum partly outside the box: lands on the nearest face', () => {
    const target = [3, 0.5, -2, 0.25];
    const f = (x: number[]) => x.reduce((s, v, i) => s + (i + 1) * (v - target[i]) ** 2, 0);
    const lower = [-1.5, -1.5, -1, 0];
    const upper = [1.5, 1.5, 1, 2];
    const es = new CMAES({ x0: [0, 0, 0, 1], sigma0: 0.5, lowerBounds: lower, upperBounds: upper, rng: Rng.fromSeed(5) });
    for (const xs of run(es, f, 400)) {
      for (const x of xs) x.forEach((v, i) => expect(v >= lower[i] && v <= upper[i]).toBe(true));
    }
    [1.5, 0.5, -1, 0.25].forEach((v, i) => expect(es.best.x[i]).toBeCloseTo(v, 4));
  });

  it('treats NaN as +Infinity: ranking still works and the run converges around the NaN region', () => {
    const es = make({ seed: 4 });
    // Undefined (NaN) for x₀ < 0.5: the optimum at 1·1 is reachable only from the defined side.
    const f = (x: number[]) => (x[0] < 0.5 ? Number.NaN : x.reduce((s, v) => s + (v - 1) ** 2, 0));
    run(es, f, 400);
    expect(es.best.f).toBeLessThan(1e-8);
    expect(Number.isNaN(es.sigma)).toBe(false);
    es.best.x.forEach((v) => expect(v).toBeCloseTo(1, 3));
  });

  it('a generation of nothing but NaN does not break the state', () => {
    const es = make({ seed: 4 });
    const xs = es.ask();
    es.tell(xs, xs.map(() => Number.NaN));
    expect(es.best.f).toBe(Infinity);
    const st = es.state();
    expect(st.mean.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(st.sigma)).toBe(true);
    const ys = es.ask();
    const fs = ys.map(sphere);
    es.tell(ys, fs);
    expect(es.best.f).toBe(Math.min(...fs));
  });

  it('stop(): empty before the first tell, then maxfevals, ftarget, tolfun', () => {
    const a = make({ maxEvaluations: 50 });
    expect(a.stop()).toEqual({});
    run(a, sphere, 100);
    expect(a.stop()).toEqual({ maxfevals: 50 });
    expect(a.countEvaluations).toBe(56); // 7 generations of λ = 8

    const b = make({ ftarget: 1e-3 });
    run(b, sphere, 1000);
    expect(b.stop()).toHaveProperty('ftarget', 1e-3);
    expect(b.best.f).toBeLessThanOrEqual(1e-3);

    const c = make({ tolFun: 1e-11 });
    run(c, () => 1, 100); // flat: nothing to learn
    expect(c.stop()).toHaveProperty('tolfun');
    expect(c.generation).toBe(2);
  });

  it('state() → JSON → fromState() continues on the identical trajectory', () => {
    const straight = make({ seed: 9 });
    const all = run(straight, sphere, 40);

    const rng = Rng.fromSeed(9);
    const first = new CMAES({ x0: [3, 3, 3, 3, 3], sigma0: 1, rng });
    const head = run(first, sphere, 15);
    const saved = JSON.parse(JSON.stringify({ es: first.state(), rng: rng.state() }));
    const resumed = CMAES.fromState(saved.es, Rng.fromState(saved.rng));
    const tail = run(resumed, sphere, 25);

    expect([...head, ...tail]).toEqual(all);
    expect(resumed.state()).toEqual(straight.state());
    expect(resumed.best).toEqual(straight.best);
  });

  it('a snapshot taken between ask() and tell() keeps the pending generation', () => {
    const rng = Rng.fromSeed(11);
    const es = new CMAES({ x0: [0, 0], sigma0: 0.5, lowerBounds: -1.5, upperBounds: 1.5, rng });
    run(es, sphere, 3);
    const xs = es.ask();
    const saved = JSON.parse(JSON.stringify({ es: es.state(), rng: rng.state() }));
    es.tell(xs, xs.map(sphere));
    const resumed = CMAES.fromState(saved.es, Rng.fromState(saved.rng));
    resumed.tell(xs, xs.map(sphere));
    expect(resumed.state()).toEqual(es.state());
  });

  it('mirrored sampling: candidates in pairs m ± σBDz; a run resumes with it', () => {
    const es = make({ seed: 13, mirrored: true });
    run(es, sphere, 4);
    const mean = es.mean;
    const xs = es.ask(); // unbounded: phenotype = genotype
    for (let k = 0; k + 1 < xs.length; k += 2) {
      xs[k].forEach((v, i) => expect(v + xs[k + 1][i]).toBeCloseTo(2 * mean[i], 12));
    }
    es.tell(xs, xs.map(sphere));
    const rng = Rng.fromSeed(14);
    const straight = new CMAES({ x0: [3, 3, 3, 3, 3], sigma0: 1, rng, mirrored: true });
    const all = run(straight, sphere, 20);
    const rng2 = Rng.fromSeed(14);
    const first = new CMAES({ x0: [3, 3, 3, 3, 3], sigma0: 1, rng: rng2, mirrored: true });
    const head = run(first, sphere, 8);
    const saved = JSON.parse(JSON.stringify({ es: first.state(), rng: rng2.state() }));
    expect([...head, ...run(CMAES.fromState(saved.es, Rng.fromState(saved.rng)), sphere, 12)]).toEqual(all);
  });

  it('samplingCoordinates: toModel and fromModel are inverse affine maps around the mean', () => {
    const es = make({ seed: 15 });
    run(es, (x) => x.reduce((s, v, i) => s + 10 ** i * v * v, 0), 30); // an anisotropic C
    const { center, toModel, fromModel } = es.samplingCoordinates();
    const x = [0.3, -0.2, 1, 0.5, -1];
    const u = toModel.map((row) => row.reduce((s, a, j) => s + a * (x[j] - center[j]), 0));
    const back = fromModel.map((row, i) => center[i] + row.reduce((s, a, j) => s + a * u[j], 0));
    back.forEach((v, i) => expect(v).toBeCloseTo(x[i], 10));
  });

  it('tell accepts the candidates in any order', () => {
    const a = make({ seed: 12 });
    const b = make({ seed: 12 });
    for (let g = 0; g < 10; g++) {
      const xa = a.ask();
      const xb = b.ask().reverse();
      a.tell(xa, xa.map(sphere));
      b.tell(xb, xb.map(sphere));
    }
    expect(b.state()).toEqual(a.state());
  });

  it('rejects wrong sizes (INTERNAL: the caller broke the ask/tell contract) and a bad sigma0 (BAD_ARGUMENT: --sigma0)', () => {
    const es = make();
    const xs = es.ask();
    const err = (fn: () => void): LorahubError => {
      try {
        fn();
      } catch (e) {
        if (e instanceof LorahubError) return e;
      }
      throw new Error('expected a LorahubError');
    };
    expect(err(() => es.tell(xs.slice(1), xs.slice(1).map(sphere))).code).toBe('INTERNAL');
    expect(err(() => es.tell(xs, [1, 2])).message).toMatch(/expected λ = 8/);
    expect(err(() => es.tell(xs.map((x) => x.slice(1)), xs.map(sphere))).code).toBe('INTERNAL');
    expect(err(() => make({ sigma0: 0 })).code).toBe('BAD_ARGUMENT');
    expect(err(() => make({ lowerBounds: 0, upperBounds: 2 })).message).toMatch(/outside/);
    expect(err(() => make({ lowerBounds: [0, 0], upperBounds: 5 })).message).toMatch(/lowerBounds/);
  });
});
