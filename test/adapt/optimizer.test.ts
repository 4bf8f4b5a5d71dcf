import { describe, expect, it } from 'vitest';
import { cobylaValue } from '../../src/adapt/cobyla.ts';
import { createOptimizer, prepareOptimizer, type Optimizer, type OptimizerName } from '../../src/adapt/optimizer.ts';
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

  it.each<OptimizerName>(['cmaes', 'random', 'cobyla'])('%s spends exactly the budget, inside the box', async (name) => {
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

  it('CMA-ES cuts its last generation to the budget (λ = 7: 5 × 7 + 5)', () => {
    const opt = createOptimizer('cmaes', { ...box, seed: 1 });
    expect(opt.popsize).toBe(7);
    expect(drive(opt, f).batches).toEqual([7, 7, 7, 7, 7, 5]);
    expect(opt.best().f).toBeLessThan(0.5);
  });

  it('COBYLA is sequential and gets close to the optimum', async () => {
    await prepareOptimizer('cobyla');
    const opt = createOptimizer('cobyla', { ...box, seed: 0 });
    expect(opt.popsize).toBe(1);
    const { batches } = drive(opt, f);
    expect(batches.every((b) => b === 1)).toBe(true);
    expect(opt.best().f).toBeLessThan(1e-3);
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

describe('resume from state()', () => {
  const f = quadratic([0.4, -0.7, 1.1]);

  it.each<OptimizerName>(['cmaes', 'random', 'cobyla'])('%s continues exactly after a JSON round trip', async (name) => {
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

  it('CMA-ES and random search treat NaN as the worst value', () => {
    for (const name of ['cmaes', 'random'] as const) {
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
