/**
 * CMA-ES benchmark against pycma's reference medians.
 *
 *   npm run -s bench:cmaes                       # summary table
 *   npm run -s bench:cmaes -- --json             # one JSON line per run
 *   npm run -s bench:cmaes -- --seeds 5 --functions sphere,rosenbrock --dims 5,10
 *   npm run -s bench:cmaes -- --surrogate --dims 5,10   # lq-CMA-ES (surrogate.ts) on the same runs
 *
 * Setup (pycma's usual test): x0 = 3·1, σ0 = 1, no bounds, default population size; a run
 * succeeds when the best f of a generation is < 1e-8. Evaluations are counted per generation
 * (multiples of λ), as pycma counts them when it checks `ftarget` after each iteration.
 */
import { parseArgs } from 'node:util';
import { CMAES } from '../src/adapt/cmaes.ts';
import { createOptimizer } from '../src/adapt/optimizer.ts';
import { Rng } from '../src/rng.ts';

type TestFunction = (x: readonly number[]) => number;

const FUNCTIONS: Record<string, TestFunction> = {
  sphere: (x) => x.reduce((s, v) => s + v * v, 0),
  /** Condition 1e6: f = Σ 10^(6 (i−1)/(n−1)) x_i² (pycma `ff.elli`). */
  ellipsoid: (x) => {
    const n = x.length;
    return x.reduce((s, v, i) => s + 10 ** ((6 * i) / (n - 1)) * v * v, 0);
  },
  rosenbrock: (x) => {
    let s = 0;
    for (let i = 0; i < x.length - 1; i++) s += 100 * (x[i] * x[i] - x[i + 1]) ** 2 + (x[i] - 1) ** 2;
    return s;
  },
};

/** pycma's median evaluations to f < 1e-8 from x0 = 3·1, σ0 = 1, for n = 5, 10, 20. */
const PYCMA_MEDIANS: Record<string, Record<number, number>> = {
  sphere: { 5: 710, 10: 1511, 20: 2749 },
  ellipsoid: { 5: 1564, 10: 4041, 20: 12957 },
  rosenbrock: { 5: 1790, 10: 5206, 20: 16948 },
};

const TARGET = 1e-8;
const TOLERANCE = 0.15;

interface RunResult {
  function: string;
  dim: number;
  seed: number;
  evaluations: number;
  success: boolean;
}

/**
 * lq-CMA-ES through the optimiser interface, on the same setup (its default λ set to CMA-ES's);
 * evaluations counted one by one, as it evaluates only part of each population.
 */
function runSurrogate(name: string, dim: number, seed: number): RunResult {
  const f = FUNCTIONS[name];
  const budget = 50_000;
  const opt = createOptimizer('lq-cmaes', { dim, x0: new Array<number>(dim).fill(3), sigma0: 1, budget, seed, popsize: 4 + Math.floor(3 * Math.log(dim)) });
  let evaluations = 0;
  while (!opt.done()) {
    const xs = opt.ask();
    const fs = xs.map(f);
    opt.tell(xs, fs);
    for (const v of fs) {
      evaluations++;
      if (v < TARGET) return { function: name, dim, seed, evaluations, success: true };
    }
  }
  return { function: name, dim, seed, evaluations, success: false };
}

function runOnce(name: string, dim: number, seed: number): RunResult {
  const f = FUNCTIONS[name];
  const es = new CMAES({ x0: new Array<number>(dim).fill(3), sigma0: 1, rng: Rng.fromSeed(seed) });
  for (;;) {
    const xs = es.ask();
    const fs = xs.map(f);
    es.tell(xs, fs);
    if (Math.min(...fs) < TARGET) {
      return { function: name, dim, seed, evaluations: es.countEvaluations, success: true };
    }
    if (Object.keys(es.stop()).length > 0) {
      return { function: name, dim, seed, evaluations: es.countEvaluations, success: false };
    }
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function parseList(value: string | undefined, fallback: string[]): string[] {
  return value === undefined ? fallback : value.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      seeds: { type: 'string', default: '15' },
      functions: { type: 'string' },
      dims: { type: 'string' },
      surrogate: { type: 'boolean', default: false },
    },
  });
  const seeds = Number(values.seeds);
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds: expected a positive integer, got ${values.seeds}`);
  const functions = parseList(values.functions, Object.keys(FUNCTIONS));
  for (const name of functions) {
    if (!(name in FUNCTIONS)) throw new Error(`--functions: unknown function ${name} (known: ${Object.keys(FUNCTIONS).join(', ')})`);
  }
  const dims = parseList(values.dims, ['5', '10', '20']).map(Number);
  for (const d of dims) if (!Number.isInteger(d) || d < 2) throw new Error(`--dims: expected integers ≥ 2, got ${d}`);

  const rows: string[][] = [];
  for (const name of functions) {
    for (const dim of dims) {
      const start = performance.now();
      const results: RunResult[] = [];
      for (let seed = 0; seed < seeds; seed++) {
        const r = values.surrogate ? runSurrogate(name, dim, seed) : runOnce(name, dim, seed);
        results.push(r);
        if (values.json) console.log(JSON.stringify(r));
      }
      const ok = results.filter((r) => r.success).map((r) => r.evaluations);
      const med = ok.length > 0 ? median(ok) : NaN;
      const ref = PYCMA_MEDIANS[name]?.[dim];
      const ratio = ref === undefined ? NaN : med / ref;
      rows.push([
        name,
        String(dim),
        `${ok.length}/${results.length}`,
        Number.isNaN(med) ? '-' : String(med),
        ref === undefined ? '-' : String(ref),
        Number.isNaN(ratio) ? '-' : ratio.toFixed(3),
        Number.isNaN(ratio) || values.surrogate ? '-' : Math.abs(ratio - 1) <= TOLERANCE ? 'yes' : 'NO',
        ((performance.now() - start) / 1000).toFixed(1),
      ]);
    }
  }
  if (values.json) return;

  // With --surrogate the reference column is still pycma's plain CMA-ES: the ratio is then lq-CMA-ES's share of its evaluations.
  const header = ['function', 'dim', 'success', values.surrogate ? 'lq-CMA-ES median evals' : 'median evals', 'pycma median', 'ratio', 'within 15%', 'time s'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padStart(widths[c])).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log(
    `\n${values.surrogate ? 'lq-CMA-ES, ' : ''}x0 = 3·1, σ0 = 1, default λ, ${seeds} seeds; success = f < ${TARGET} before a stop criterion fires. ` +
      'Medians are over successful runs only (Rosenbrock sometimes ends in the local optimum near x = (−1, 1, …, 1)).',
  );
}

main();
