/**
 * ADAPT throughput and time-to-quality per engine, on the t5-gated fixture and on random worlds
 * with FLAN-T5-small/base/large shapes (scripts/make-random-world.ts):
 *  1. evaluations/s scoring one candidate per forward pass (as the reference), the whole CMA-ES
 *     population in one pass ("batched"), and population slices in worker threads;
 *  2. the objective 40 one-at-a-time COBYLA evaluations reach (the reference's actual optimiser
 *     and budget) and the wall time each search needs to reach it: the default search
 *     (SEARCH_DEFAULTS.optimizer, rows marked default) and, for comparison, lq-CMA-ES and CMA-ES
 *     with population scoring (batched; batched + workers);
 *  3. peak RSS of each configuration: every row runs in a process of its own.
 *
 *   npm run bench:adapt [-- --worlds fixture,small,base,large --engines ort,tfjs --workers 2 --json]
 * Decoder-only worlds are named <arch>-<size> (scripts/make-random-world.ts): llama-small,
 * qwen2-small, gpt2-small (GPT-2 small's shape), qwen2-0.5b (Qwen2.5-0.5B's), llama-1b (Llama-3.2-1B's).
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adapt, DEFAULT_POPSIZE, DEFAULT_SETTINGS, type Evaluator } from '../src/adapt/adapt.ts';
import { OPTIMIZER_NAMES, type OptimizerName } from '../src/adapt/optimizer.ts';
import { BatchedEvaluator, SequentialEvaluator, WorkerEvaluator } from '../src/adapt/evaluator.ts';
import { buildFewShotBatch, FewShotObjective, type FewShotBatch, type ObjectiveOptions } from '../src/adapt/objective.ts';
import { openEngine } from '../src/engine/index.ts';
import { readAdapter } from '../src/io/peft.ts';
import { stackModules } from '../src/lora/compose.ts';
import type { LoraModule } from '../src/lora/module.ts';
import type { RandomT5Size } from '../src/models/t5/random.ts';
import { loadDataFile, loadExamplesFile } from '../src/tasks/index.ts';
import { RANDOM_CAUSAL_ARCHS, type RandomCausalArch } from '../src/models/causal/random.ts';
import { loadArch } from '../src/models/index.ts';
import { ByteTokenizer } from '../src/tokenizers/bytes.ts';
import { FIXTURE, peakRssMb, REPO, runChild, type BenchRow } from './lib/bench.ts';
import { writeWorld } from './lib/world.ts';

const o = new Command()
  .option('--worlds <list>', 'fixture | small | base | large | llama-small | qwen2-small | gpt2-small | qwen2-0.5b | llama-1b', 'fixture,small')
  .option('--engines <list>', 'engines to run', 'ort,tfjs')
  .option('--workers <n>', 'worker threads for the workers rows', '2')
  .option('--budget <n>', 'CMA-ES evaluation budget when chasing the 40-evaluation objective', '300')
  .option('--seconds <s>', 'throughput measuring time per row', '5')
  .option('--seed <n>', 'seed', '42')
  .option('--json', 'one JSON line per measurement')
  .option('--child <world:engine:mode>', '(internal) measure one configuration in this process')
  .option('--target <x>', '(internal) objective to chase')
  .parse()
  .opts<{ worlds: string; engines: string; workers: string; budget: string; seconds: string; seed: string; json?: boolean; child?: string; target?: string }>();

const OBJECTIVE: ObjectiveOptions = { alpha: 0.05, normalization: 'reference', batchSize: 5 };

interface Setup {
  name: string;
  modelDir: string;
  modules: LoraModule[];
  batch: FewShotBatch;
}

async function fixtureSetup(): Promise<Setup> {
  const fx = JSON.parse(readFileSync(join(FIXTURE, 'adapter_cases.json'), 'utf8')).objective.examples;
  return {
    name: 'fixture',
    modelDir: join(FIXTURE, 'model'),
    modules: await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(join(FIXTURE, 'adapters', a)))),
    batch: { inputIds: fx.input_ids, attentionMask: fx.attention_mask, labels: fx.labels },
  };
}

function worldDir(size: string): string {
  return join(REPO, '.bench', `world-${size}`);
}

/** A decoder-only world's architecture and size from its name "<arch>-<size>", or undefined for a T5 world. */
function causalWorld(world: string): { arch: RandomCausalArch; size: string } | undefined {
  const i = world.indexOf('-');
  const arch = world.slice(0, i);
  return i > 0 && (RANDOM_CAUSAL_ARCHS as readonly string[]).includes(arch) ? { arch: arch as RandomCausalArch, size: world.slice(i + 1) } : undefined;
}

/**
 * Decoder-only worlds tfjs-wasm cannot run (4 GB wasm32 heap), with the reason; and those measured
 * without workers (one model per worker).
 */
const CAUSAL_NO_TFJS: Record<string, string> = {
  'qwen2-0.5b': 'tfjs-wasm runs out of its 4 GB heap scoring a population (2.5 GB of weights resident; one candidate at a time fits)',
  'llama-1b': 'tfjs-wasm cannot hold 4.9 GB of weights (4 GB wasm32 heap)',
};
const CAUSAL_NO_WORKERS = ['qwen2-0.5b', 'llama-1b'];

async function worldSetup(size: string): Promise<Setup> {
  const dir = worldDir(size);
  if (causalWorld(size)) {
    // A token-id task (task.jsonl): ids used as given, padded with the model's pad id.
    const names = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    return {
      name: size,
      modelDir: join(dir, 'base'),
      modules: await Promise.all(names.map((n) => readAdapter(join(dir, 'modules', n)))),
      batch: buildFewShotBatch(new ByteTokenizer(), loadDataFile(join(dir, 'task.jsonl')), loadArch(join(dir, 'base')).config),
    };
  }
  const names = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, '0')}`);
  return {
    name: size,
    modelDir: join(dir, 'base'),
    modules: await Promise.all(names.map((n) => readAdapter(join(dir, 'modules', n)))),
    batch: buildFewShotBatch(new ByteTokenizer(), loadExamplesFile(join(dir, 'task.json'))),
  };
}

/** Population of λ fixed, moderate candidates (throughput does not depend on the values). */
function populationFor(dim: number): number[][] {
  return Array.from({ length: DEFAULT_POPSIZE }, (_, i) => Array.from({ length: dim }, (_, j) => 0.5 * Math.sin(1 + i * 7 + j * 3)));
}

async function child(world: string, engineName: string, mode: string): Promise<void> {
  const s = world === 'fixture' ? await fixtureSetup() : await worldSetup(world);
  const workers = Number(o.workers);
  const seed = Number(o.seed);
  const engine = await openEngine({ engine: engineName });
  const info = engine.info;
  // With workers, the cores are split between them (ort: intra-op threads per worker).
  const perWorker = Math.max(1, Math.floor(info.threads / workers));
  const model = mode.includes('workers') ? undefined : await engine.load(s.modelDir);
  const obj = model ? new FewShotObjective(model, s.modules, s.batch, OBJECTIVE) : undefined;
  const make = (): Evaluator => {
    if (mode.includes('workers')) {
      return new WorkerEvaluator({ workers, modelDir: s.modelDir, stack: stackModules(s.modules, OBJECTIVE.harmonize), batch: s.batch, objective: OBJECTIVE, engine: { engine: info.engine, device: info.device, threads: perWorker } });
    }
    if (!obj) throw new Error('internal: no objective');
    return mode.startsWith('sequential') || mode.endsWith('sequential') || mode === 'cobyla40' ? new SequentialEvaluator(obj) : new BatchedEvaluator(obj);
  };
  const base: BenchRow = {
    bench: 'adapt',
    setup: s.name,
    engine: info.engine,
    device: info.device,
    threads: mode.includes('workers') ? perWorker : info.threads,
    workers: mode.includes('workers') ? workers : 1,
    mode,
  };
  const dim = s.modules.length;
  if (mode === 'cobyla40') {
    const r = await adapt(dim, make(), { optimizer: 'cobyla', budget: 40, seed, sigma0: 0.5, bound: 1.5 });
    console.log(JSON.stringify({ ...base, seconds: Number(r.seconds.toFixed(3)), objective: r.objective, evaluations: r.evaluations, peak_rss_mb: peakRssMb() }));
  } else if (mode.startsWith('chase-')) {
    // chase-<optimizer>-<sequential|batched|workers>: the wall time to COBYLA@40's objective
    const optimizer = OPTIMIZER_NAMES.find((n) => mode === `chase-${n}-${mode.split('-').pop()}`) as OptimizerName;
    const target = Number(o.target);
    const ev = make();
    try {
      if (ev instanceof WorkerEvaluator) await ev.ready(); // startup is in the throughput rows
      const r = await adapt(dim, ev, { optimizer, budget: Number(o.budget), seed, bound: 1.5 });
      const hit = r.trace.find((g) => g.best <= target);
      console.log(
        JSON.stringify({
          ...base,
          optimizer,
          default: optimizer === DEFAULT_SETTINGS.optimizer,
          target,
          reached: hit !== undefined,
          seconds: hit ? Number(hit.seconds.toFixed(3)) : null,
          evaluations_to_target: hit?.evaluations ?? null,
          objective: r.objective,
          final_evaluations: r.evaluations,
          final_seconds: Number(r.seconds.toFixed(3)),
          peak_rss_mb: peakRssMb(),
        }),
      );
    } finally {
      await ev.close?.();
    }
  } else {
    const population = populationFor(dim);
    const ev = make();
    try {
      const t0 = performance.now();
      await ev.evaluate(population); // warm-up: sessions built, weights packed, workers loaded
      const warm = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      let n = 0;
      while (performance.now() - t1 < Number(o.seconds) * 1000 || n < 2 * population.length) {
        await ev.evaluate(population);
        n += population.length;
      }
      const sec = (performance.now() - t1) / 1000;
      console.log(JSON.stringify({ ...base, evals_per_s: Number((n / sec).toFixed(2)), seconds_per_eval: Number((sec / n).toFixed(4)), load_and_first_s: Number(warm.toFixed(2)), peak_rss_mb: peakRssMb() }));
    } finally {
      await ev.close?.();
    }
  }
  await model?.dispose();
}

if (o.child) {
  const [world, engine, mode] = o.child.split(':');
  await child(world, engine, mode);
} else {
  const rows: BenchRow[] = [];
  const emit = (r: BenchRow) => {
    rows.push(r);
    if (o.json) console.log(JSON.stringify(r));
  };
  const common = ['--workers', o.workers, '--budget', o.budget, '--seconds', o.seconds, '--seed', o.seed];
  for (const world of o.worlds.split(',')) {
    if (world !== 'fixture' && !existsSync(join(worldDir(world), 'world.json'))) {
      const causal = causalWorld(world);
      if (causal) await writeWorld({ arch: causal.arch, size: causal.size, modules: 20, rank: 16, seed: 0, out: worldDir(world) });
      else await writeWorld({ size: world as RandomT5Size, modules: 20, rank: 16, seed: 0, out: worldDir(world) });
    }
    // Time-to-target needs hundreds of evaluations: fixture and the small worlds only.
    const chase = world === 'fixture' || world === 'small' || world === 'llama-small' || world === 'qwen2-small';
    for (const engine of o.engines.split(',')) {
      if (engine === 'tfjs' && world in CAUSAL_NO_TFJS) {
        emit({ bench: 'adapt', setup: world, engine, skipped: CAUSAL_NO_TFJS[world] });
        continue;
      }
      if (engine === 'tfjs' && world === 'large') {
        emit({ bench: 'adapt', setup: world, engine, skipped: 'tfjs-wasm cannot hold 2.9 GB of weights (4 GB wasm32 heap)' });
        continue;
      }
      const one = (mode: string, extra: string[] = []) => runChild('scripts/bench-adapt.ts', ['--child', `${world}:${engine}:${mode}`, ...common, ...extra], { bench: 'adapt', setup: world, engine, mode });
      // The large world holds one model per worker: 2 × 2.9 GB; measured without workers.
      const modes = world === 'large' || CAUSAL_NO_WORKERS.includes(world) ? ['sequential', 'batched'] : ['sequential', 'batched', 'workers'];
      for (const mode of modes) one(mode).forEach(emit);
      if (!chase) continue;
      const ref = one('cobyla40');
      ref.forEach(emit);
      const target = ref[0]?.objective;
      if (typeof target !== 'number') continue;
      // The default search first; a sequential one (COBYLA) has no population to batch.
      const chasers = [DEFAULT_SETTINGS.optimizer, ...(['lq-cmaes', 'cmaes'] as const).filter((n) => n !== DEFAULT_SETTINGS.optimizer)];
      for (const opt of chasers) {
        const hows = opt === 'cobyla' ? ['sequential'] : CAUSAL_NO_WORKERS.includes(world) ? ['batched'] : ['batched', 'workers'];
        for (const how of hows) one(`chase-${opt}-${how}`, ['--target', String(target)]).forEach(emit);
      }
    }
  }
  if (!o.json) {
    console.log('| setup | engine | mode | result | peak RSS |');
    console.log('|---|---|---|---|---|');
    for (const r of rows) {
      const how = `${r.engine}${r.device ? ` (${r.device}, ${r.workers} × ${r.threads} threads)` : ''}`;
      let result: string;
      if (r.skipped || r.error) result = String(r.skipped ?? r.error);
      else if (r.evals_per_s !== undefined) result = `${r.evals_per_s} evals/s (${r.seconds_per_eval} s/eval)`;
      else if (r.mode === 'cobyla40') result = `objective ${(r.objective as number).toFixed(5)} in ${r.seconds} s`;
      else if (r.reached) result = `≤ ${(r.target as number).toFixed(5)} after ${r.seconds} s (${r.evaluations_to_target} evals); final ${(r.objective as number).toFixed(5)} after ${r.final_evaluations} evals, ${r.final_seconds} s`;
      else result = `not reached in ${r.final_evaluations} evals (${r.final_seconds} s); final ${(r.objective as number)?.toFixed(5)}`;
      console.log(`| ${r.setup} | ${how} | ${r.mode ?? ''}${r.default ? ' (default)' : ''} | ${result} | ${r.peak_rss_mb ?? ''} MB |`);
    }
  }
}
