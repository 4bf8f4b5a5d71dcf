/**
 * The paper-style table (LoRAHub, Huang et al. 2024, Table 1) on our world, for every target
 * task: zero-shot base, in-context learning with the few-shot examples (when they fit the context),
 * best single library module, LoRAHub average and best over 5 seeds with compose's defaults (the
 * --select best modules of the library, compose's default examples) and with the paper's draw (20
 * modules sampled at random per seed), and a LoRA fine-tuned on seed 1's examples — on our generated test split,
 * or, with --bbh DIR, on the real BIG-Bench Hard test file (evaluation only: never trained on).
 *
 *   npx tsx scripts/table.ts [--library modules] [--bbh ../shared/bbh] [--task NAME] [--seeds 5] [--limit N] [--engine ort|tfjs] [--json]
 *
 * The majority column is the most common answer's share of the test examples scored (what always
 * giving it scores): a method below it has learned the label prior at best.
 * Evaluation and LoRAHub run on the chosen engine; the few-shot LoRA baseline trains on tfjs
 * (autodiff), on its own copy of the base.
 */
import { Command } from 'commander';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_DRAW, DEFAULT_EXAMPLES, DEFAULT_SELECT, runCompose } from '../src/adapt/run.ts';
import { DEFAULT_OBJECTIVE } from '../src/adapt/objective.ts';
import { DEFAULT_SETTINGS } from '../src/adapt/adapt.ts';
import { initBackend } from '../src/backend.ts';
import { openEngine } from '../src/engine/index.ts';
import { evaluateExactMatch } from '../src/eval/evaluate.ts';
import { loadBaseModel, openLibrary } from '../src/library/index.ts';
import { T5Model } from '../src/models/t5/model.ts';
import { fewShot, getTask, listTasks, loadExamplesFile, taskExamples, type TextExample } from '../src/tasks/index.ts';
import { loadTokenizer } from '../src/tokenizers/index.ts';
import { trainLora } from '../src/train/lora.ts';

const o = new Command()
  .option('--library <dir>', 'module library with its default base', 'modules')
  .option('--bbh <dir>', 'evaluate on the real BBH test files in DIR (e.g. ../shared/bbh)')
  .option('--task <name>', 'one target task only')
  .option('--seeds <n>', 'LoRAHub seeds', '5')
  .option('--num-modules <n>', 'modules per LoRAHub run of the paper\'s draw (sampled at random)', '20')
  .option('--limit <n>', 'evaluate on the first N test examples only')
  .option('--icl-max-tokens <n>', 'in-context prompts longer than this are reported as not fitting', '1024')
  .option('--tune-steps <n>', 'steps of the few-shot LoRA baseline', '100')
  .option('--engine <name>', 'forward engine: ort | tfjs (default: ort when it loads, else tfjs)')
  .option('--json', 'one JSON line per task')
  .parse()
  .opts<{ library: string; bbh?: string; task?: string; seeds: string; numModules: string; limit?: string; iclMaxTokens: string; tuneSteps: string; engine?: string; json?: boolean }>();

const engine = await openEngine({ engine: o.engine });
const lib = await openLibrary(o.library);
const modelDir = lib.defaultBaseDir();
if (!modelDir) throw new Error(`${o.library} has no default base model`);
const model = await engine.load(modelDir);
await initBackend();
const trainBase = T5Model.load(modelDir);
const tok = loadTokenizer(modelDir);
const base = await loadBaseModel(modelDir);
const targets = (o.task ? [getTask(o.task)] : listTasks().filter((t) => t.kind === 'target'));
const compatible = lib.listModules().filter((e) => e.base.fingerprint === base.fingerprint).map((e) => e.name);
const seeds = Array.from({ length: Number(o.seeds) }, (_, i) => i + 1);
const tmp = mkdtempSync(join(tmpdir(), 'lorahub-table-'));
const rows: Record<string, unknown>[] = [];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  for (const task of targets) {
    const bbhFile = o.bbh ? join(o.bbh, `${task.name}.json`) : undefined;
    if (bbhFile && !existsSync(bbhFile)) continue;
    let test: TextExample[] = bbhFile ? loadExamplesFile(bbhFile) : taskExamples(task, 'test');
    if (o.limit) test = test.slice(0, Number(o.limit));
    const acc = async (module?: Parameters<typeof evaluateExactMatch>[3]) => (await evaluateExactMatch(model, tok, test, module)).accuracy;
    const zeroShot = await acc();
    // In-context learning with the few-shot examples of LoRAHub's seed 1 (compose's defaults),
    // and with the paper's 5 drawn at random; null when a prompt does not fit.
    const shots = fewShot(task, DEFAULT_EXAMPLES, 1, DEFAULT_DRAW);
    const inContext = async (examples: TextExample[]): Promise<number | null> => {
      const prefix = examples.map((e) => `${e.input} ${e.target}\n\n`).join('');
      const prompts = test.map((e) => ({ input: prefix + e.input, target: e.target }));
      const fits = prompts.every((e) => tok.encode(e.input).length <= Number(o.iclMaxTokens));
      return fits ? (await evaluateExactMatch(model, tok, prompts)).accuracy : null;
    };
    const icl = await inContext(shots);
    const icl5 = await inContext(fewShot(task, 5, 1, 'random'));
    // Every module alone: the best is the oracle column; all of them (--json: single_modules) show
    // which modules carry any of the target's skill, i.e. whether composition has anything to build on.
    const singles: Record<string, number> = {};
    let bestSingle: { name: string; accuracy: number } | null = null;
    for (const name of compatible) {
      const a = (singles[name] = await acc(await lib.loadModule(name)));
      if (!bestSingle || a > bestSingle.accuracy) bestSingle = { name, accuracy: a };
    }
    // compose's default (the --select best of the library), then the paper's random draw.
    const lorahub: number[] = [];
    const lorahubRandom: number[] = [];
    for (const [select, into] of [[DEFAULT_SELECT, lorahub] as const, [undefined, lorahubRandom] as const]) {
      for (const seed of seeds) {
        const r = await runCompose({
          task: task.name,
          testData: bbhFile,
          library: o.library,
          numModules: Math.min(Number(o.numModules), compatible.length),
          select,
          harmonize: 'none',
          examples: DEFAULT_EXAMPLES,
          draw: DEFAULT_DRAW,
          settings: { ...DEFAULT_SETTINGS, seed },
          normalization: DEFAULT_OBJECTIVE.normalization,
          alpha: DEFAULT_OBJECTIVE.alpha,
          workers: 'auto',
          engine: { engine: o.engine },
          out: join(tmp, `${task.name}-${select ?? 'random'}-${seed}`),
          testLimit: o.limit ? Number(o.limit) : undefined,
        });
        into.push(r.accuracy ?? Number.NaN);
      }
    }
    // A LoRA fine-tuned on the same examples (seed 1's), as the paper's LoRA baseline.
    const tuned = await trainLora({
      model: trainBase,
      tokenizer: tok,
      examples: shots,
      spec: { rank: 8, alpha: 16, targets: ['q', 'v'] },
      steps: Number(o.tuneSteps),
      batchSize: shots.length,
      lr: { peak: 1e-3, warmupSteps: 0, decay: 'constant', finalFraction: 1 },
      seed: 1,
      name: `${task.name}-fewshot`,
      baseModelNameOrPath: modelDir,
    });
    const row = {
      task: task.name,
      zero_shot: zeroShot,
      icl,
      icl_5_random: icl5,
      best_single: bestSingle?.accuracy ?? null,
      best_single_module: bestSingle?.name ?? null,
      lorahub_avg: mean(lorahub),
      lorahub_best: Math.max(...lorahub),
      lorahub_random_avg: mean(lorahubRandom),
      lorahub_random_best: Math.max(...lorahubRandom),
      lora_tune: await acc(tuned.module),
      single_modules: singles,
      // The most common answer's share of the examples scored: what always giving it would score.
      majority: Math.max(...[...new Set(test.map((e) => e.target))].map((t) => test.filter((e) => e.target === t).length)) / test.length,
      test: bbhFile ? `BBH ${test.length}` : `generated ${test.length}`,
    };
    rows.push(row);
    if (o.json) {
      const { test: _t, ...line } = row;
      console.log(JSON.stringify({ ...line, engine: model.info.engine, device: model.info.device }));
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
  trainBase.dispose();
  await model.dispose();
}
if (!o.json) {
  const pct = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? (100 * x).toFixed(1) : '—');
  console.log(`| task | test | majority answer | zero-shot | ICL (${DEFAULT_EXAMPLES}) | ICL (5, random) | best single module | LoRAHub avg (best ${DEFAULT_SELECT}) | LoRAHub best | LoRAHub avg (${o.numModules} random) | LoRAHub best | LoRA (${DEFAULT_EXAMPLES} examples) |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.task} | ${r.test} | ${pct(r.majority)} | ${pct(r.zero_shot)} | ${pct(r.icl)} | ${pct(r.icl_5_random)} | ${pct(r.best_single)} (${r.best_single_module}) | ${pct(r.lorahub_avg)} | ${pct(r.lorahub_best)} | ${pct(r.lorahub_random_avg)} | ${pct(r.lorahub_random_best)} | ${pct(r.lora_tune)} |`);
  }
}
