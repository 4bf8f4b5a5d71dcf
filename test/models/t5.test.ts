import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { generateGreedy } from '../../src/models/t5/generate.ts';
import { batchMeanLoss, exampleLosses } from '../../src/models/shared/batch.ts';
import { shiftRight } from '../../src/models/t5/labels.ts';
import { tokenCrossEntropy } from '../../src/models/t5/loss.ts';
import { relativePositionBucket } from '../../src/models/t5/position.ts';
import { T5_GATED, flat, maxAbsDiff, t5Cases } from '../helpers.ts';

const cases = t5Cases();
let model: T5Model;

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
});

function relClose(a: number, b: number, rel: number): boolean {
  return Math.abs(a - b) <= rel * Math.abs(b);
}

describe('T5 forward vs transformers (t5-gated fixture)', () => {
  it('has every case of the fixture', () => {
    expect(cases.map((c) => c.name)).toEqual([
      'single_no_pad',
      'batch2_padded',
      'batch3_mixed_incl_len1',
      'batch2_medium_buckets',
      'single_long_beyond_max_distance',
    ]);
  });

  for (const c of cases) {
    it(`${c.name}: logits, encoder states and losses`, async () => {
      expect(shiftRight(c.labels, 0, 0)).toEqual(c.decoder_input_ids);
      const start = tf.memory().numTensors;
      const r = model.forward({ inputIds: c.input_ids, attentionMask: c.attention_mask }, c.decoder_input_ids);
      const perToken = tokenCrossEntropy(r.logits, c.labels.flat());
      expect(maxAbsDiff(await r.logits.data(), flat(c.expected.logits))).toBeLessThan(1e-4);
      expect(maxAbsDiff(await r.encoder.data(), flat(c.expected.encoder_last_hidden_state))).toBeLessThan(1e-4);
      const l = exampleLosses(await perToken.data(), c.labels);
      tf.dispose([r.logits, r.encoder, perToken]);
      expect(tf.memory().numTensors).toBe(start);
      expect(relClose(batchMeanLoss(l), c.expected.loss, 1e-5)).toBe(true);
      expect(l.tokens).toEqual(c.expected.per_example_token_count);
      l.sum.forEach((s, i) => expect(relClose(s, c.expected.per_example_loss_sum[i], 1e-5)).toBe(true));
      l.mean.forEach((s, i) => expect(relClose(s, c.expected.per_example_loss_mean[i], 1e-5)).toBe(true));
    });

    it(`${c.name}: greedy generation (KV cache) gives identical ids, no leaks`, () => {
      const start = tf.memory().numTensors;
      const ids = generateGreedy(model, { inputIds: c.input_ids, attentionMask: c.attention_mask }, { maxNewTokens: 8 });
      expect(ids).toEqual(c.expected.generate_max_new_tokens_8);
      expect(tf.memory().numTensors).toBe(start);
    });
  }

  it('population groups: G copies of the base model give the single-model logits', async () => {
    const c = cases[1];
    const single = model.forward({ inputIds: c.input_ids, attentionMask: c.attention_mask }, c.decoder_input_ids);
    const grouped = model.forward({ inputIds: c.input_ids, attentionMask: c.attention_mask }, c.decoder_input_ids, new Map(), 3);
    // No group-specific delta: rows stay shared and are computed once.
    expect(grouped.shared).toBe(true);
    expect(maxAbsDiff(await grouped.logits.data(), await single.logits.data())).toBe(0);
    tf.dispose([single.logits, single.encoder, grouped.logits, grouped.encoder]);
  });

  it('rejects token ids outside the vocabulary', () => {
    expect(() => model.forward({ inputIds: [[5, 999, 1]] }, [[0]])).toThrow(/token id 999 is outside the vocabulary \[0, 259\)/);
  });
});

describe('relative position buckets', () => {
  it('matches transformers on boundaries (float32 log arithmetic)', () => {
    // Bidirectional, 32 buckets, max distance 128: 16 per side, exact below 8.
    expect(relativePositionBucket(0, true, 32, 128)).toBe(0);
    expect(relativePositionBucket(7, true, 32, 128)).toBe(16 + 7);
    expect(relativePositionBucket(-7, true, 32, 128)).toBe(7);
    expect(relativePositionBucket(-16, true, 32, 128)).toBe(10);
    expect(relativePositionBucket(-1000, true, 32, 128)).toBe(15);
    expect(relativePositionBucket(1000, true, 32, 128)).toBe(31);
    // Causal: keys after the query fall in bucket 0; far past saturates at 31.
    expect(relativePositionBucket(3, false, 32, 128)).toBe(0);
    expect(relativePositionBucket(-15, false, 32, 128)).toBe(15);
    expect(relativePositionBucket(-16, false, 32, 128)).toBe(16);
    expect(relativePositionBucket(-127, false, 32, 128)).toBe(31);
  });
});
