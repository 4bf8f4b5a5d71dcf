/**
 * Which few-shot settings generalise (issue 19): LoRAHub on a target task with every combination
 * of the L1 strength (--alphas), the box bound (--bounds), the number of examples (--examples), how they are drawn
 * (--draws), K-fold (--folds), the search (--optimizers) and which modules each run composes
 * (--select K: the K with the lowest few-shot loss alone, of the whole library; 0: --num-modules sampled at random),
 * over --seeds seeds each, scored on the real BBH test file (evaluation only) — the held-out
 * accuracy, not only the few-shot objective the search minimised. Fresh seeds (--first-seed)
 * check a setting chosen on others.
 *
 *   npx tsx scripts/bench-fewshot.ts [--library modules] [--task boolean_expressions] [--bbh ../shared/bbh]
 *     [--seeds 5] [--first-seed 1] [--alphas 0,0.05,0.2] [--bounds 0.5,1.5] [--examples 5,10,20] [--draws random,balanced] [--folds 0,5] [--optimizers cobyla,cmaes] [--select 0,3,5] [--num-modules 10,20] [--limit N] [--json]
 *
 * --folds K (K ≥ 2): K-fold instead of one search on all examples. The few-shot set is cut into K
 * folds; K searches each see K−1 of them; the result is the mean of their K weight vectors, and
 * the objective reported is the cross-validated one (each search's weights on its held-out fold).
 * No part of the objective is fitted per example, so leave-one-out *scoring* of one w is just its
 * mean loss; holding examples out only changes anything when the search itself does not see them.
 *
 * Everything else is compose's default (budget, normalisation). One line per (task, setting,
 * seed) with --json:
 * {"task","alpha","bound","examples","draw","folds","optimizer","select","modules","seed","objective","accuracy","labels"} (select: K, or 0
 * for a random draw of `modules`; modules: how many were composed; labels: the few-shot
 * answers, e.g. {"True":1,"False":4}); the table gives each setting's mean, spread and worst seed.
 */
import { Command } from 'commander';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS } from '../src/adapt/adapt.ts';
import { buildFewShotBatch, DEFAULT_OBJECTIVE, FewShotObjective } from '../src/adapt/objective.ts';
import { OPTIMIZER_NAMES, type OptimizerName } from '../src/adapt/optimizer.ts';
import { DEFAULT_DRAW, DEFAULT_EXAMPLES, DEFAULT_NUM_MODULES, DEFAULT_SELECT, planCompose, runCompose, type ComposeRequest } from '../src/adapt/run.ts';
import { openEngine } from '../src/engine/index.ts';
import { evaluateExactMatch } from '../src/eval/evaluate.ts';
import { loadBaseModel, resolveModules } from '../src/library/index.ts';
import { compose } from '../src/lora/compose.ts';
import { loadDataFile, type Example } from '../src/tasks/index.ts';
import { loadTokenizer } from '../src/tokenizers/index.ts';
import { choiceArg, intArg, listArg, numberArg } from '../src/cli/shared/common.ts';
import { FEW_SHOT_DRAWS, type FewShotDraw } from '../src/tasks/index.ts';

const o = new Command()
  .option('--library <dir>', 'module library with its default base', 'modules')
  .option('--task <list>', 'target tasks', listArg('--task'), ['boolean_expressions'])
  .option('--bbh <dir>', 'real BBH test files', '../shared/bbh')
  .option('--seeds <n>', 'seeds per setting', intArg('--seeds', 'positive'), 5)
  .option('--first-seed <s>', 'seeds run from this one (fresh seeds check a setting chosen on others)', intArg('--first-seed', 'any'), 1)
  .option('--alphas <list>', 'L1 strengths', listArg('--alphas', numberArg('--alphas', 'non-negative')), [DEFAULT_OBJECTIVE.alpha])
  .option('--bounds <list>', 'box bounds b: every weight in [-b, b]', listArg('--bounds', numberArg('--bounds', 'positive')), [DEFAULT_SETTINGS.bound])
  .option('--examples <list>', 'numbers of few-shot examples', listArg('--examples', intArg('--examples', 'positive')), [DEFAULT_EXAMPLES])
  .option('--draws <list>', `how examples are drawn: ${FEW_SHOT_DRAWS.join(', ')}`, listArg('--draws', choiceArg('--draws', FEW_SHOT_DRAWS)), [DEFAULT_DRAW])
  .option('--select <list>', 'K: compose the K modules of the library with the lowest few-shot loss alone; 0: sample --num-modules at random', listArg('--select', intArg('--select', 'non-negative')), [DEFAULT_SELECT])
  .option('--num-modules <list>', 'modules sampled per run (with --select 0)', listArg('--num-modules', intArg('--num-modules', 'positive')), [DEFAULT_NUM_MODULES])
  .option('--optimizers <list>', `searches: ${OPTIMIZER_NAMES.join(', ')}`, listArg('--optimizers', choiceArg('--optimizers', OPTIMIZER_NAMES)), [DEFAULT_SETTINGS.optimizer])
  .option('--folds <list>', 'K-fold searches (0: one search on all examples)', listArg('--folds', intArg('--folds', 'non-negative')), [0])
  .option('--limit <n>', 'first N test examples only', intArg('--limit', 'positive'))
  .option('--json', 'one JSON line per run')
  .parse()
  .opts<{ library: string; task: string[]; bbh: string; seeds: number; firstSeed: number; alphas: number[]; bounds: number[]; examples: number[]; draws: FewShotDraw[]; folds: number[]; numModules: number[]; select: number[]; optimizers: OptimizerName[]; limit?: number; json?: boolean }>();
const { alphas, bounds, examples: counts, draws, folds: foldCounts, optimizers, numModules: moduleCounts } = o;
if (foldCounts.some((k) => k === 1)) throw new Error('--folds: 0 (no folds) or at least 2');
// K-fold averages its folds' weights, which needs the same modules in every fold.
if (foldCounts.some((k) => k > 0) && o.select.some((k) => k > 0)) throw new Error('--folds needs --select 0 (each fold would select its own modules)');
/** Which modules a run composes: the K best (select K), or N sampled at random (select 0). */
const moduleChoices = o.select.flatMap((k) => (k > 0 ? [{ select: k, modules: k }] : moduleCounts.map((n) => ({ select: 0, modules: n }))));

interface Row {
  task: string;
  alpha: number;
  bound: number;
  examples: number;
  draw: FewShotDraw;
  folds: number;
  optimizer: OptimizerName;
  select: number;
  modules: number;
  seed: number;
  objective: number;
  accuracy: number;
  labels: Record<string, number>;
}
const rows: Row[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'lorahub-fewshot-'));
const t0 = performance.now();

/**
 * K searches, each on K−1 folds of the few-shot set (the same modules as a plain run of the seed);
 * the result is the mean of their weights, scored on `test`. The objective reported is the
 * cross-validated one: each search's weights scored on the fold it did not see.
 */
async function kFold(req: ComposeRequest, k: number, test: string): Promise<{ objective: number; accuracy: number; examples: Example[] }> {
  const { spec, lib } = await planCompose(req);
  const shots = spec.examples;
  if (shots.length < k) throw new Error(`--folds ${k}: only ${shots.length} examples`);
  const inFold = (i: number) => (_: Example, j: number) => j % k === i;
  const weights: number[][] = [];
  for (let i = 0; i < k; i++) {
    const train = join(req.out, `train-${i}.jsonl`);
    mkdirSync(req.out, { recursive: true });
    writeFileSync(train, shots.filter((e, j) => !inFold(i)(e, j)).map((e) => JSON.stringify(e)).join('\n'));
    const r = await runCompose({ ...req, task: undefined, data: train, examples: shots.length - shots.filter(inFold(i)).length, draw: undefined, modules: spec.moduleItems, noEval: true, out: join(req.out, `fold-${i}`) });
    weights.push(r.weights);
  }
  const mean = weights[0].map((_, m) => weights.reduce((s, w) => s + w[m], 0) / k);
  const model = await (await openEngine(req.engine)).load(spec.modelDir);
  try {
    const tok = loadTokenizer(spec.modelDir);
    const modules = await resolveModules(spec.moduleItems, { library: lib, base: await loadBaseModel(spec.modelDir) });
    let cv = 0;
    for (let i = 0; i < k; i++) {
      const held = new FewShotObjective(model, modules, buildFewShotBatch(tok, shots.filter(inFold(i)), model.config), spec.objective);
      cv += (await held.score(weights[i])).objective / k;
    }
    const examples = loadDataFile(test).slice(0, req.testLimit);
    const accuracy = (await evaluateExactMatch(model, tok, examples, compose(modules, mean))).accuracy;
    return { objective: cv, accuracy, examples: shots };
  } finally {
    await model.dispose();
  }
}
try {
  // Every combination of the settings, each over the seeds.
  const grid = o.task.flatMap((task) =>
    alphas.flatMap((alpha) =>
      bounds.flatMap((bound) =>
        counts.flatMap((examples) => draws.flatMap((draw) => foldCounts.flatMap((folds) => optimizers.flatMap((optimizer) => moduleChoices.map((m) => ({ task, alpha, bound, examples, draw, folds, optimizer, ...m })))))),
      ),
    ),
  );
  for (const setting of grid) {
    const { task, alpha, bound, examples, draw, folds, optimizer, select, modules } = setting;
    const test = join(o.bbh, `${task}.json`);
    if (!existsSync(test)) throw new Error(`no ${test}`);
    for (let seed = o.firstSeed; seed < o.firstSeed + o.seeds; seed++) {
      const req: ComposeRequest = {
        task,
        testData: test,
        library: o.library,
        numModules: modules,
        select: select > 0 ? select : undefined,
        harmonize: 'none',
        examples,
        draw,
        settings: { ...DEFAULT_SETTINGS, optimizer, seed, bound },
        normalization: DEFAULT_OBJECTIVE.normalization,
        alpha,
        workers: 'auto',
        out: join(tmp, `${task}-${alpha}-${bound}-${examples}-${draw}-${folds}-${optimizer}-${select}-${modules}-${seed}`),
        testLimit: o.limit,
      };
      const r = folds === 0 ? await runCompose(req) : await kFold(req, folds, test);
      const labels: Record<string, number> = {};
      for (const e of r.examples) labels[e.target ?? ''] = (labels[e.target ?? ''] ?? 0) + 1;
      const row: Row = { ...setting, seed, objective: r.objective, accuracy: r.accuracy ?? Number.NaN, labels };
      rows.push(row);
      if (o.json) console.log(JSON.stringify(row));
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (!o.json) {
  const pct = (x: number) => (100 * x).toFixed(1);
  console.log(`| task | alpha | bound | examples | draw | folds | search | modules | BBH accuracy, mean of ${o.seeds} seeds | sd | worst seed | best seed | few-shot objective (mean; CV with folds) |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const key = (r: Row) => `${r.task}|${r.alpha}|${r.bound}|${r.examples}|${r.draw}|${r.folds}|${r.optimizer}|${r.select > 0 ? `best ${r.select}` : `${r.modules} random`}`;
  for (const k of [...new Set(rows.map(key))]) {
    const g = rows.filter((r) => key(r) === k);
    const acc = g.map((r) => r.accuracy);
    const mean = acc.reduce((s, x) => s + x, 0) / acc.length;
    const sd = Math.sqrt(acc.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, acc.length - 1));
    const obj = g.reduce((s, r) => s + r.objective, 0) / g.length;
    const [task, alpha, bound, examples, draw, folds, optimizer, modules] = k.split('|');
    console.log(`| ${task} | ${alpha} | ${bound} | ${examples} | ${draw} | ${folds === '0' ? '—' : folds} | ${optimizer} | ${modules} | ${pct(mean)} | ${pct(sd)} | ${pct(Math.min(...acc))} | ${pct(Math.max(...acc))} | ${obj.toFixed(4)} |`);
  }
  console.log(`\n${rows.length} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
