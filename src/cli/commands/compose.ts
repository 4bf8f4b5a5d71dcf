import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { DEFAULT_POPSIZE, DEFAULT_SETTINGS } from '../../adapt/adapt.ts';
import { OPTIMIZER_NAMES, SEARCH_DEFAULTS, type OptimizerName } from '../../adapt/optimizer.ts';
import { DEFAULT_DRAW, DEFAULT_EXAMPLES, DEFAULT_NUM_MODULES, DEFAULT_SELECT, runCompose, type ComposeRequest, type TestResult } from '../../adapt/run.ts';
import { DEFAULT_OBJECTIVE, LOSS_NORMALIZATIONS, type LossNormalization } from '../../adapt/objective.ts';
import { LorahubError } from '../../errors.ts';
import { DEFAULT_BBH_DIR, FEW_SHOT_DRAWS, type FewShotDraw } from '../../tasks/index.ts';
import { choiceArg, intArg, listArg, numberArg, out, parseHarmonize, withHarmonizeHint } from '../shared/common.ts';
import { describeEngine, engineOptions, globalOptions } from '../shared/options.ts';

interface Opts {
  task?: string;
  data?: string;
  test?: string;
  model?: string;
  library?: string;
  modules?: string[];
  numModules: number;
  select: number | false;
  examples: number;
  draw: FewShotDraw;
  budget: number;
  timeLimit?: number;
  seed: number;
  optimizer: OptimizerName;
  sigma0?: number;
  popsize?: number;
  workers: string;
  lossNormalization: LossNormalization;
  batchSize?: number;
  alpha: number;
  bound: number;
  harmonize?: string;
  out?: string;
  resume?: string;
  noEval?: boolean;
  bbh?: string | false;
  bestSingle?: boolean;
  json?: boolean;
}

/**
 * What `--resume` takes from the command line: how to run (workers, output format; the global
 * --engine/--device/--threads/--backend belong to the root command), never what the run computes.
 * That is in its run.json, and a flag that tried to change it would be silently ignored.
 */
const RESUME_FLAGS = new Set(['resume', 'workers', 'json']);

function refuseOnResume(cmd: Command): void {
  for (const o of cmd.options) {
    const key = o.attributeName();
    // --select K and --no-select share one value: name the spelling that was typed (false: --no-…).
    if (o.negate !== (cmd.getOptionValue(key) === false)) continue;
    if (!RESUME_FLAGS.has(key) && cmd.getOptionValueSource(key) === 'cli') {
      throw new LorahubError(
        'BAD_ARGUMENT',
        `${o.long} does not apply to --resume: a resumed run continues with the settings in its run.json (only --workers, --json and the global engine flags apply)`,
      );
    }
  }
}

/**
 * `--workers`: more workers than cores buy no speed, and each one loads its own copy of the model
 * (64 workers of the default were 6.6 GB on two cores), so N is capped at the cores, with a warning.
 */
function workerCount(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  const n = intArg('--workers', 'positive')(v);
  const cores = availableParallelism();
  if (n <= cores) return n;
  process.stderr.write(
    `lorahub: warning: --workers ${n} capped at ${cores}, the number of cores: each worker holds its own copy of the model in memory, and workers beyond the cores add memory, not speed\n`,
  );
  return cores;
}

/**
 * The real BBH file to evaluate on as well: `--bbh DIR`'s <task>.json (which must exist), else the
 * one in ../shared/bbh beside the repository when it is there; none with --no-bbh, without --task,
 * or when --test already names that file.
 */
function bbhTestFile(opts: Opts): string | undefined {
  if (!opts.task || opts.bbh === false) return undefined;
  const file = join(opts.bbh ?? DEFAULT_BBH_DIR, `${opts.task}.json`);
  if (!existsSync(file)) {
    if (opts.bbh !== undefined) throw new LorahubError('NOT_FOUND', `--bbh: no ${opts.task}.json in ${opts.bbh}`);
    return undefined;
  }
  return opts.test !== undefined && resolve(opts.test) === resolve(file) ? undefined : file;
}

/** One line per test set: zero-shot → composed, and the best module alone. */
function testLine(t: TestResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const source = t.source.startsWith('task ') ? t.source : relative(process.cwd(), t.source) || t.source;
  const single = t.best_single ? `; best single module ${pct(t.best_single.accuracy)} (${t.best_single.module})` : '';
  return `exact match on ${t.examples} test examples (${source}): zero-shot ${pct(t.zero_shot)} → composed ${pct(t.composed)}${single}`;
}

/** A fresh run folder per invocation, so repeating a command never collides with an old run. */
function defaultRunDir(name: string, seed: number): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `runs/${name}-seed${seed}-${stamp}`;
}

export function register(program: Command): void {
  program
    .command('compose')
    .description('LoRAHub: search composition weights for a task from a few examples, save the composed adapter and a report')
    .option('--task <name>', 'a task from tasks/ (few-shot examples from its train split, accuracy on its test split)')
    .option('--data <file>', 'few-shot examples instead: BBH json {"examples":[{"input","target"}]} or jsonl')
    .option('--test <file>', 'test examples for accuracy (default: the task\'s test split)')
    .option('--model <dir>', 'base model (default: the library base model)')
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--modules <a,b,c>', 'library names or adapter folders (default: the --select best of the library)', listArg('--modules'))
    .option('--select <k>', `compose the K modules whose few-shot objective alone is lowest, of --modules or of every library module compatible with the base (default ${DEFAULT_SELECT} when neither --modules nor --num-modules is given)`, intArg('--select', 'positive'), DEFAULT_SELECT)
    .option('--no-select', 'no selection: --modules as given, or --num-modules sampled at random (the paper\'s draw)')
    .option('--num-modules <n>', `the paper's draw instead of --select: N modules sampled with --seed from library modules compatible with the base (with --no-select: default ${DEFAULT_NUM_MODULES})`, intArg('--num-modules', 'positive'), DEFAULT_NUM_MODULES)
    .option('--examples <k>', 'few-shot examples', intArg('--examples', 'positive'), DEFAULT_EXAMPLES)
    .option('--draw <how>', `how the few-shot examples are drawn: ${FEW_SHOT_DRAWS.join(' | ')} (answers take turns)`, choiceArg('--draw', FEW_SHOT_DRAWS), DEFAULT_DRAW)
    .option('--budget <n>', "objective evaluations, the base model's included", intArg('--budget', 'positive'), DEFAULT_SETTINGS.budget)
    .option('--time-limit <seconds>', 'stop searching after this many seconds', numberArg('--time-limit', 'positive'))
    .option('--seed <n>', 'seed (module sample, few-shot sample, optimiser)', intArg('--seed', 'any'), 42)
    .option(
      '--optimizer <name>',
      `${OPTIMIZER_NAMES.join(' | ')} (auto: cobyla-lq, i.e. COBYLA for ${SEARCH_DEFAULTS.cobylaEvaluations} evaluations then lq-CMA-ES, with at most ${SEARCH_DEFAULTS.lqMaxModules} modules; cobyla above)`,
      choiceArg('--optimizer', OPTIMIZER_NAMES),
      DEFAULT_SETTINGS.optimizer,
    )
    .option('--sigma0 <x>', 'initial CMA-ES step size: cmaes and lq-cmaes (default 1/sqrt(number of modules)); cobyla-lq\'s lq-CMA-ES after the switch (default 2/sqrt(number of modules))', numberArg('--sigma0', 'positive'))
    .option('--popsize <n>', `population size, cmaes, lq-cmaes, cobyla-lq and random (default ${DEFAULT_POPSIZE})`, intArg('--popsize', 'positive'))
    .option('--workers <n|auto>', 'worker threads scoring population slices, each with its own model (1: one batched pass in this thread; auto: 1 on ort, which threads inside a pass, 2 on two cores with tfjs)', 'auto')
    .option('--loss-normalization <how>', 'mean-token (mean token cross-entropy) | reference (lorahub: sum of batch means / examples)', choiceArg('--loss-normalization', LOSS_NORMALIZATIONS), DEFAULT_OBJECTIVE.normalization)
    .option('--batch-size <n>', 'examples per batch for --loss-normalization reference (default: all)', intArg('--batch-size', 'positive'))
    .option('--alpha <x>', 'L1 regularisation weight (objective += alpha·mean|w|)', numberArg('--alpha', 'non-negative'), DEFAULT_OBJECTIVE.alpha)
    .option('--bound <b>', `every weight stays in [-b, b] (the reference's ${DEFAULT_SETTINGS.bound}); below 1 a module alone at weight 1 is outside the box and is never the result`, numberArg('--bound', 'positive'), DEFAULT_SETTINGS.bound)
    .option('--harmonize <how>', 'modules of different ranks: truncate | pad')
    .option('--out <dir>', 'run folder (default runs/<task>-seed<seed>-<YYYYMMDD-HHMMSS>)')
    .option('--resume <dir>', 'continue an interrupted run from its last finished generation')
    .option('--no-eval', 'skip the accuracy evaluation on the test split')
    .option('--bbh <dir>', 'with --task: also evaluate on DIR/<task>.json, the real BIG-Bench Hard file (default: ../shared/bbh beside the repository, when it has one)')
    .option('--no-bbh', 'do not evaluate on the real BBH file')
    .option('--no-best-single', 'skip evaluating each module alone (the best is reported beside the composed module, as in the paper)')
    .option('--json', 'print a final JSON line {"weights","objective","evaluations","seconds","modules","zero_shot_accuracy","accuracy","tests","engine","device",…}')
    .action(async (opts: Opts & { eval?: boolean }, cmd: Command) => {
      const g = globalOptions(cmd);
      if (opts.resume !== undefined) refuseOnResume(cmd);
      // COBYLA proposes one candidate at a time from its own trust region: no population, no step
      // size. cobyla-lq's (and auto's) apply to its lq-CMA-ES part.
      for (const [key, flag, which] of [['popsize', '--popsize', 'cmaes, lq-cmaes, cobyla-lq and random'], ['sigma0', '--sigma0', 'cmaes, lq-cmaes and cobyla-lq']] as const) {
        const applies = key === 'popsize' ? opts.optimizer !== 'cobyla' : opts.optimizer !== 'cobyla' && opts.optimizer !== 'random';
        if (!applies && cmd.getOptionValueSource(key) === 'cli') {
          throw new LorahubError('BAD_ARGUMENT', `${flag} does not apply to --optimizer ${opts.optimizer}: it sets the search of ${which}`);
        }
      }
      const numModulesGiven = cmd.getOptionValueSource('numModules') === 'cli';
      if (opts.modules !== undefined && numModulesGiven) {
        throw new LorahubError('BAD_ARGUMENT', '--num-modules does not apply with --modules: it is how many modules to sample when --modules is not given');
      }
      const selectGiven = cmd.getOptionValueSource('select') === 'cli' && opts.select !== false;
      if (selectGiven && numModulesGiven) {
        throw new LorahubError('BAD_ARGUMENT', '--select and --num-modules are two ways to choose the modules: --select K keeps the K best of the library, --num-modules N samples N at random');
      }
      // Selection by default only when nothing else says which modules: --modules are taken as
      // given and --num-modules is the paper's random draw, unless --select is asked for too.
      const select = opts.select === false || (!selectGiven && (opts.modules !== undefined || numModulesGiven)) ? undefined : opts.select;
      const seed = opts.seed;
      const request: ComposeRequest = {
        task: opts.task,
        data: opts.data,
        testData: opts.test,
        model: opts.model,
        library: opts.library,
        modules: opts.modules,
        numModules: opts.numModules,
        numModulesExplicit: numModulesGiven,
        select,
        harmonize: parseHarmonize(opts.harmonize),
        examples: opts.examples,
        examplesExplicit: cmd.getOptionValueSource('examples') === 'cli',
        draw: opts.draw,
        settings: {
          optimizer: opts.optimizer,
          budget: opts.budget,
          timeLimitSec: opts.timeLimit,
          seed,
          sigma0: opts.sigma0,
          bound: opts.bound,
          popsize: opts.popsize,
        },
        normalization: opts.lossNormalization,
        batchSize: opts.batchSize,
        alpha: opts.alpha,
        workers: workerCount(opts.workers),
        out: opts.out ?? defaultRunDir(opts.task ?? 'data', seed),
        engine: engineOptions(cmd),
        noEval: opts.eval === false,
        alsoTest: opts.resume === undefined && opts.eval !== false ? [bbhTestFile(opts)].filter((f): f is string => f !== undefined) : [],
        bestSingle: opts.bestSingle !== false,
      };
      let stop = false;
      const onSigint = () => {
        if (stop) process.exit(130);
        stop = true;
        process.stderr.write('\nlorahub: stopping after this generation (Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSigint);
      const bar = new cliProgress.SingleBar(
        {
          format: 'compose |{bar}| gen {gen} | {value}/{total} evals | best {best} | {rate} evals/s | ETA {eta}s',
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 5000,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      let started = false;
      try {
        const report = await runCompose(
          request,
          {
            onPhase: (phase, detail) => {
              if (phase === 'evaluate' || phase === 'save') {
                if (started) bar.stop();
                started = false;
                if (phase === 'evaluate' && detail) process.stderr.write(`evaluating exact match on ${detail}…\n`);
              }
              if (phase === 'select' && detail) process.stderr.write(`selecting ${detail}…\n`);
            },
            onStart: (s) => {
              if (g.verbose) process.stderr.write(`${describeEngine(s.engine)}\nlorahub: ${s.workers} worker(s), ${s.dim} modules\n`);
              bar.start(s.budget, 0, { gen: 0, best: '-', rate: '-' });
              started = true;
            },
            onGeneration: (rec) => {
              const rate = rec.seconds > 0 ? (rec.evaluations / rec.seconds).toFixed(1) : '-';
              bar.update(rec.evaluations, { gen: rec.generation, best: rec.best.toFixed(5), rate });
            },
            interrupted: () => stop,
          },
          opts.resume,
        ).catch((err: unknown) => {
          throw withHarmonizeHint(err);
        });
        if (opts.json) {
          out(
            JSON.stringify({
              weights: report.weights,
              objective: report.objective,
              evaluations: report.evaluations,
              single_module_result: report.single_module_result,
              seconds: report.seconds,
              modules: report.modules,
              zero_shot_accuracy: report.zero_shot_accuracy,
              accuracy: report.accuracy,
              tests: report.tests,
              selection: report.selection,
              base_objective: report.base_objective,
              engine: report.engine,
              device: report.device,
              backend: report.backend,
              out: report.outputs.report.replace(/report\.json$/, ''),
            }),
          );
          return;
        }
        out(`modules and weights (objective ${report.objective.toFixed(5)}; base model ${report.base_objective.toFixed(5)}):`);
        report.modules.forEach((m, i) => out(`  ${report.weights[i] >= 0 ? ' ' : ''}${report.weights[i].toFixed(4)}  ${m}`));
        if (report.single_module_result) out(`the search ended above ${report.single_module_result} alone (weight 1), so the result is that module`);
        out(`${report.evaluations} evaluations in ${report.seconds.toFixed(2)} s (${report.timings.evaluations_per_s.toFixed(1)} evals/s, ${report.workers} worker(s), engine ${report.engine} on ${report.device}); stopped: ${report.stop_reason}`);
        for (const t of report.tests) out(testLine(t));
        out(`saved ${report.outputs.adapter} (PEFT adapter), ${report.outputs.report}, ${report.outputs.loss_curve}`);
      } finally {
        if (started) bar.stop();
        process.off('SIGINT', onSigint);
      }
    });
}
