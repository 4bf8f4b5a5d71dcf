import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { disposeDeltas, moduleDeltas } from '../../src/models/t5/deltas.ts';
import { compose } from '../../src/lora/compose.ts';
import { mergeIntoCheckpoint } from '../../src/models/merge.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5Model, type LoraDeltas } from '../../src/models/t5/model.ts';
import { generateGreedy } from '../../src/models/t5/generate.ts';
import { batchMeanLoss, exampleLosses } from '../../src/models/shared/batch.ts';
import { tokenCrossEntropy } from '../../src/models/t5/loss.ts';
import { T5_GATED, flat, maxAbsDiff, t5AdapterCases, t5Cases, type T5Case, type T5CaseResult } from '../helpers.ts';

type CaseOut = T5CaseResult;
type Case = T5Case;

const cases = t5Cases();
const ac = t5AdapterCases();
let model: T5Model;
const modules: Record<string, LoraModule> = {};

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
  for (const a of ['a0', 'a1', 'a2']) modules[a] = await readAdapter(`${T5_GATED}/adapters/${a}`, { weights: 'safetensors' });
});

async function checkCase(m: T5Model, c: Case, want: CaseOut, deltas?: LoraDeltas): Promise<void> {
  const r = m.forward({ inputIds: c.input_ids, attentionMask: c.attention_mask }, c.decoder_input_ids, deltas);
  const pt = tokenCrossEntropy(r.logits, c.labels.flat());
  expect(maxAbsDiff(await r.logits.data(), flat(want.logits))).toBeLessThan(1e-4);
  const l = exampleLosses(await pt.data(), c.labels);
  tf.dispose([r.logits, r.encoder, pt]);
  expect(Math.abs(batchMeanLoss(l) - want.loss) / want.loss).toBeLessThan(1e-5);
  l.sum.forEach((s, i) => expect(Math.abs(s - want.per_example_loss_sum[i]) / Math.abs(want.per_example_loss_sum[i])).toBeLessThan(1e-5));
}

describe('single adapters vs PEFT', () => {
  for (const weights of ['safetensors', 'bin'] as const) {
    for (const sa of ac.single_adapter) {
      it(`${sa.adapter} from adapter_model.${weights}: logits and losses on every case`, async () => {
        const mod = await readAdapter(`${T5_GATED}/adapters/${sa.adapter}`, { weights });
        const deltas = moduleDeltas(mod);
        const start = tf.memory().numTensors;
        for (const want of sa.cases) await checkCase(model, cases.find((c) => c.name === want.name) as Case, want, deltas);
        expect(tf.memory().numTensors).toBe(start);
        disposeDeltas(deltas);
      });
    }
  }
});

describe('COMPOSE (LoRAHub rule) vs lorahub get_final_weights', () => {
  it('composed tensors are bit-identical to the reference', () => {
    const composed = compose([modules.a0, modules.a1, modules.a2], ac.composition.weights);
    const ref = ac.composition.composed_state_dict;
    expect(Object.keys(ref).length).toBe(composed.targets.size * 2);
    for (const [key, want] of Object.entries(ref)) {
      const m = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(key);
      expect(m).not.toBeNull();
      const t = composed.targets.get((m as RegExpExecArray)[1]);
      expect(t).toBeDefined();
      const got = (m as RegExpExecArray)[2] === 'A' ? t?.a : t?.b;
      const expected = Float32Array.from(flat(want.values));
      expect(Buffer.from((got as Float32Array).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    }
  });

  it('does not mutate its inputs', () => {
    const before = Float32Array.from(modules.a0.targets.values().next().value?.a ?? []);
    compose([modules.a0, modules.a1, modules.a2], [2, 2, 2]);
    expect(modules.a0.targets.values().next().value?.a).toEqual(before);
  });

  it('composed module: logits, losses and greedy ids on every case', async () => {
    const composed = compose([modules.a0, modules.a1, modules.a2], ac.composition.weights);
    const deltas = moduleDeltas(composed);
    for (const want of ac.composition.cases) {
      const c = cases.find((x) => x.name === want.name) as Case;
      await checkCase(model, c, want, deltas);
      const ids = generateGreedy(model, { inputIds: c.input_ids, attentionMask: c.attention_mask }, { maxNewTokens: 8, lora: deltas });
      expect(ids).toEqual(want.generate_max_new_tokens_8);
    }
    disposeDeltas(deltas);
  });

  it('merged checkpoint (W + s·BA): logits and losses on every case', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lorahub-merge-'));
    try {
      const out = join(dir, 'merged');
      const composed = compose([modules.a0, modules.a1, modules.a2], ac.composition.weights);
      const { merged } = mergeIntoCheckpoint(`${T5_GATED}/model`, composed, out);
      expect(merged.length).toBe(composed.targets.size);
      const m = T5Model.load(out);
      for (const want of ac.composition.merged.cases) await checkCase(m, cases.find((x) => x.name === want.name) as Case, want);
      m.dispose();
      expect(() => mergeIntoCheckpoint(`${T5_GATED}/model`, composed, out)).toThrow(/already exists/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses rank mismatches unless harmonised, and truncation keeps the leading components', () => {
    const a0 = modules.a0;
    const small: LoraModule = {
      ...a0,
      name: 'small',
      targets: new Map([...a0.targets].map(([p, t]) => {
        const r = 2;
        const b = new Float32Array(t.dOut * r);
        for (let o = 0; o < t.dOut; o++) for (let k = 0; k < r; k++) b[o * r + k] = t.b[o * t.r + k];
        return [p, { ...t, r, a: t.a.slice(0, r * t.dIn), b, scaling: 16 }];
      })),
    };
    expect(() => compose([a0, small], [1, 1])).toThrow(/module "small", key "[a-z.0-9A-Z_]+": rank 2, expected 4 \(as "a0"\)/);
    const tr = compose([a0, small], [1, 0], { harmonize: 'truncate' });
    const t = tr.targets.get('encoder.block.0.layer.0.SelfAttention.q');
    expect(t?.r).toBe(2);
    expect(t?.scaling).toBe(16); // lora_alpha 32 / rank 2
    // DyLoRA semantics: a0 cut to rank 2 keeps its leading components unchanged at scaling α/2.
    const src0 = a0.targets.get('encoder.block.0.layer.0.SelfAttention.q');
    expect(Array.from(t?.a ?? [])).toEqual(Array.from(src0?.a.slice(0, 2 * (src0?.dIn ?? 0)) ?? []));
    expect(t?.b[0]).toBe(src0?.b[0]);
    expect(t?.b[1]).toBe(src0?.b[1]);
    const padded = compose([a0, small], [0, 1], { harmonize: 'pad' });
    const p = padded.targets.get('encoder.block.0.layer.0.SelfAttention.q');
    expect(p?.r).toBe(4);
    // small's scaling 16 folded into B relative to the composed scaling 8: B doubles.
    const src = small.targets.get('encoder.block.0.layer.0.SelfAttention.q');
    expect(p?.b[0]).toBeCloseTo((src?.b[0] ?? 0) * 2, 6);
    expect(p?.b[2]).toBe(0);
  });
});
