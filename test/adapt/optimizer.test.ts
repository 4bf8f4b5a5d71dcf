import { describe, expect, it } from 'vitest';
import { cobylaNextPoint, cobylaValue, type CobylaEvaluation } from '../../src/adapt/cobyla.ts';
import { createOptimizer, prepareOptimizer, resolveOptimizer, SEARCH_DEFAULTS, type Optimizer, type OptimizerName, type OptimizerOptions } from '../../src/adapt/optimizer.ts';
import { Rng } from '../../src/rng.ts';
import { LorahubError } from '../../src/errors.ts';

/** A 3-D quadratic with its minimum (0) at `center`, inside [−1.5, 1.5]³, unequal curvatures. */
function quadratic(center: number[]): (x: number[]) => number {
  return (x) => x.reduce((s, v, i) => s + (i + 1) * (v - center[i]) ** 2, 0);
}

function drive(opt: Optimizer, f: (x: number[]) => number): { asked: number[][]; batches: number[] } {
  const asked: number[][] = [];
  const batches: number[] = [];
  while (!opt.done()) {
    const xs = opt.ask();
    if (xs.length === 0) break;
    asked.push(...xs);
    batches.push(xs.length);
    opt.tell(xs, xs.map(f));
  }
  return { asked, batches };
}

const box = { dim: 3, lower: -1.5, upper: 1.5, budget: 40 };

/**
 * Runs `name` twice from w = 0 observed: straight through, and rebuilt from a JSON round trip of
 * its snapshot before every ask. `seeSnapshot` sees each snapshot. Returns both runs' points and bests.
 */
function resumeAtEveryStep(name: OptimizerName, opts: OptimizerOptions, f: (x: number[]) => number, seeSnapshot: (s: unknown) => void) {
  const zero = new Array<number>(opts.dim).fill(0);
  const straight = createOptimizer(name, opts);
  straight.observe?.([zero], [f(zero)]);
  const all = drive(straight, f).asked;
  let run = createOptimizer(name, opts);
  run.observe?.([zero], [f(zero)]);
  const seen: number[][] = [];
  while (!run.done()) {
    const snapshot: unknown = JSON.parse(JSON.stringify(run.state()));
    seeSnapshot(snapshot);
    run = createOptimizer(name, opts, snapshot); // a fresh object after every tell
    const xs = run.ask();
    seen.push(...xs);
    run.tell(xs, xs.map(f));
  }
  return { all, seen, straightBest: straight.best(), resumedBest: run.best() };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

describe('COBYLA before nlopt-js is loaded', () => {
  it('asks for prepareOptimizer first', () => {
    expect(() => createOptimizer('cobyla', { ...box, seed: 0 })).toThrow(/prepareOptimizer/);
  });
});

describe('optimizers on a 3-D quadratic within 40 evaluations', () => {
  const f = quadratic([0.4, -0.7, 1.1]);

  it.each<OptimizerName>(['cobyla-lq', 'lq-cmaes', 'cmaes', 'random', 'cobyla'])('%s spends exactly the budget, inside the box', async (name) => {
    await prepareOptimizer(name);
    const opt = createOptimizer(name, { ...box, seed: 3 });
    const { asked } = drive(opt, f);
    expect(asked).toHaveLength(40);
    expect(opt.stopReason()).toBe('budget');
    expect(opt.ask()).toEqual([]);
    for (const x of asked) for (const v of x) expect(Math.abs(v)).toBeLessThanOrEqual(1.5);
    const best = opt.best();
    expect(best.f).toBe(Math.min(...asked.map(f)));
    expect(f(best.x)).toBe(best.f);
  });

  it('CMA-ES cuts its last generation to the budget (λ = SEARCH_DEFAULTS.popsize = 6: 6 × 6 + 4)', () => {
    const opt = createOptimizer('cmaes', { ...box, seed: 1 });
    expect(opt.popsize).toBe(SEARCH_DEFAULTS.popsize);
    expect(drive(opt, f).batches).toEqual([6, 6, 6, 6, 6, 6, 4]);
    expect(opt.best().f).toBeLessThan(0.5);
  });

  it('lq-CMA-ES probes each coordinate first, then evaluates only what its model cannot rank', () => {
    const opt = createOptimizer('lq-cmaes', { ...box, seed: 1 });
    const { asked, batches } = drive(opt, f);
    // The design: x0 + 0.75·eᵢ, in one batch (n = 3 ≤ λ).
    expect(asked.slice(0, 3)).toEqual([
      [0.75, 0, 0],
      [0, 0.75, 0],
      [0, 0, 0.75],
    ]);
    expect(batches[0]).toBe(3);
    // Generations hand out fewer than λ candidates once the model ranks them.
    expect(batches.slice(1).every((b) => b >= 1 && b <= 6)).toBe(true);
    expect(batches.length).toBeGreaterThan(40 / 6 + 2);
    // On a quadratic the surrogate is exact: far closer than CMA-ES gets with the same budget.
    expect(opt.best().f).toBeLessThan(1e-4);
  });

  it('COBYLA is sequential and gets close to the optimum', async () => {
    await prepareOptimizer('cobyla');
    const opt = createOptimizer('cobyla', { ...box, seed: 0 });
    expect(opt.popsize).toBe(1);
    const { batches } = drive(opt, f);
    expect(batches.every((b) => b === 1)).toBe(true);
    expect(opt.best().f).toBeLessThan(1e-3);
  });

  it("COBYLA survives NLopt's heap growing (500 modules: its wrapper's copied view went stale)", async () => {
    await prepareOptimizer('cobyla');
    const n = 500;
    const history: CobylaEvaluation[] = [];
    const p = { x0: new Array<number>(n).fill(0), lower: new Array<number>(n).fill(-1.5), upper: new Array<number>(n).fill(1.5) };
    // Before the fix the first call threw "Cannot perform Construct on a detached ArrayBuffer".
    for (let k = 0; k < 3; k++) {
      const x = cobylaNextPoint(p, history);
      expect(x).toHaveLength(n);
      history.push({ x: x!, f: x!.reduce((s, v) => s + (v - 0.3) ** 2, 0) });
    }
    expect(history[1].x).not.toEqual(history[0].x);
    expect(history[1].x.every((v) => v >= -1.5 && v <= 1.5)).toBe(true);
  });

  it('COBYLA beats random search in median over 9 quadratics', async () => {
    await prepareOptimizer('cobyla');
    const cobyla: number[] = [];
    const random: number[] = [];
    for (let seed = 0; seed < 9; seed++) {
      const rng = Rng.fromSeed(1000 + seed);
      const g = quadratic([0, 1, 2].map(() => 2.4 * rng.uniform() - 1.2));
      for (const [name, out] of [
        ['cobyla', cobyla],
        ['random', random],
      ] as const) {
        const opt = createOptimizer(name, { ...box, seed });
        drive(opt, g);
        out.push(opt.best().f);
      }
    }
    expect(median(cobyla)).toBeLessThan(median(random) / 10);
  });
});

describe('cobyla-lq: COBYLA for the reference budget, then lq-CMA-ES', () => {
  const n = 5;
  const center = [0.4, -0.7, 1.1, 0.2, -0.3];
  const g = (x: number[]) => x.reduce((s, v, i) => s + (i + 1) * (v - center[i]) ** 2 + 0.05 * Math.abs(v), 0);
  const opts = { dim: n, lower: -1.5, upper: 1.5, budget: 150, seed: 7 };
  const zero = new Array<number>(n).fill(0);

  it('auto is cobyla-lq up to lqMaxModules modules and cobyla above; the optimiser carries the real name', async () => {
    await prepareOptimizer('auto');
    expect(resolveOptimizer('auto', SEARCH_DEFAULTS.lqMaxModules)).toBe('cobyla-lq');
    expect(resolveOptimizer('auto', SEARCH_DEFAULTS.lqMaxModules + 1)).toBe('cobyla');
    expect(resolveOptimizer('cmaes', 3)).toBe('cmaes');
    expect(createOptimizer('auto', { ...box, seed: 1 }).name).toBe('cobyla-lq');
    expect(createOptimizer('auto', { ...box, dim: 11, seed: 1 }).name).toBe('cobyla');
  });

  it("its first points are COBYLA's (w = 0 observed counts), then lq-CMA-ES probes around the best and scores populations", async () => {
    await prepareOptimizer('cobyla-lq');
    const cobyla = createOptimizer('cobyla', opts);
    const cobylaAsked = drive(cobyla, g).asked;
    const chain = createOptimizer('cobyla-lq', opts);
    chain.observe?.([zero], [g(zero)]);
    const { asked, batches } = drive(chain, g);
    const k = SEARCH_DEFAULTS.cobylaEvaluations - 1; // w = 0 was the first of the 40
    expect(asked.slice(0, k)).toEqual(cobylaAsked.slice(0, k));
    expect(batches.slice(0, k).every((b) => b === 1)).toBe(true);
    expect(asked).toHaveLength(opts.budget);
    expect(chain.stopReason()).toBe('budget');
    // lq-CMA-ES starts from the best of those 40 points: its probes are that point + 0.75·eᵢ, clipped to the box.
    const head = [zero, ...asked.slice(0, k)];
    const best = head.reduce((a, b) => (g(b) < g(a) ? b : a));
    expect(asked.slice(k, k + n)).toEqual(best.map((_, i) => best.map((v, j) => (j === i ? Math.min(1.5, v + 0.75) : v))));
    expect(chain.popsize).toBe(SEARCH_DEFAULTS.popsize);
    expect(Math.max(...batches.slice(k))).toBeGreaterThan(1);
    // Never behind COBYLA@40 (its own first 40 points), and on a quadratic ahead of COBYLA's whole run.
    expect(chain.best().f).toBeLessThanOrEqual(Math.min(...head.map(g)));
    expect(chain.best().f).toBeLessThan(cobyla.best().f);
    expect(g(chain.best().x)).toBe(chain.best().f);
  });

  it("lq-CMA-ES starts with SEARCH_DEFAULTS.chainSigma0 after the switch, or with the sigma0 given", async () => {
    await prepareOptimizer('cobyla-lq');
    const sigmaAfterSwitch = (o: typeof opts & { sigma0?: number }) => {
      const chain = createOptimizer('cobyla-lq', o);
      chain.observe?.([zero], [g(zero)]);
      for (;;) {
        const state = chain.state() as { lq: { state: { lq: { cmaes: { sigma: number; generation: number } } } } | null };
        if (state.lq) return state.lq.state.lq.cmaes;
        const xs = chain.ask();
        chain.tell(xs, xs.map(g));
      }
    };
    expect(sigmaAfterSwitch(opts)).toEqual(expect.objectContaining({ sigma: SEARCH_DEFAULTS.chainSigma0(n), generation: 0 }));
    expect(SEARCH_DEFAULTS.chainSigma0(n)).not.toBe(SEARCH_DEFAULTS.sigma0(n));
    expect(sigmaAfterSwitch({ ...opts, sigma0: 0.3 }).sigma).toBe(0.3);
  });

  it('resumes bit-identically from every point, before and after the switch, through failures', async () => {
    await prepareOptimizer('cobyla-lq');
    const h = (x: number[]) => (x[1] > 0.6 ? Number.NaN : g(x));
    const phases = new Set<string>();
    const r = resumeAtEveryStep('cobyla-lq', opts, h, (snap) => phases.add((snap as { lq: unknown }).lq === null ? 'cobyla' : 'lq'));
    expect(r.seen).toEqual(r.all);
    expect(r.resumedBest).toEqual(r.straightBest);
    expect([...phases].sort()).toEqual(['cobyla', 'lq']);
    expect(r.all.some((x) => Number.isNaN(h(x)))).toBe(true);
  });

  it('rejects a broken snapshot with a one-line error', async () => {
    await prepareOptimizer('cobyla-lq');
    const state = createOptimizer('cobyla-lq', opts).state();
    expect(() => createOptimizer('cobyla-lq', opts, { ...state, points: [{ x: [1], f: 0 }] })).toThrow(/resume cobyla-lq: points/);
    expect(() => createOptimizer('cobyla-lq', opts, { ...state, cobyla: { optimizer: 'cmaes', version: 1 } })).toThrow(/snapshot is from optimizer cmaes/);
  });
});

describe('resume from state()', () => {
  const f = quadratic([0.4, -0.7, 1.1]);

  it.each<OptimizerName>(['cobyla-lq', 'lq-cmaes', 'cmaes', 'random', 'cobyla'])('%s continues exactly after a JSON round trip', async (name) => {
    await prepareOptimizer(name);
    const opts = { ...box, budget: 30, seed: 5 };
    const straight = createOptimizer(name, opts);
    const all = drive(straight, f).asked;

    const first = createOptimizer(name, opts);
    const head: number[][] = [];
    while (head.length < 12) {
      const xs = first.ask();
      head.push(...xs);
      first.tell(xs, xs.map(f));
    }
    const resumed = createOptimizer(name, opts, JSON.parse(JSON.stringify(first.state())));
    const tail = drive(resumed, f).asked;
    expect([...head, ...tail]).toEqual(all);
    expect(resumed.best()).toEqual(straight.best());
  });

  it('lq-cmaes resumes bit-identically from every point of a run: mid-generation, after failures, with its archive', () => {
    const n = 5;
    const g = (x: number[]) => (x[0] > 1.2 ? Number.NaN : x.reduce((s, v, i) => s + (i + 1) * (v - 0.1 * i) ** 2 + 0.05 * Math.abs(v), 0));
    const opts = { dim: n, lower: -1.5, upper: 1.5, budget: 120, seed: 11 };
    let midGeneration = 0;
    const r = resumeAtEveryStep('lq-cmaes', opts, g, (snap) => {
      if ((snap as { lq: { generation: unknown } }).lq.generation !== null) midGeneration++;
    });
    expect(r.seen).toEqual(r.all);
    expect(r.resumedBest).toEqual(r.straightBest);
    expect(midGeneration).toBeGreaterThan(0);
  });

  it('rejects a snapshot from another optimizer', () => {
    const snap = createOptimizer('random', { ...box, seed: 1 }).state();
    expect(() => createOptimizer('cmaes', { ...box, seed: 1 }, snap)).toThrow(/snapshot is from optimizer random/);
  });
});

describe('non-finite values and errors', () => {
  it('COBYLA turns NaN/Infinity into a finite penalty and keeps going', async () => {
    await prepareOptimizer('cobyla');
    const g = quadratic([0.2, 0.2, 0.2]);
    const opt = createOptimizer('cobyla', { ...box, seed: 0 });
    let k = 0;
    while (!opt.done()) {
      const xs = opt.ask();
      opt.tell(xs, xs.map((x) => (k++ % 5 === 3 ? Number.NaN : g(x))));
    }
    expect(opt.stopReason()).toBe('budget');
    expect(Number.isFinite(opt.best().f)).toBe(true);
    expect(opt.best().f).toBeLessThan(0.1);
  });

  it('cobylaValue: clamp finite values, penalise the rest below nothing seen', () => {
    expect(cobylaValue(2, [])).toBe(2);
    expect(cobylaValue(1e300, [])).toBe(1e15);
    expect(cobylaValue(Number.NaN, [])).toBe(1);
    const hist = [
      { x: [0], f: 3 },
      { x: [1], f: 1 },
    ];
    expect(cobylaValue(Number.NaN, hist)).toBe(6); // worst 3 + spread 2 + 1
    expect(cobylaValue(Infinity, hist)).toBe(6);
  });

  it('CMA-ES, lq-CMA-ES and random search treat NaN as the worst value', () => {
    for (const name of ['cmaes', 'lq-cmaes', 'random'] as const) {
      const opt = createOptimizer(name, { ...box, seed: 2 });
      const xs = opt.ask();
      opt.tell(xs, xs.map((x, i) => (i === 0 ? Number.NaN : 1 + i)));
      expect(opt.best()).toEqual({ x: xs[1], f: 2 });
    }
  });

  it('validates names, bounds and budgets', async () => {
    await prepareOptimizer('cobyla');
    const code = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        if (e instanceof LorahubError) return e.code;
      }
      return 'none';
    };
    // An unknown name is the user's (--optimizer); the rest are adapt()'s own configuration, never a usage error.
    expect(code(() => createOptimizer('nope' as OptimizerName, { ...box, seed: 0 }))).toBe('BAD_ARGUMENT');
    expect(code(() => createOptimizer('random', { dim: 3, budget: 10, seed: 0 }))).toBe('INTERNAL');
    expect(code(() => createOptimizer('cobyla', { dim: 3, budget: 10, seed: 0 }))).toBe('INTERNAL');
    expect(code(() => createOptimizer('cmaes', { ...box, budget: 0, seed: 0 }))).toBe('INTERNAL');
    expect(code(() => createOptimizer('cmaes', { ...box, x0: [2, 0, 0], seed: 0 }))).toBe('INTERNAL');
    const opt = createOptimizer('cobyla', { ...box, seed: 0 });
    const [x] = opt.ask();
    expect(code(() => opt.tell([x.map((v) => v + 1)], [0]))).toBe('INTERNAL');
  });

  it('loading nlopt-js leaves no process-wide handlers behind', async () => {
    // Fresh import state is not available inside one test file, so check the steady state:
    // whatever handlers exist, nlopt-js's emscripten glue added none of them.
    await prepareOptimizer('cobyla');
    const sources = [...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')].map(String);
    expect(sources.some((s) => s.includes('ExitStatus') || s.includes('instanceof wg'))).toBe(false);
  });
});

describe('efficiency on smooth functions (lq-CMA-ES vs CMA-ES, unbounded, x0 = 3·1, σ0 = 1, λ = 4 + ⌊3 ln n⌋)', () => {
  /** Evaluations until f < 1e-8, or Infinity within `budget`. */
  function evalsTo(name: OptimizerName, f: (x: number[]) => number, n: number, seed: number, budget: number): number {
    const opt = createOptimizer(name, { dim: n, x0: new Array<number>(n).fill(3), sigma0: 1, budget, seed, popsize: 4 + Math.floor(3 * Math.log(n)) });
    let evals = 0;
    while (!opt.done()) {
      const xs = opt.ask();
      for (const v of xs.map(f)) {
        evals++;
        if (v < 1e-8) return evals;
      }
      opt.tell(xs, xs.map(f));
    }
    return Infinity;
  }
  const n = 10;
  const sphere = (x: number[]) => x.reduce((s, v) => s + v * v, 0);
  const ellipsoid = (x: number[]) => x.reduce((s, v, i) => s + 10 ** ((6 * i) / (n - 1)) * v * v, 0);

  // Measured (5 seeds): sphere ~32 vs ~1500, ellipsoid ~100 vs ~4300 (pycma's CMA-ES: 1511, 4041).
  it.each([
    ['sphere', sphere, 60, 1000],
    ['ellipsoid (condition 1e6)', ellipsoid, 200, 3500],
  ] as const)('%s in 10-D: lq-CMA-ES needs a small fraction of CMA-ES\'s evaluations', (_, fn, lqMax, cmaMin) => {
    for (const seed of [0, 1, 2]) {
      expect(evalsTo('lq-cmaes', fn, n, seed, lqMax)).toBeLessThanOrEqual(lqMax);
      expect(evalsTo('cmaes', fn, n, seed, 20000)).toBeGreaterThan(cmaMin);
    }
  });
});
