/**
 * Search efficiency (evaluations, not seconds): CMA-ES settings vs COBYLA on 20-module tiny
 * random worlds (make-random-world --size tiny), where an evaluation costs milliseconds. This is
 * the measurement behind ADAPT's defaults (λ = 6, σ₀ = 1/√n).
 *
 *   npm run bench:search [-- --worlds 0,1 --seeds 1,2,3 --budget 200]
 */
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { adapt } from '../src/adapt/adapt.ts';
import { BatchedEvaluator, SequentialEvaluator } from '../src/adapt/evaluator.ts';
import { buildFewShotBatch, FewShotObjective } from '../src/adapt/objective.ts';
import { loadModel } from '../src/engine/index.ts';
import { readAdapter } from '../src/io/peft.ts';
import { loadExamplesFile } from '../src/tasks/index.ts';
import { ByteTokenizer } from '../src/tokenizers/bytes.ts';
import { writeWorld } from './lib/world.ts';

const o = new Command()
  .option('--worlds <list>', 'world seeds', '0,1')
  .option('--seeds <list>', 'optimiser seeds', '1,2,3')
  .option('--budget <n>', 'CMA-ES budget', '200')
  .option('--engine <name>', 'forward engine: ort | tfjs (default: ort when it loads, else tfjs)')
  .parse()
  .opts<{ worlds: string; seeds: string; budget: string; engine?: string }>();
const REPO = new URL('..', import.meta.url).pathname;
const CONFIGS: [number | undefined, number | undefined][] = [[0.5, 12], [0.3, 12], [0.22, 12], [0.5, 6], [0.22, 6], [undefined, undefined]];

console.log('| world | optimiser | evals to reach COBYLA@40 (per seed) | best @80 | best @200 |');
console.log('|---|---|---|---|---|');
for (const w of o.worlds.split(',').map(Number)) {
  const dir = join(REPO, '.bench', `world-tiny-${w}`);
  if (!existsSync(join(dir, 'world.json'))) await writeWorld({ size: 'tiny', modules: 20, rank: 16, seed: w, out: dir });
  const names = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, '0')}`);
  const modules = await Promise.all(names.map((n) => readAdapter(join(dir, 'modules', n))));
  const batch = buildFewShotBatch(new ByteTokenizer(), loadExamplesFile(join(dir, 'task.json')));
  const obj = new FewShotObjective(await loadModel(join(dir, 'base'), { engine: o.engine }), modules, batch, { normalization: 'reference', batchSize: 5 });
  const c40 = await adapt(20, new SequentialEvaluator(obj), { optimizer: 'cobyla', budget: 40, seed: 1, bound: 1.5 });
  const c80 = await adapt(20, new SequentialEvaluator(obj), { optimizer: 'cobyla', budget: 80, seed: 1, bound: 1.5 });
  console.log(`| ${w} | COBYLA (base ${c40.baseObjective.toFixed(4)}) | — | ${c80.objective.toFixed(4)} | @40: ${c40.objective.toFixed(4)} |`);
  for (const [sigma0, popsize] of CONFIGS) {
    const hits: string[] = [];
    const at80: string[] = [];
    const at200: string[] = [];
    for (const seed of o.seeds.split(',').map(Number)) {
      const r = await adapt(20, new BatchedEvaluator(obj), { optimizer: 'cmaes', budget: Number(o.budget), seed, sigma0, bound: 1.5, popsize });
      hits.push(String(r.trace.find((t) => t.best <= c40.objective)?.evaluations ?? '—'));
      at80.push((r.trace.filter((t) => t.evaluations <= 81).pop()?.best ?? Number.NaN).toFixed(4));
      at200.push(r.objective.toFixed(4));
    }
    const label = sigma0 === undefined ? 'CMA-ES defaults (λ 6, σ₀ 1/√n)' : `CMA-ES λ ${popsize}, σ₀ ${sigma0}`;
    console.log(`| ${w} | ${label} | ${hits.join(', ')} | ${at80.join(', ')} | ${at200.join(', ')} |`);
  }
  await obj.model.dispose();
}
