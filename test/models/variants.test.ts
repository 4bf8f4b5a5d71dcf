/**
 * T5 variants beyond the fixture: tied embeddings (v1.0: LM head = shared, decoder output
 * rescaled by d_model^-0.5), relu FFN, checkpoints storing only an embed_tokens alias or
 * transformers' ignored keys, half-precision weights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.ts';
import type { TensorToWrite } from '../../src/io/safetensors.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { T5_GATED, maxAbsDiff, variant } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-variants-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ids = [[20, 30, 40, 50, 1], [60, 70, 1, 0, 0]];
const mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]];
const dec = [[0, 11, 12], [0, 13, 14]];

async function logits(dir: string): Promise<Float32Array> {
  const m = T5Model.load(dir);
  const r = m.forward({ inputIds: ids, attentionMask: mask }, dec);
  const out = (await r.logits.data()) as Float32Array;
  tf.dispose([r.logits, r.encoder]);
  m.dispose();
  return out;
}

beforeAll(async () => {
  await initBackend();
});

describe('T5 variants', () => {
  it('tied embeddings: the LM head is shared·d_model^-0.5 (equals an untied head holding that matrix)', async () => {
    const tied = variant(tmp, 'tied', (c) => delete c.tie_word_embeddings, (t) => t.filter((x) => x.name !== 'lm_head.weight'));
    const untied = variant(tmp, 'untied-equiv', () => {}, (t) => {
      const shared = t.find((x) => x.name === 'shared.weight') as TensorToWrite;
      const head = Float32Array.from(shared.data as Float32Array, (v) => v * 64 ** -0.5);
      return t.map((x) => (x.name === 'lm_head.weight' ? { ...x, data: head } : x));
    });
    expect(maxAbsDiff(await logits(tied), await logits(untied))).toBeLessThan(1e-5);
  });

  it('a tied checkpoint that stores lm_head.weight, an embed_tokens alias only, or the ignored v1.0 cross-attention bias loads the same', async () => {
    const tied = await logits(variant(tmp, 'tied2', (c) => (c.tie_word_embeddings = true), (t) => t));
    const alias = variant(tmp, 'alias', (c) => (c.tie_word_embeddings = true), (t) =>
      t.filter((x) => x.name !== 'lm_head.weight').map((x) => (x.name === 'shared.weight' ? { ...x, name: 'encoder.embed_tokens.weight' } : x)),
    );
    const extra = variant(tmp, 'extra', (c) => (c.tie_word_embeddings = true), (t) => [
      ...t,
      { name: 'decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight', dtype: 'F32', shape: [32, 4], data: new Float32Array(128) },
    ]);
    expect(maxAbsDiff(await logits(alias), tied)).toBe(0);
    expect(maxAbsDiff(await logits(extra), tied)).toBe(0);
  });

  it('relu FFN (v1.0): wi/wo instead of wi_0/wi_1/wo, and gated-relu', async () => {
    const relu = variant(tmp, 'relu', (c) => (c.feed_forward_proj = 'relu'), (t) =>
      t.filter((x) => !x.name.includes('wi_1')).map((x) => (x.name.includes('wi_0') ? { ...x, name: x.name.replace('wi_0', 'wi') } : x)),
    );
    const out = await logits(relu);
    expect(out.every(Number.isFinite)).toBe(true);
    const gatedRelu = await logits(variant(tmp, 'gated-relu', (c) => (c.feed_forward_proj = 'gated-relu'), (t) => t));
    expect(maxAbsDiff(gatedRelu, await logits(`${T5_GATED}/model`))).toBeGreaterThan(1e-3);
    // A relu checkpoint missing wi is refused, naming the tensor.
    const broken = variant(tmp, 'relu-broken', (c) => (c.feed_forward_proj = 'relu'), (t) => t);
    expect(() => T5Model.load(broken)).toThrow(/missing tensor "encoder\.block\.0\.layer\.1\.DenseReluDense\.wi\.weight"/);
  });

  it('F16 and BF16 checkpoints load (converted to float32) within half-precision error', async () => {
    const base = await logits(`${T5_GATED}/model`);
    for (const dtype of ['F16', 'BF16'] as const) {
      const half = variant(tmp, `half-${dtype}`, () => {}, (t) => t.map((x) => ({ ...x, dtype })));
      const d = maxAbsDiff(await logits(half), base);
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThan(dtype === 'F16' ? 0.05 : 0.5);
    }
  });
});
