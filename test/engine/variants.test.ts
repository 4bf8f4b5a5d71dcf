/**
 * Every Hugging Face T5 checkpoint layout both engines read: the ort engine's per-example losses
 * (1e-5 relative) and greedy ids equal the tfjs engine's, for the base model and with an adapter.
 * The tfjs forward is proven against transformers (test/models/t5.test.ts, variants.test.ts), so
 * ort == tfjs proves the ort graphs on each variant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type EngineModel } from '../../src/engine/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import type { TensorToWrite } from '../../src/io/safetensors.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5_GATED, readJson, variant } from '../helpers.ts';

interface Case {
  name: string;
  input_ids: number[][];
  attention_mask: number[][];
  labels: number[][];
}
const cases = readJson<{ cases: Case[] }>(`${T5_GATED}/cases.json`).cases;

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-engine-variants-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Edit = (t: TensorToWrite[]) => TensorToWrite[];
const same: Edit = (t) => t;
const without = (pred: (name: string) => boolean): Edit => (t) => t.filter((x) => !pred(x.name));

interface Variant {
  name: string;
  config: (c: Record<string, unknown>) => void;
  tensors: Edit;
  /** Files removed from the copy. */
  remove?: string[];
  /** False where the adapter's targets are not all in the model. */
  adapter: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'tied, no lm_head', config: (c) => delete c.tie_word_embeddings, tensors: without((n) => n === 'lm_head.weight'), adapter: true },
  { name: 'tied, lm_head stored', config: (c) => (c.tie_word_embeddings = true), tensors: same, adapter: true },
  {
    name: 'encoder.embed_tokens alias only',
    config: (c) => (c.tie_word_embeddings = true),
    tensors: (t) => without((n) => n === 'lm_head.weight')(t).map((x) => (x.name === 'shared.weight' ? { ...x, name: 'encoder.embed_tokens.weight' } : x)),
    adapter: true,
  },
  {
    name: 'ignored v1.0 cross-attention bias',
    config: () => {},
    // Non-zero, so that an engine reading it would differ.
    tensors: (t) => [...t, { name: 'decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight', dtype: 'F32', shape: [32, 4], data: new Float32Array(128).fill(3) }],
    adapter: true,
  },
  {
    name: 'relu (v1.0 wi/wo)',
    config: (c) => (c.feed_forward_proj = 'relu'),
    tensors: (t) => without((n) => n.includes('wi_1'))(t).map((x) => (x.name.includes('wi_0') ? { ...x, name: x.name.replace('wi_0', 'wi') } : x)),
    adapter: true,
  },
  { name: 'gated-relu', config: (c) => (c.feed_forward_proj = 'gated-relu'), tensors: same, adapter: true },
  { name: 'F16', config: () => {}, tensors: (t) => t.map((x) => ({ ...x, dtype: 'F16' })), adapter: true },
  { name: 'BF16', config: () => {}, tensors: (t) => t.map((x) => ({ ...x, dtype: 'BF16' })), adapter: true },
  { name: 'no tokenizer files', config: () => {}, tensors: same, remove: ['tokenizer_config.json', 'special_tokens_map.json'], adapter: true },
  // a0 adapts decoder block 1, which this variant does not have.
  { name: '1 decoder layer, 2 encoder layers', config: (c) => (c.num_decoder_layers = 1), tensors: without((n) => n.startsWith('decoder.block.1.')), adapter: false },
];

let adapter: LoraModule;
beforeAll(async () => {
  adapter = await readAdapter(`${T5_GATED}/adapters/a0`);
});

describe.each(VARIANTS.map((v, i) => ({ ...v, dir: `v${i}` })))('$name: ort equals tfjs', (v) => {
  const models: { ort?: EngineModel; tfjs?: EngineModel } = {};

  beforeAll(async () => {
    const dir = variant(tmp, v.dir, v.config, v.tensors);
    for (const f of v.remove ?? []) rmSync(join(dir, f));
    models.ort = await loadModel(dir, { engine: 'ort', threads: 2 });
    models.tfjs = await loadModel(dir, { engine: 'tfjs' });
  });
  afterAll(async () => {
    await models.ort?.dispose();
    await models.tfjs?.dispose();
  });

  async function expectSame(adapt?: LoraModule): Promise<void> {
    const { ort, tfjs } = models as Required<typeof models>;
    for (const c of cases) {
      const batch = { inputIds: c.input_ids, attentionMask: c.attention_mask, labels: c.labels };
      const [got] = await ort.tokenLosses(batch, adapt ? [adapt] : []);
      const [want] = await tfjs.tokenLosses(batch, adapt ? [adapt] : []);
      expect(got.tokens, c.name).toEqual(want.tokens);
      got.sum.forEach((s, i) => {
        expect(Number.isFinite(s), `${c.name} example ${i}`).toBe(true);
        expect(Math.abs(s - want.sum[i]) / Math.max(Math.abs(want.sum[i]), 1e-12), `${c.name} example ${i}`).toBeLessThan(1e-5);
      });
      const input = { inputIds: c.input_ids, attentionMask: c.attention_mask };
      expect(await ort.generate(input, { maxNewTokens: 8, adapter: adapt }), c.name).toEqual(await tfjs.generate(input, { maxNewTokens: 8, adapter: adapt }));
    }
  }

  it('base model: losses and greedy ids', async () => {
    await expectSame();
  });

  it.skipIf(!v.adapter)('with adapter a0: losses and greedy ids', async () => {
    await expectSame(adapter);
  });
});
