import { describe, expect, it } from 'vitest';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';
import { BucketSampler, collate, encodeExamples, ExampleStream, microBatches, spanCorrupt } from '../../src/train/data.ts';
import { learningRate } from '../../src/train/loop.ts';
import { Rng } from '../../src/rng.ts';

describe('BucketSampler', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => 5 + ((i * 37) % 61));

  it('visits every example once per epoch, in a seeded order that changes between epochs', () => {
    const s = new BucketSampler(lengths, 7, { batchSize: 8, windowBatches: 4 });
    for (const epoch of [0, 1]) {
      const seen = s.epochPlan(epoch).flat().sort((a, b) => a - b);
      expect(seen).toEqual(lengths.map((_, i) => i));
    }
    expect(s.epochPlan(0)).not.toEqual(s.epochPlan(1));
    expect(new BucketSampler(lengths, 7, { batchSize: 8, windowBatches: 4 }).epochPlan(1)).toEqual(s.epochPlan(1));
  });

  it('pads less than a random order', () => {
    const padding = (plan: number[][]) => plan.reduce((sum, b) => sum + b.reduce((p, i) => p + Math.max(...b.map((j) => lengths[j])) - lengths[i], 0), 0);
    const bucketed = padding(new BucketSampler(lengths, 1, { batchSize: 8, windowBatches: 8 }).epochPlan(0));
    const random = padding(new BucketSampler(lengths, 1, { batchSize: 8, windowBatches: 1 }).epochPlan(0));
    expect(bucketed).toBeLessThan(random / 2);
  });

  it('a cursor fixes the stream: restoring it replays the same batches', () => {
    const tok = new ByteTokenizer();
    const ex = encodeExamples(tok, Array.from({ length: 20 }, (_, i) => ({ input: 'x'.repeat(1 + (i % 7)), target: String(i) })));
    const a = new ExampleStream(ex, 6, 3);
    for (let i = 0; i < 5; i++) a.next();
    const saved = a.cursor;
    const next = [a.next(), a.next()];
    const b = new ExampleStream(ex, 6, 3);
    b.cursor = saved;
    expect([b.next(), b.next()]).toEqual(next);
  });
});

describe('collate', () => {
  it('pads inputs with pad and labels with -100, and counts the tokens', () => {
    const b = collate(
      [
        { inputIds: [10, 11, 1], labels: [20, 1] },
        { inputIds: [12, 1], labels: [21, 22, 23, 1] },
      ],
      { padTokenId: 0 },
    );
    expect(b.inputIds).toEqual([[10, 11, 1], [12, 1, 0]]);
    expect(b.attentionMask).toEqual([[1, 1, 1], [1, 1, 0]]);
    expect(b.labels).toEqual([[20, 1, -100, -100], [21, 22, 23, 1]]);
    expect(b.labelTokens).toBe(6);
    expect(b.tokens).toBe(11);
  });
});

describe('microBatches', () => {
  it('cuts a batch into consecutive parts under the padded-token budget, each normalised by the whole batch', () => {
    const ex = [2, 3, 3, 5, 8, 8].map((n) => ({ inputIds: new Array<number>(n).fill(7), labels: [9, 1] }));
    const m = microBatches(ex, { padTokenId: 0 }, 20);
    expect(m.batches.map((b) => b.inputIds.length)).toEqual([3, 2, 1]);
    expect(m.batches.every((b) => b.inputIds.length * (b.inputIds[0].length + 2) <= 20)).toBe(true);
    expect(m.batches.every((b) => b.labelTokens === 12)).toBe(true);
    expect(m.tokens).toBe(29 + 12);
    // An example larger than the budget still gets its own micro-batch.
    expect(microBatches(ex, { padTokenId: 0 }, 5).batches).toHaveLength(6);
  });
});

describe('spanCorrupt', () => {
  it('drops about 15% of the tokens in sentinel-marked spans that the target restores (T5 span corruption)', () => {
    const ids = Array.from({ length: 80 }, (_, i) => 3 + i);
    const sentinel = (i: number) => 383 - i;
    const out = spanCorrupt(ids, Rng.fromSeed(5), sentinel, 1, { noiseDensity: 0.15, meanSpanLength: 4 });
    // Rebuild the text: each sentinel in the input is replaced by what follows it in the target.
    const spans = new Map<number, number[]>();
    let cur = -1;
    for (const t of out.labels.slice(0, -1)) {
      if (t >= 300) spans.set((cur = t), []);
      else spans.get(cur)?.push(t);
    }
    const rebuilt = out.inputIds.slice(0, -1).flatMap((t) => (t >= 300 ? (spans.get(t) ?? []) : [t]));
    expect(rebuilt).toEqual(ids);
    const dropped = [...spans.values()].reduce((s, x) => s + x.length, 0);
    expect(dropped).toBe(12);
    expect(spans.size).toBe(3);
    expect(out.inputIds.at(-1)).toBe(1);
    expect(out.labels.at(-1)).toBe(1);
  });
});

describe('learningRate', () => {
  it('warms up linearly, then decays to the final fraction', () => {
    const s = { peak: 1, warmupSteps: 4, decay: 'linear' as const, finalFraction: 0.1 };
    expect([0, 1, 2, 3].map((i) => learningRate(s, i, 14))).toEqual([0.25, 0.5, 0.75, 1]);
    expect(learningRate(s, 4, 14)).toBe(1);
    expect(learningRate(s, 13, 14)).toBeCloseTo(0.1, 12);
    expect(learningRate({ ...s, decay: 'cosine' }, 13, 14)).toBeCloseTo(0.1, 12);
    expect(learningRate({ ...s, decay: 'constant' }, 13, 14)).toBe(1);
  });
});
