import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapt, DEFAULT_SETTINGS, type Evaluator } from '../../src/adapt/adapt.ts';
import { BatchedEvaluator, WorkerEvaluator } from '../../src/adapt/evaluator.ts';
import { FewShotObjective } from '../../src/adapt/objective.ts';
import { SEARCH_DEFAULTS } from '../../src/adapt/optimizer.ts';
import { DEFAULT_EXAMPLES, runCompose, type ComposeReport, type ComposeRequest } from '../../src/adapt/run.ts';
import { loadModel } from '../../src/engine/index.ts';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { DEFAULT_BBH_DIR as BBH_DIR } from '../../src/tasks/index.ts';
import { T5_GATED, readJson } from '../helpers.ts';
import { runCli } from '../cli/run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-compose-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = `${T5_GATED}/model`;
const ADAPTERS = ['a0', 'a1', 'a2'].map((a) => `${T5_GATED}/adapters/${a}`);
const fx = readJson<{ objective: { examples: { inputs: string[]; outputs: string[]; input_ids: number[][]; attention_mask: number[][]; labels: number[][] } } }>(
  `${T5_GATED}/adapter_cases.json`,
).objective.examples;
const DATA = join(tmp, 'five.jsonl');
writeFileSync(DATA, fx.inputs.map((input, i) => JSON.stringify({ input, target: fx.outputs[i] })).join('\n'));

/** The reference's final objective after 40 COBYLA evaluations (lorahub_run.json). */
const REFERENCE_OBJECTIVE = 0.80381;

function request(out: string, over: Partial<ComposeRequest> = {}): ComposeRequest {
  return {
    data: DATA,
    model: MODEL,
    modules: ADAPTERS,
    numModules: 20,
    harmonize: 'none',
    examples: 5,
    settings: { ...DEFAULT_SETTINGS, seed: 42 },
    normalization: 'reference',
    alpha: 0.05,
    workers: 1,
    out,
    ...over,
  };
}

let modules: LoraModule[];
beforeAll(async () => {
  modules = await Promise.all(ADAPTERS.map((d) => readAdapter(d)));
});

describe('lorahub compose on the t5-gated fixture (reference normalisation)', () => {
  let first: ComposeReport;
  it(`with the default settings reaches an objective ≤ ${REFERENCE_OBJECTIVE} (the reference's 40 evaluations), and saves adapter, report and plot`, async () => {
    first = await runCompose(request(join(tmp, 'r1')));
    expect(first.objective).toBeLessThanOrEqual(REFERENCE_OBJECTIVE);
    expect(first.objective).toBeLessThanOrEqual(first.base_objective);
    expect(first.base_objective).toBeCloseTo(0.8628776550292969, 5);
    expect(first.trace[0].candidates[0]).toEqual([0, 0, 0]);
    expect(first.seconds).toBeGreaterThan(0);
    // The default engine, recorded with its device, threads and provider.
    expect(['ort', 'tfjs']).toContain(first.engine);
    expect(first.device).toBe('cpu');
    expect(first.threads).toBeGreaterThanOrEqual(1);
    if (first.engine === 'tfjs') expect(first.backend).toMatch(/\((wasm|tensorflow)\)$/);
    const adapter = await readAdapter(first.outputs.adapter);
    expect(adapter.targets.size).toBe(12);
    expect(readFileSync(first.outputs.loss_curve, 'utf8')).toMatch(/^<svg/);
    const report = readJson<ComposeReport>(first.outputs.report);
    // `auto` is recorded as the search it stood for: with 3 modules, COBYLA then lq-CMA-ES.
    expect(SEARCH_DEFAULTS.optimizer).toBe('auto');
    expect(report.settings).toMatchObject({ optimizer: 'cobyla-lq', seed: 42, loss_normalization: 'reference' });
    expect(readJson<{ settings: { optimizer: string } }>(join(tmp, 'r1', 'run.json')).settings.optimizer).toBe('cobyla-lq');
  });

  it('same seed, same weights', async () => {
    const second = await runCompose(request(join(tmp, 'r2')));
    expect(second.weights).toEqual(first.weights);
    expect(second.objective).toBe(first.objective);
  });

  // Generation 5 is in COBYLA's part of the default search, 60 in lq-CMA-ES's.
  it.each([5, 60])('an interrupted run resumes from its last finished generation (%i) to the same result', async (stopAt) => {
    const out = join(tmp, `r3-${stopAt}`);
    let gens = 0;
    await expect(runCompose(request(out), { interrupted: () => ++gens > stopAt })).rejects.toThrow(/interrupted after \d+ evaluations; resume it with resume /);
    expect(existsSync(join(out, 'state.json'))).toBe(true);
    // What a run killed mid-write leaves (a dead pid's temporary file): cleaned up on resume.
    const stale = join(out, '.state.json.2147483646.0123456789ab.tmp');
    writeFileSync(stale, '{');
    const resumed = await runCompose(request(out), {}, out);
    expect(existsSync(stale)).toBe(false);
    expect(resumed.resumed).toBe(true);
    expect(resumed.weights).toEqual(first.weights);
    expect(resumed.evaluations).toBe(first.evaluations);
  });

  it('--json through the CLI prints the final line', async () => {
    const r = await runCli([
      'compose', '--model', MODEL, '--modules', ADAPTERS.join(','), '--data', DATA, '--loss-normalization', 'reference',
      '--seed', '42', '--workers', '1', '--budget', '60', '--out', join(tmp, 'cli'), '--json',
    ]);
    expect(r.code).toBe(0);
    const last = JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(Object.keys(last)).toEqual(expect.arrayContaining(['weights', 'objective', 'evaluations', 'seconds', 'modules', 'zero_shot_accuracy', 'accuracy', 'engine', 'device']));
    expect(last.evaluations).toBe(60);
  });
});

describe('scoring engines agree', () => {
  it('workers give the same objective values as the batched pass (1e-5)', async () => {
    const batch = { inputIds: fx.input_ids, attentionMask: fx.attention_mask, labels: fx.labels };
    const options = { alpha: 0.05, normalization: 'reference' as const, batchSize: 5 };
    const model = await loadModel(MODEL);
    const obj = new FewShotObjective(model, modules, batch, options);
    const population = Array.from({ length: 9 }, (_, i) => [Math.sin(i), Math.cos(3 * i), 0.3 * i - 1.2]);
    const batched = await new BatchedEvaluator(obj).evaluate(population);
    const engine = { engine: model.info.engine, device: model.info.device, threads: 1 };
    const workers = new WorkerEvaluator({ workers: 2, modelDir: MODEL, stack: obj.stack, batch, objective: options, engine });
    try {
      const viaWorkers = await workers.evaluate(population);
      viaWorkers.forEach((v, i) => expect(Math.abs(v - batched[i])).toBeLessThan(1e-5));
    } finally {
      await workers.close();
      await model.dispose();
    }
  });
});

describe('bad input', () => {
  const fake = (f: (w: number[]) => number): Evaluator => ({ evaluate: async (pop) => pop.map(f) });

  it('a candidate with a NaN objective is scored +∞ and reported, never fatal', async () => {
    const r = await adapt(3, fake((w) => (w[0] > 0.5 ? Number.NaN : w.reduce((s, x) => s + (x - 0.3) ** 2, 0))), {
      optimizer: 'cmaes', budget: 120, seed: 1, sigma0: 0.5, bound: 1.5,
    });
    expect(r.nonFinite).toBeGreaterThan(0);
    expect(Number.isFinite(r.objective)).toBe(true);
    expect(r.objective).toBeLessThan(r.baseObjective);
  });
  it('the result is never worse than the base model', async () => {
    const r = await adapt(3, fake((w) => (w.every((x) => x === 0) ? -1 : 1 + w[0] ** 2)), { optimizer: 'random', budget: 50, seed: 3, sigma0: 0.5, bound: 1.5 });
    expect(r.weights).toEqual([0, 0, 0]);
    expect(r.objective).toBe(-1);
  });
  it('a budget smaller than one generation', async () => {
    await expect(adapt(20, fake(() => 1), { optimizer: 'cmaes', budget: 5, seed: 1, bound: 1.5 })).rejects.toThrow(/budget 5 is too small: .* need at least 7/);
    await expect(adapt(20, fake(() => 1), { optimizer: 'cmaes', budget: 12, seed: 1, bound: 1.5, popsize: 12 })).rejects.toThrow(/budget 12 is too small: .* need at least 13/);
  });
  it('empty, malformed and too-short data files; mixed ranks without harmonisation', async () => {
    const empty = join(tmp, 'empty.jsonl');
    writeFileSync(empty, '');
    await expect(runCompose(request(join(tmp, 'e1'), { data: empty }))).rejects.toThrow(/empty\.jsonl/);
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{"examples": [{"input": 1}]}');
    await expect(runCompose(request(join(tmp, 'e2'), { data: bad }))).rejects.toThrow(/bad\.json/);
    await expect(runCompose(request(join(tmp, 'e3'), { examples: 8, examplesExplicit: true }))).rejects.toThrow(/5 examples, fewer than examples 8/);
    const m = modules[0];
    const r2 = join(tmp, 'rank2');
    await writeAdapter(r2, {
      ...m,
      config: { ...m.config, r: 2 },
      targets: new Map([...m.targets].map(([p, t]) => [p, { ...t, r: 2, a: t.a.slice(0, 2 * t.dIn), b: new Float32Array(t.dOut * 2), scaling: 16 }])),
    });
    await expect(runCompose(request(join(tmp, 'e4'), { modules: [ADAPTERS[0], r2] }))).rejects.toThrow(/module "rank2", key "[^"]+": rank 2, expected 4/);
  });
});

describe('compose --task with modules sampled from a library', () => {
  it('samples --num-modules compatible modules with --seed, and prints zero-shot vs composed accuracy', async () => {
    const lib = join(tmp, 'lib');
    for (const d of ADAPTERS) {
      const added = await runCli(['modules', 'add', d, '--library', lib, '--base', MODEL]);
      expect(added.code).toBe(0);
    }
    expect((await runCli(['modules', 'set-base', MODEL, '--library', lib])).code).toBe(0);
    const args = ['compose', '--task', 'boolean_expressions', '--library', lib, '--num-modules', '2', '--budget', '20', '--seed', '7', '--workers', '1'];
    const r = await runCli([...args, '--out', join(tmp, 'task1')]);
    expect(r.code).toBe(0);
    const line = /exact match on 250 test examples \(task boolean_expressions test split\): zero-shot \d+\.\d% → composed \d+\.\d%; best single module \d+\.\d% \((\w+)\)/;
    expect(r.stdout).toMatch(line);
    const report = readJson<ComposeReport>(join(tmp, 'task1', 'report.json'));
    expect(report.modules).toHaveLength(2);
    expect(report.examples).toHaveLength(DEFAULT_EXAMPLES);
    // Drawn balanced by default: the two answers take turns.
    const trues = report.examples.filter((e) => e.target === 'True').length;
    expect(Math.abs(2 * trues - DEFAULT_EXAMPLES)).toBeLessThanOrEqual(1);
    expect(report.test_examples).toBe(250);
    // The generated test split first, then the real BBH file beside the repository when present.
    const bbh = existsSync(join(BBH_DIR, 'boolean_expressions.json'));
    expect(report.tests.map((t) => t.examples)).toEqual(bbh ? [250, 250] : [250]);
    if (bbh) expect(r.stdout).toMatch(/exact match on 250 test examples \(.*boolean_expressions\.json\): zero-shot .* best single module/);
    expect(report.tests[0]).toMatchObject({ zero_shot: report.zero_shot_accuracy, composed: report.accuracy });
    for (const t of report.tests) expect(report.modules).toContain(t.best_single?.module);
    // The best single module is that module alone: scoring it through compose-weights gives its accuracy.
    const best = report.tests[0].best_single!;
    const alone = join(tmp, 'alone');
    expect((await runCli(['compose-weights', '--library', lib, '--modules', best.module, '--weights', '1', '--out', alone])).code).toBe(0);
    const evalAlone = await runCli(['eval', '--task', 'boolean_expressions', '--model', MODEL, '--adapter', alone, '--json']);
    expect(JSON.parse(evalAlone.stdout.trim().split('\n').pop() as string).accuracy).toBeCloseTo(best.accuracy, 10);
    const again = await runCli([...args, '--out', join(tmp, 'task2'), '--json', '--no-bbh', '--no-best-single']);
    const j = JSON.parse(again.stdout.trim().split('\n').pop() as string) as { modules: string[]; weights: number[]; tests: ComposeReport['tests'] };
    expect(j.modules).toEqual(report.modules);
    expect(j.weights).toEqual(report.weights);
    expect(j.tests).toHaveLength(1);
    expect(j.tests[0].best_single).toBeNull();
    const noDir = await runCli([...args, '--out', join(tmp, 'task4'), '--bbh', join(tmp, 'nowhere')]);
    expect(noDir.code).not.toBe(0);
    expect(noDir.stderr).toMatch(/--bbh: no boolean_expressions\.json in .*nowhere/);
    const tooMany = await runCli([...args, '--num-modules', '5', '--out', join(tmp, 'task3')]);
    expect(tooMany.code).not.toBe(0);
    expect(tooMany.stderr).toMatch(/3 modules compatible with .*, fewer than --num-modules 5/);

    // Without --num-modules or --modules, compose selects: the K lowest few-shot losses alone of
    // the whole compatible pool. --no-select is the paper's random draw.
    const common = ['compose', '--task', 'boolean_expressions', '--library', lib, '--budget', '20', '--seed', '7', '--workers', '1', '--no-eval', '--json'];
    const last = (res: { stdout: string }) => JSON.parse(res.stdout.trim().split('\n').pop() as string) as { modules: string[]; selection: ComposeReport['selection'] };
    const byDefault = await runCli([...common, '--out', join(tmp, 'sel-default')]);
    expect(byDefault.code).toBe(0);
    expect(byDefault.stderr).toMatch(/selecting 3 of 3 modules, by each one's few-shot loss alone/);
    expect(last(byDefault).selection).toMatchObject({ k: 3, pool: 3 });
    const two = last(await runCli([...common, '--select', '2', '--out', join(tmp, 'sel-2')]));
    expect(two.modules).toHaveLength(2);
    expect(two.selection?.scores).toHaveLength(3);
    // The two kept are the two lowest scores, listed in pool order.
    expect([...two.modules].sort()).toEqual(two.selection!.scores.slice(0, 2).map((x) => x.module).sort());
    const none = last(await runCli([...common, '--no-select', '--out', join(tmp, 'sel-none')]));
    expect(none.selection).toBeNull();
    expect(none.modules).toHaveLength(3);
  });
});
