/**
 * Both engines against the Hugging Face reference numbers of ../shared/fixtures/t5-gated
 * (transformers + PEFT + lorahub, float32): per-example losses (1e-5 relative), greedy ids
 * (identical), single adapters read from .bin and from .safetensors, the composition
 * [0.5, −0.3, 1.2], the merged checkpoint, and lorahub's objective at its recorded weights.
 * The ort engine's logits and encoder states are checked to 1e-4 absolute as well (the tfjs
 * forward's are in test/models/t5.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FewShotObjective } from '../../src/adapt/objective.ts';
import { loadModel, type EngineModel, type EngineName } from '../../src/engine/index.ts';
import { OrtModel } from '../../src/engine/ort/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { compose, stackModules } from '../../src/lora/compose.ts';
import { mergeIntoCheckpoint } from '../../src/models/merge.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5_GATED, batchOf, flat, maxAbsDiff, t5AdapterCases, t5Cases, type T5CaseResult } from '../helpers.ts';

const cases = t5Cases();
const adapterCases = t5AdapterCases();
type Expected = Omit<T5CaseResult, 'name'>;

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-parity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectLosses(got: { sum: number[]; tokens: number[] }, want: Expected, label: string): void {
  expect(got.tokens, label).toEqual(want.per_example_token_count);
  got.sum.forEach((s, i) => {
    const w = want.per_example_loss_sum[i];
    expect(Math.abs(s - w) / Math.max(Math.abs(w), 1e-12), `${label} example ${i}`).toBeLessThan(1e-5);
  });
}

const ENGINES: EngineName[] = ['ort', 'tfjs'];

describe.each(ENGINES)('engine %s on the t5-gated fixture', (engine) => {
  let model: EngineModel;
  let adapters: { bin: LoraModule[]; st: LoraModule[] };

  beforeAll(async () => {
    model = await loadModel(`${T5_GATED}/model`, { engine, threads: 2 });
    const names = adapterCases.single_adapter.map((a) => a.adapter);
    adapters = {
      bin: await Promise.all(names.map((a) => readAdapter(`${T5_GATED}/adapters/${a}`, { weights: 'bin' }))),
      st: await Promise.all(names.map((a) => readAdapter(`${T5_GATED}/adapters/${a}`, { weights: 'safetensors' }))),
    };
  });
  afterAll(async () => model?.dispose());

  it('records which engine runs', () => {
    expect(model.info.engine).toBe(engine);
    expect(model.info.device).toBe('cpu');
  });

  it('base model: per-example losses and greedy ids', async () => {
    for (const c of cases) {
      const [l] = await model.tokenLosses(batchOf(c));
      expectLosses(l, c.expected, c.name);
      const ids = await model.generate({ inputIds: c.input_ids, attentionMask: c.attention_mask }, { maxNewTokens: 8 });
      expect(ids, c.name).toEqual(c.expected.generate_max_new_tokens_8);
    }
  });

  it('single adapters, from adapter_model.bin and from adapter_model.safetensors', async () => {
    for (const [k, single] of adapterCases.single_adapter.entries()) {
      for (const [i, c] of cases.entries()) {
        for (const m of [adapters.bin[k], adapters.st[k]]) {
          const [l] = await model.tokenLosses(batchOf(c), [m]);
          expectLosses(l, single.cases[i], `${single.adapter}/${c.name}`);
        }
      }
    }
  });

  it('the composition [0.5, −0.3, 1.2]: losses and greedy ids', async () => {
    const comp = adapterCases.composition;
    const composed = compose(adapters.st, comp.weights);
    for (const [i, c] of cases.entries()) {
      const [l] = await model.tokenLosses(batchOf(c), [composed]);
      expectLosses(l, comp.cases[i], c.name);
      const ids = await model.generate({ inputIds: c.input_ids, attentionMask: c.attention_mask }, { maxNewTokens: 8, adapter: composed });
      expect(ids, c.name).toEqual(comp.cases[i].generate_max_new_tokens_8);
    }
  });

  it('the merged checkpoint (W += s·BA) gives the merged losses', async () => {
    const comp = adapterCases.composition;
    const dir = join(tmp, `merged-${engine}`);
    mergeIntoCheckpoint(`${T5_GATED}/model`, compose(adapters.st, comp.weights), dir);
    const merged = await loadModel(dir, { engine, threads: 2 });
    try {
      for (const [i, c] of cases.entries()) expectLosses((await merged.tokenLosses(batchOf(c)))[0], comp.merged.cases[i], c.name);
    } finally {
      await merged.dispose();
    }
  });

  it("lorahub's objective at the recorded weights, and a population in one pass equals one by one", async () => {
    const fx = adapterCases.objective;
    const batch = { inputIds: fx.examples.input_ids, attentionMask: fx.examples.attention_mask, labels: fx.examples.labels };
    const obj = new FewShotObjective(model, adapters.st, batch, { normalization: 'reference', batchSize: fx.batch_size });
    const together = await obj.scorePopulation(fx.evaluations.map((e) => e.weights));
    for (const [i, ev] of fx.evaluations.entries()) {
      expect(Math.abs(together[i].loss - ev.default_get_loss)).toBeLessThan(1e-5);
      expect(Math.abs(together[i].objective - ev.objective)).toBeLessThan(1e-5);
      const alone = await obj.score(ev.weights);
      expect(Math.abs(alone.objective - together[i].objective)).toBeLessThan(1e-6);
    }
  });

  it('a module stack held in SharedArrayBuffers (as ADAPT\'s workers hold it) scores the same', async () => {
    const stack = stackModules(adapters.st);
    const share = (x: Float32Array) => {
      const s = new Float32Array(new SharedArrayBuffer(x.byteLength));
      s.set(x);
      return s;
    };
    const shared = { ...stack, targets: stack.targets.map((t) => ({ ...t, a: share(t.a), b: share(t.b) })) };
    const weights = [adapterCases.composition.weights, [0, 0, 0]];
    const c = cases[1];
    expect(await model.tokenLosses(batchOf(c), { stack: shared, weights })).toEqual(await model.tokenLosses(batchOf(c), { stack, weights }));
  });

  it('bad token ids are refused, naming the position', async () => {
    const c = cases[0];
    await expect(model.tokenLosses({ ...batchOf(c), inputIds: [c.input_ids[0].map((t, j) => (j === 0 ? 999 : t))] })).rejects.toThrow(/input_ids\[0\]: token id 999/);
  });
});

describe('ort engine: logits and encoder states', () => {
  it('match transformers to 1e-4 (base, and with the composed adapter)', async () => {
    const model = (await loadModel(`${T5_GATED}/model`, { engine: 'ort', threads: 2 })) as OrtModel;
    try {
      for (const c of cases) {
        const r = await model.logits(batchOf(c));
        expect(maxAbsDiff(r.logits, flat(c.expected.logits)), c.name).toBeLessThan(1e-4);
        expect(maxAbsDiff(r.encoder, flat(c.expected.encoder_last_hidden_state)), c.name).toBeLessThan(1e-4);
      }
      const st = await Promise.all(['a0', 'a1', 'a2'].map((a) => readAdapter(`${T5_GATED}/adapters/${a}`)));
      const composed = compose(st, adapterCases.composition.weights);
      for (const [i, c] of cases.entries()) {
        const r = await model.logits(batchOf(c), composed);
        expect(maxAbsDiff(r.logits, flat(adapterCases.composition.cases[i].logits)), c.name).toBeLessThan(1e-4);
      }
    } finally {
      await model.dispose();
    }
  });
});
