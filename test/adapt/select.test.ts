/**
 * Module selection (`compose --select K`, adapt/select.ts): each candidate's score is its
 * few-shot loss alone, the same number however the pool is cut into passes, and the K lowest
 * are kept in pool order; through compose, run.json records the outcome and a resumed run
 * does not select again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS } from '../../src/adapt/adapt.ts';
import { FewShotObjective } from '../../src/adapt/objective.ts';
import { runCompose, type ComposeReport, type ComposeRequest, type RunSpec } from '../../src/adapt/run.ts';
import { scoreModulesAlone, selectLowest } from '../../src/adapt/select.ts';
import { loadModel, type EngineModel } from '../../src/engine/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5_GATED, readJson, t5AdapterCases } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-select-'));
const MODEL = `${T5_GATED}/model`;
const ADAPTERS = ['a0', 'a1', 'a2'].map((a) => `${T5_GATED}/adapters/${a}`);
const fx = t5AdapterCases().objective.examples;
const batch = { inputIds: fx.input_ids, attentionMask: fx.attention_mask, labels: fx.labels };
const DATA = join(tmp, 'five.jsonl');
writeFileSync(DATA, fx.inputs.map((input, i) => JSON.stringify({ input, target: fx.outputs[i] })).join('\n'));

let model: EngineModel;
let modules: LoraModule[];
beforeAll(async () => {
  model = await loadModel(MODEL);
  modules = await Promise.all(ADAPTERS.map((d) => readAdapter(d)));
});
afterAll(async () => {
  await model?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('selectLowest', () => {
  it('keeps the K lowest in pool order; ties go to the earlier module; +∞ comes last', () => {
    const scores = [
      { module: 'a', loss: 0.5 },
      { module: 'b', loss: Infinity },
      { module: 'c', loss: 0.2 },
      { module: 'd', loss: 0.5 },
      { module: 'e', loss: Infinity },
    ];
    expect(selectLowest(scores, 2).chosen).toEqual([0, 2]);
    expect(selectLowest(scores, 3).chosen).toEqual([0, 2, 3]);
    expect(selectLowest(scores, 2).ranked.map((s) => s.module)).toEqual(['c', 'a', 'd', 'b', 'e']);
    // K beyond the pool keeps all of it.
    expect(selectLowest(scores, 9).chosen).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('scoreModulesAlone', () => {
  it('gives each module its few-shot loss alone at weight 1, whatever the passes hold', async () => {
    const names = modules.map((m) => m.name);
    const byName = new Map(modules.map((m) => [m.name, m]));
    const load = async (chunk: string[]) => chunk.map((n) => byName.get(n) as LoraModule);
    const opts = { normalization: 'reference' as const, alpha: 0.05 };
    const expected = await Promise.all(modules.map(async (m) => (await new FewShotObjective(model, [m], batch, opts).score([1])).loss));
    for (const chunk of [1, 2, 16]) {
      const scores = await scoreModulesAlone(model, names, load, batch, opts, 'none', chunk);
      expect(scores.map((s) => s.module)).toEqual(names);
      scores.forEach((s, i) => expect(Math.abs(s.loss - expected[i])).toBeLessThan(1e-6));
    }
    // The three fixture adapters differ, so the test can tell one score from another.
    expect(new Set(expected.map((x) => x.toFixed(6))).size).toBe(3);
  });
});

describe('compose with a selection', () => {
  const request = (out: string, over: Partial<ComposeRequest> = {}): ComposeRequest => ({
    data: DATA,
    model: MODEL,
    modules: ADAPTERS,
    numModules: 20,
    select: 2,
    harmonize: 'none',
    examples: 5,
    settings: { ...DEFAULT_SETTINGS, seed: 42, budget: 30 },
    normalization: 'reference',
    alpha: 0.05,
    workers: 1,
    out,
    noEval: true,
    ...over,
  });

  it('composes the K modules with the lowest loss alone, records the selection, and resumes without selecting again', async () => {
    const alone = await Promise.all(modules.map(async (m) => (await new FewShotObjective(model, [m], batch, { normalization: 'reference' }).score([1])).loss));
    const keep = alone
      .map((l, i) => ({ l, i }))
      .sort((a, b) => a.l - b.l)
      .slice(0, 2)
      .map((x) => x.i)
      .sort((a, b) => a - b);
    const report = await runCompose(request(join(tmp, 'full')));
    expect(report.modules).toEqual(keep.map((i) => modules[i].name));
    expect(report.weights).toHaveLength(2);
    expect(report.selection?.k).toBe(2);
    expect(report.selection?.pool).toBe(3);
    expect(report.selection?.scores.map((s) => s.loss)).toEqual([...report.selection!.scores.map((s) => s.loss)].sort((a, b) => a - b));
    const spec = readJson<RunSpec>(join(tmp, 'full', 'run.json'));
    expect(spec.moduleItems).toEqual(keep.map((i) => ADAPTERS[i]));
    expect(spec.selection?.poolItems).toEqual(ADAPTERS);

    // Interrupted after its first generations, then resumed: the same modules and weights as the
    // uninterrupted run, and run.json (the selection in it) untouched by the resume.
    const cut = join(tmp, 'cut');
    let generations = 0;
    await expect(runCompose(request(cut), { interrupted: () => ++generations > 3 })).rejects.toThrow(/interrupted/);
    const before = readFileSync(join(cut, 'run.json'));
    const phases: string[] = [];
    const resumed = await runCompose(request('unused', { workers: 1 }), { onPhase: (p) => phases.push(p) }, cut);
    expect(phases).not.toContain('select');
    expect(readFileSync(join(cut, 'run.json')).equals(before)).toBe(true);
    expect(resumed.modules).toEqual(report.modules);
    expect(resumed.weights).toEqual(report.weights);
    expect(resumed.selection).toEqual(report.selection);
  });

  it('the result is never worse than the best composed module alone, even when the search is cut short', async () => {
    const objective = (w: number[], ms: LoraModule[]) => new FewShotObjective(model, ms, batch, { normalization: 'reference', alpha: 0.05 }).score(w);
    // Budget 2: w = 0 and COBYLA's first probe (+0.75 on the first module) — neither is a module at weight 1.
    const short = await runCompose(request(join(tmp, 'short'), { settings: { ...DEFAULT_SETTINGS, seed: 42, budget: 2 } }));
    const composed = short.modules.map((n) => modules.find((m) => m.name === n) as LoraModule);
    const alone = await Promise.all(composed.map((_, i) => objective(composed.map((__, j) => (j === i ? 1 : 0)), composed)));
    const best = alone.reduce((a, b) => (b.objective < a.objective ? b : a));
    const searched = Math.min(...short.trace.map((g) => g.best));
    expect(best.objective).toBeLessThan(searched); // the fixture makes the guarantee matter here
    expect(short.single_module_result).toBe(short.modules[alone.indexOf(best)]);
    expect(short.weights).toEqual(short.modules.map((n) => (n === short.single_module_result ? 1 : 0)));
    expect(Math.abs(short.objective - best.objective)).toBeLessThan(1e-6);
    expect(short.evaluations).toBe(2); // no evaluation added: --budget stays a cap
    // With the default budget the search ends lower, and the result is its own.
    const full = await runCompose(request(join(tmp, 'full-single')));
    expect(full.single_module_result).toBeNull();
    expect(full.objective).toBeLessThan(Math.min(...alone.map((a) => a.objective)));
  });

  it('with a bound below 1 no module alone is the result: weight 1 is outside the box', async () => {
    // The short search above, whose result was a module alone; with --bound 0.5 it stays in the box.
    const short = await runCompose(request(join(tmp, 'short-bound'), { settings: { ...DEFAULT_SETTINGS, seed: 42, budget: 2, bound: 0.5 } }));
    expect(short.single_module_result).toBeNull();
    for (const w of short.weights) expect(Math.abs(w)).toBeLessThanOrEqual(0.5);
    await expect(runCompose(request(join(tmp, 'bad-bound'), { settings: { ...DEFAULT_SETTINGS, seed: 42, bound: Number.NaN } }))).rejects.toThrow(/bound must be a positive number, got NaN/);
  });

  it('the best single module is the best of the whole pool, not only of the K composed', async () => {
    const test = join(tmp, 'test.jsonl');
    writeFileSync(test, readFileSync(DATA));
    const details: string[] = [];
    const r: ComposeReport = await runCompose(request(join(tmp, 'single'), { select: 1, noEval: false, testData: test, bestSingle: true }), {
      onPhase: (p, d) => {
        if (p === 'evaluate' && d) details.push(d);
      },
    });
    expect(r.modules).toHaveLength(1);
    // One module composed, the three of the pool evaluated alone.
    expect(details).toEqual(['5 test examples, and each of the 3 modules alone']);
    expect(modules.map((m) => m.name)).toContain(r.tests[0].best_single?.module);
  });
});
