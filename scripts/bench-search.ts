/**
 * Search efficiency, counted in evaluations (deterministic, unlike seconds on a shared machine):
 * every optimiser on real composition problems and on tiny random worlds. This is the
 * measurement behind ADAPT's default search (src/adapt/optimizer.ts SEARCH_DEFAULTS).
 *
 * Worlds:
 * - `boolean_expressions`, `web_of_lies`, `navigate` (any target task): `lorahub compose --task X
 *   --seed S --num-modules 20 --examples 5` on the shipped library, built by the same `planCompose`
 *   (20 modules sampled with S, 5 few-shot examples drawn with S, mean-token loss), accuracy on
 *   the task's test split; with `--select K --examples 20`, compose's own default problem instead
 *   (the K modules of the library with the lowest few-shot loss alone, as run.ts selects them);
 * - `tiny-0`, `tiny-1`: make-random-world --size tiny --modules 20 --rank 16 --seed W (reference
 *   normalisation; no test split, so no accuracy), the optimiser seeded with S; with `--select K`,
 *   the K of its 20 modules with the lowest loss alone, as compose would select them;
 * - `fixture`: the t5-gated fixture (3 modules, reference normalisation), the optimiser seeded with S.
 *
 * For each (world, optimiser, seed): evaluations to reach COBYLA@40's objective (the reference's
 * optimiser and budget; the w = 0 evaluation counts, as in `compose`), the best objective after
 * 40, 100 and 300 evaluations, and the held-out exact-match accuracy of the result. `cobyla@40`
 * is COBYLA stopped at 40 evaluations (its first 40 of the 300-evaluation run: NLopt's points do
 * not depend on the budget).
 *
 *   npm run bench:search [-- --worlds boolean_expressions,tiny-0 --seeds 1,2,3 --select 5 --examples 20 --json]
 *   npm run bench:search -- --rows a.jsonl,b.jsonl   (the table of earlier --json runs, nothing run)
 *   --json: one line per (world, optimiser, seed):
 *   {"world","optimizer","default","seed","evals_to_cobyla40","objective_at":{"40","100","300"},"accuracy"}
 */
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adapt, DEFAULT_SETTINGS } from '../src/adapt/adapt.ts';
import { BatchedEvaluator } from '../src/adapt/evaluator.ts';
import { buildFewShotBatch, FewShotObjective, type FewShotBatch, type ObjectiveOptions } from '../src/adapt/objective.ts';
import { OPTIMIZER_NAMES, resolveOptimizer, type OptimizerName } from '../src/adapt/optimizer.ts';
import { scoreModulesAlone, selectLowest } from '../src/adapt/select.ts';
import type { LqSettings } from '../src/adapt/surrogate.ts';
import { planCompose, selectModules } from '../src/adapt/run.ts';
import { openEngine } from '../src/engine/index.ts';
import type { EngineModel } from '../src/engine/types.ts';
import { evaluateExactMatch } from '../src/eval/evaluate.ts';
import { readAdapter } from '../src/io/peft.ts';
import { loadBaseModel, openLibrary, resolveModules } from '../src/library/index.ts';
import { composeStackModule, stackModules, type ModuleStack } from '../src/lora/compose.ts';
import { getTask, loadExamplesFile, taskExamples } from '../src/tasks/index.ts';
import { ByteTokenizer } from '../src/tokenizers/bytes.ts';
import { loadTokenizer } from '../src/tokenizers/index.ts';
import { FIXTURE, median, REPO } from './lib/bench.ts';
import { writeWorld } from './lib/world.ts';

const o = new Command()
  .option('--worlds <list>', 'tasks of the shipped library, tiny-W random worlds, fixture', 'boolean_expressions,web_of_lies,navigate,tiny-0,tiny-1')
  .option('--seeds <list>', 'seeds (compose --seed for tasks; the optimiser seed elsewhere)', '1,2,3,4,5')
  .option('--optimizers <list>', 'optimisers besides COBYLA (always run: it is the reference)', OPTIMIZER_NAMES.filter((n) => n !== 'cobyla' && n !== 'auto').join(','))
  .option('--budget <n>', 'evaluations per run, the w = 0 one included', '300')
  .option('--num-modules <n>', 'modules sampled for the task worlds (compose --num-modules)', '20')
  .option('--select <k>', 'task worlds: the K best modules of the library instead of --num-modules at random (compose --select; 0: none)', '0')
  .option('--examples <n>', 'few-shot examples of the task worlds (compose --examples)', '5')
  .option('--variant <json>', 'an extra configuration to measure (repeatable): {"label","optimizer","popsize","sigma0","mirrored","lq"}', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--no-accuracy', 'skip the held-out accuracy (the slow part)')
  .option('--engine <name>', 'forward engine: ort | tfjs (default: ort when it loads, else tfjs)')
  .option('--json', 'one JSON line per (world, optimiser, seed)')
  .option('--rows <files>', 'no runs: the table of earlier --json output (comma-separated files, rows in file order)')
  .parse()
  .opts<{ worlds: string; seeds: string; optimizers: string; budget: string; numModules: string; select: string; examples: string; variant: string[]; accuracy: boolean; engine?: string; json?: boolean; rows?: string }>();

/** A configuration under test: an optimiser with the default settings, or a labelled variant. */
interface Config {
  label: string;
  optimizer: OptimizerName;
  popsize?: number;
  sigma0?: number;
  mirrored?: boolean;
  lq?: Partial<LqSettings>;
}

/** One problem: an objective and, for tasks, how to score a result on the test split. */
interface Problem {
  world: string;
  seed: number;
  dim: number;
  objective: FewShotObjective;
  accuracy: ((weights: number[]) => Promise<number>) | null;
}

interface Row {
  world: string;
  optimizer: string;
  default: boolean;
  seed: number;
  evals_to_cobyla40: number | null;
  objective_at: Record<'40' | '100' | '300', number | null>;
  accuracy: number | null;
}

const budget = Number(o.budget);
const seeds = o.seeds.split(',').map(Number);
const configs: Config[] = [
  ...o.optimizers.split(',').map((name) => ({ label: name, optimizer: name as OptimizerName })),
  ...o.variant.map((v) => JSON.parse(v) as Config),
];
for (const c of configs) {
  if (!OPTIMIZER_NAMES.includes(c.optimizer)) throw new Error(`unknown optimizer ${c.optimizer} (known: ${OPTIMIZER_NAMES.join(', ')})`);
}
const REFERENCE_OBJECTIVE: ObjectiveOptions = { alpha: 0.05, normalization: 'reference', batchSize: 5 };
const engine = await openEngine({ engine: o.engine });

/** The same few-shot set, model and module sample as `lorahub compose --task <task> --seed <seed>`. */
async function* taskProblems(task: string, model: EngineModel): AsyncGenerator<Problem> {
  const tok = loadTokenizer(model.dir);
  const test = taskExamples(getTask(task), 'test');
  const select = Number(o.select) > 0 ? Number(o.select) : undefined;
  for (const seed of seeds) {
    const planned = await planCompose({
      task,
      library: join(REPO, 'modules'),
      numModules: Number(o.numModules),
      numModulesExplicit: select === undefined,
      select,
      harmonize: 'none',
      examples: Number(o.examples),
      settings: { ...DEFAULT_SETTINGS, seed },
      normalization: 'mean-token',
      alpha: 0.05,
      workers: 1,
      out: '',
    });
    const lib = planned.lib;
    const batch = buildFewShotBatch(tok, planned.spec.examples);
    const spec = select === undefined ? planned.spec : await selectModules(model, planned.spec, lib, batch);
    // As run.ts's loadStack: the modules resolved against the base, then stacked once.
    const stack: ModuleStack = stackModules(await resolveModules(spec.moduleItems, { library: lib, base: await loadBaseModel(spec.modelDir) }), spec.harmonize);
    const objective = new FewShotObjective(model, stack, batch, spec.objective);
    const accuracy = async (w: number[]) => (await evaluateExactMatch(model, tok, test, composeStackModule(stack, w, 'bench'))).accuracy;
    yield { world: task, seed, dim: stack.names.length, objective, accuracy };
  }
}

async function* fixedProblems(world: string, model: EngineModel, modules: ModuleStack, batch: FewShotBatch): AsyncGenerator<Problem> {
  const objective = new FewShotObjective(model, modules, batch, REFERENCE_OBJECTIVE);
  for (const seed of seeds) yield { world, seed, dim: modules.names.length, objective, accuracy: null };
}

async function openWorld(world: string): Promise<{ model: EngineModel; problems: AsyncGenerator<Problem> }> {
  if (world === 'fixture') {
    const fx = JSON.parse(readFileSync(join(FIXTURE, 'adapter_cases.json'), 'utf8')).objective.examples;
    const model = await engine.load(join(FIXTURE, 'model'));
    const modules = stackModules(await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(join(FIXTURE, 'adapters', a)))));
    return { model, problems: fixedProblems(world, model, modules, { inputIds: fx.input_ids, attentionMask: fx.attention_mask, labels: fx.labels }) };
  }
  const tiny = /^tiny-(\d+)$/.exec(world);
  if (tiny) {
    const dir = join(REPO, '.bench', `world-tiny-${tiny[1]}`);
    if (!existsSync(join(dir, 'world.json'))) await writeWorld({ size: 'tiny', modules: 20, rank: 16, seed: Number(tiny[1]), out: dir });
    const all = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    const load = (names: string[]) => Promise.all(names.map((n) => readAdapter(join(dir, 'modules', n))));
    const model = await engine.load(join(dir, 'base'));
    const batch = buildFewShotBatch(new ByteTokenizer(), loadExamplesFile(join(dir, 'task.json')));
    const k = Number(o.select);
    const names = k > 0 ? selectLowest(await scoreModulesAlone(model, all, load, batch, REFERENCE_OBJECTIVE, 'none'), k).chosen.map((i) => all[i]) : all;
    return { model, problems: fixedProblems(world, model, stackModules(await load(names)), batch) };
  }
  getTask(world); // an unknown name fails here, with the registry's message
  const baseDir = (await openLibrary(join(REPO, 'modules'))).defaultBaseDir();
  if (!baseDir) throw new Error('the shipped library has no default base model');
  const model = await engine.load(baseDir);
  return { model, problems: taskProblems(world, model) };
}

/** Best objective after each evaluation, in the order the search handed the candidates out. */
async function run(p: Problem, c: Config, runBudget: number): Promise<{ curve: number[]; weights: (k: number) => number[] }> {
  const r = await adapt(p.dim, new BatchedEvaluator(p.objective), {
    optimizer: c.optimizer,
    budget: runBudget,
    seed: p.seed,
    bound: DEFAULT_SETTINGS.bound,
    sigma0: c.sigma0,
    popsize: c.popsize,
    mirrored: c.mirrored,
    lq: c.lq,
  });
  const points = r.trace.flatMap((g) => g.candidates.map((x, i) => ({ x, f: g.values[i] })));
  const curve: number[] = [];
  for (const pt of points) curve.push(Math.min(curve.at(-1) ?? Infinity, pt.f));
  const weights = (k: number) => {
    let best = points[0];
    for (const pt of points.slice(0, k)) if (pt.f < best.f) best = pt;
    return best.x;
  };
  return { curve, weights };
}

/** Best after k evaluations; a run that stopped earlier on its own keeps its last best. */
const at = (curve: number[], k: number): number | null => (k <= budget ? (curve[Math.min(k, curve.length) - 1] ?? null) : null);
const reach = (curve: number[], target: number): number | null => {
  const i = curve.findIndex((v) => v <= target);
  return i < 0 ? null : i + 1;
};

const rows: Row[] = [];
const emit = (r: Row) => {
  rows.push(r);
  if (o.json) console.log(JSON.stringify(r));
};
/** The search compose runs by default on a problem of this size (`auto` resolved). */
const defaultSearch = (dim: number) => resolveOptimizer(DEFAULT_SETTINGS.optimizer, dim);

if (o.rows) {
  // Several runs' rows in one table (e.g. a new search's runs beside the others' earlier ones).
  for (const file of o.rows.split(',')) {
    for (const line of readFileSync(file, 'utf8').split('\n')) if (line.trim()) rows.push(JSON.parse(line) as Row);
  }
}
for (const world of o.rows ? [] : o.worlds.split(',')) {
  const { model, problems } = await openWorld(world);
  try {
    for await (const p of problems) {
      const acc = async (w: number[]) => (o.accuracy && p.accuracy ? p.accuracy(w) : null);
      const cob = await run(p, { label: 'cobyla', optimizer: 'cobyla' }, budget);
      const target = cob.curve[39];
      const objAt = (curve: number[]) => ({ '40': at(curve, 40), '100': at(curve, 100), '300': at(curve, 300) });
      emit({ world, optimizer: 'cobyla@40', default: false, seed: p.seed, evals_to_cobyla40: reach(cob.curve, target), objective_at: { '40': target, '100': null, '300': null }, accuracy: await acc(cob.weights(40)) });
      emit({ world, optimizer: 'cobyla', default: defaultSearch(p.dim) === 'cobyla', seed: p.seed, evals_to_cobyla40: reach(cob.curve, target), objective_at: objAt(cob.curve), accuracy: await acc(cob.weights(budget)) });
      for (const c of configs) {
        const r = await run(p, c, budget);
        const isDefault = c.label === defaultSearch(p.dim) && c.popsize === undefined && c.sigma0 === undefined && c.mirrored === undefined && c.lq === undefined;
        emit({ world, optimizer: c.label, default: isDefault, seed: p.seed, evals_to_cobyla40: reach(r.curve, target), objective_at: objAt(r.curve), accuracy: await acc(r.weights(budget)) });
      }
    }
  } finally {
    await model.dispose();
  }
}

if (!o.json) {
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const key = (r: Row) => `${r.world}/${r.seed}`;
  const cobyla300 = new Map(rows.filter((r) => r.optimizer === 'cobyla').map((r) => [key(r), r.objective_at['300'] ?? Infinity]));
  const cobyla40Acc = new Map(rows.filter((r) => r.optimizer === 'cobyla@40').map((r) => [key(r), r.accuracy ?? Number.NaN]));
  const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}`;
  console.log(`| world | search | median evals to COBYLA@40 (per seed) | mean objective @40 / @100 / @${budget} | ≤ COBYLA@${budget} at ${budget} | accuracy % (Δ vs COBYLA@40) |`);
  console.log('|---|---|---|---|---|---|');
  for (const world of [...new Set(rows.map((r) => r.world)), 'all']) {
    // 'auto': the default search's rows, whichever search it resolved to on each problem.
    for (const label of [...new Set(rows.map((r) => r.optimizer)), ...(world === 'all' ? ['auto'] : [])]) {
      const rs = rows.filter((r) => (label === 'auto' ? r.default : r.optimizer === label) && (world === 'all' || r.world === world));
      if (rs.length === 0 || (world === 'all' && label === 'cobyla@40')) continue;
      const evals = rs.map((r) => r.evals_to_cobyla40 ?? Infinity);
      const m = median(evals);
      const per = world === 'all' ? '' : ` (${evals.map((v) => (Number.isFinite(v) ? v : '—')).join(', ')})`;
      const objs = (['40', '100', '300'] as const).map((k) => (rs[0].objective_at[k] === null ? '—' : mean(rs.map((r) => r.objective_at[k] ?? Number.NaN)).toPrecision(4))).join(' / ');
      const wins = rs.filter((r) => (r.objective_at['300'] ?? Infinity) <= (cobyla300.get(key(r)) ?? Infinity)).length;
      const acc = rs.filter((r) => r.accuracy !== null);
      const delta = mean(acc.map((r) => (r.accuracy as number) - (cobyla40Acc.get(key(r)) ?? Number.NaN)));
      const accuracy = acc.length === 0 ? '—' : `${(100 * mean(acc.map((r) => r.accuracy as number))).toFixed(1)}${label === 'cobyla@40' ? '' : ` (${signed(100 * delta)})`}`;
      const name = label === 'auto' ? '**auto** (default)' : world !== 'all' && rs[0].default ? `**${label}** (default)` : label;
      console.log(`| ${world} | ${name} | ${Number.isFinite(m) ? m : '—'}${per} | ${objs} | ${label === 'cobyla' || label === 'cobyla@40' ? '—' : `${wins}/${rs.length}`} | ${accuracy} |`);
    }
  }
}
