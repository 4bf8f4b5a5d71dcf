/**
 * ADAPT throughput and time-to-quality, on the t5-gated fixture and on a FLAN-T5-small-sized
 * random world (scripts/make-random-world.ts):
 *  1. evaluations/s scoring one candidate per forward pass (as the reference) vs the whole
 *     CMA-ES population in one batched pass vs batched slices in worker threads;
 *  2. the objective 40 sequential evaluations reach (COBYLA, the reference's actual optimiser,
 *     one at a time) and the wall time CMA-ES (batched, and batched + workers) needs to reach it;
 *  3. peak RSS of each configuration (worker threads share the process, so RSS includes them).
 *
 *   npm run bench:adapt [-- --worlds fixture,small --workers 2 --json]
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adapt, DEFAULT_POPSIZE, type Evaluator } from '../src/adapt/adapt.ts';
import { BatchedEvaluator, SequentialEvaluator, WorkerEvaluator } from '../src/adapt/evaluator.ts';
import { buildFewShotBatch, FewShotObjective, type FewShotBatch, type ObjectiveOptions } from '../src/adapt/objective.ts';
import { openEngine, type EngineOptions } from '../src/engine/index.ts';
import { readAdapter } from '../src/io/peft.ts';
import type { LoraModule } from '../src/lora/module.ts';
import { loadExamplesFile } from '../src/tasks/index.ts';
import { ByteTokenizer } from '../src/tokenizers/bytes.ts';
import { writeWorld } from './lib/world.ts';

const o = new Command()
  .option('--worlds <list>', 'fixture,small', 'fixture,small')
  .option('--workers <n>', 'worker threads for the workers rows', '2')
  .option('--budget <n>', 'CMA-ES evaluation budget when chasing the 40-evaluation objective', '300')
  .option('--seed <n>', 'seed', '42')
  .option('--json', 'one JSON line per measurement')
  .parse()
  .opts<{ worlds: string; workers: string; budget: string; seed: string; json?: boolean }>();

const REPO = new URL('..', import.meta.url).pathname;
/** The rows below were measured on tfjs (wasm); workers load on the same engine. */
const ENGINE: EngineOptions = { engine: 'tfjs' };
const FIXTURE = join(REPO, '..', 'shared', 'fixtures', 't5-gated');

interface Setup {
  name: string;
  modelDir: string;
  modules: LoraModule[];
  batch: FewShotBatch;
  objective: ObjectiveOptions;
}

async function fixtureSetup(): Promise<Setup> {
  const fx = JSON.parse(readFileSync(join(FIXTURE, 'adapter_cases.json'), 'utf8')).objective.examples;
  return {
    name: 'fixture (t5-gated, 3 modules r=4)',
    modelDir: join(FIXTURE, 'model'),
    modules: await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(join(FIXTURE, 'adapters', a)))),
    batch: { inputIds: fx.input_ids, attentionMask: fx.attention_mask, labels: fx.labels },
    objective: { alpha: 0.05, normalization: 'reference', batchSize: 5 },
  };
}

async function worldSetup(): Promise<Setup> {
  const dir = join(REPO, '.bench', 'world-small');
  if (!existsSync(join(dir, 'world.json'))) await writeWorld({ size: 'small', modules: 20, rank: 16, seed: 0, out: dir });
  const names = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, '0')}`);
  return {
    name: 'small world (FLAN-T5-small shapes, 20 modules r=16)',
    modelDir: join(dir, 'base'),
    modules: await Promise.all(names.map((n) => readAdapter(join(dir, 'modules', n)))),
    batch: buildFewShotBatch(new ByteTokenizer(), loadExamplesFile(join(dir, 'task.json'))),
    objective: { alpha: 0.05, normalization: 'reference', batchSize: 5 },
  };
}

/** Samples RSS every 50 ms while `fn` runs. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peakMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, peakMb: peak / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

const rows: Record<string, unknown>[] = [];
function emit(r: Record<string, unknown>): void {
  rows.push(r);
  if (o.json) console.log(JSON.stringify(r));
}

async function run(s: Setup): Promise<void> {
  const workers = Number(o.workers);
  const seed = Number(o.seed);
  const obj = new FewShotObjective(await tfjs.load(s.modelDir), s.modules, s.batch, s.objective);
  const dim = s.modules.length;
  const lambda = DEFAULT_POPSIZE;
  const population = Array.from({ length: lambda }, (_, i) => s.modules.map((_, j) => 0.5 * Math.sin(1 + i * 7 + j * 3)));
  const engines: [string, () => Evaluator][] = [
    ['one at a time', () => new SequentialEvaluator(obj)],
    ['batched (1 pass)', () => new BatchedEvaluator(obj)],
    [`batched + ${workers} workers`, () => new WorkerEvaluator({ workers, modelDir: s.modelDir, modules: s.modules, batch: s.batch, objective: s.objective, engine: ENGINE })],
  ];
  for (const [engine, make] of engines) {
    const { value, peakMb } = await withPeakRss(async () => {
      const ev = make();
      try {
        await ev.evaluate(population); // warm-up (weights packed, workers loaded)
        const t0 = performance.now();
        let n = 0;
        while (performance.now() - t0 < 3000 || n < 2 * lambda) {
          await ev.evaluate(population);
          n += lambda;
        }
        return n / ((performance.now() - t0) / 1000);
      } finally {
        await ev.close?.();
      }
    });
    emit({ world: s.name, measure: 'throughput', engine, popsize: lambda, evals_per_s: Number(value.toFixed(2)), peak_rss_mb: Math.round(peakMb) });
  }
  // The reference's budget: 40 sequential evaluations (COBYLA), the w = 0 one included.
  const ref = await withPeakRss(() => adapt(dim, new SequentialEvaluator(obj), { optimizer: 'cobyla', budget: 40, seed, sigma0: 0.5, bound: 1.5 }));
  const target = ref.value.objective;
  emit({ world: s.name, measure: 'reference', engine: 'COBYLA, 40 evaluations, one at a time', objective: target, seconds: Number(ref.value.seconds.toFixed(3)), peak_rss_mb: Math.round(ref.peakMb) });
  for (const [engine, make] of engines.slice(1)) {
    const { value, peakMb } = await withPeakRss(async () => {
      const ev = make();
      try {
        if (ev instanceof WorkerEvaluator) await ev.ready(); // startup is reported by the throughput rows
        return await adapt(dim, ev, { optimizer: 'cmaes', budget: Number(o.budget), seed, bound: 1.5 });
      } finally {
        await ev.close?.();
      }
    });
    const hit = value.trace.find((r) => r.best <= target);
    emit({
      world: s.name,
      measure: 'time to reference objective',
      engine: `CMA-ES, ${engine}`,
      target,
      reached: hit !== undefined,
      seconds_to_target: hit ? Number(hit.seconds.toFixed(3)) : null,
      evaluations_to_target: hit?.evaluations ?? null,
      final_objective: value.objective,
      final_evaluations: value.evaluations,
      final_seconds: Number(value.seconds.toFixed(3)),
      peak_rss_mb: Math.round(peakMb),
    });
  }
  await obj.model.dispose();
}

const tfjs = await openEngine(ENGINE);
for (const w of o.worlds.split(',')) await run(w === 'fixture' ? await fixtureSetup() : await worldSetup());
if (!o.json) {
  console.log(`backend: ${tfjs.info.provider}`);
  console.log('| world | measure | engine | result | peak RSS |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    const result =
      r.measure === 'throughput'
        ? `${r.evals_per_s} evals/s (λ = ${r.popsize})`
        : r.measure === 'reference'
          ? `objective ${(r.objective as number).toFixed(5)} in ${r.seconds} s`
          : r.reached
            ? `≤ ${(r.target as number).toFixed(5)} after ${r.seconds_to_target} s (${r.evaluations_to_target} evals); final ${(r.final_objective as number).toFixed(5)} after ${r.final_evaluations} evals, ${r.final_seconds} s`
            : `not reached in ${r.final_evaluations} evals (${r.final_seconds} s); final ${(r.final_objective as number).toFixed(5)}`;
    console.log(`| ${r.world} | ${r.measure} | ${r.engine} | ${result} | ${r.peak_rss_mb} MB |`);
  }
}
