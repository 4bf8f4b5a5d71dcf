import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.ts';
import { t5ConfigFromHf } from '../../src/models/t5/config.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { getTask, listTasks } from '../../src/tasks/registry.ts';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import {
  assertUpstreamOnly,
  baseVocabulary,
  baseHfConfig,
  disposeParams,
  initBaseParams,
  modelOverParams,
  saveBaseModel,
  trainBase,
  upstreamMixture,
  upstreamTasks,
  type TrainBaseOptions,
} from '../../src/train/base.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { meanTokenLoss } from '../../src/train/evaluate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-base-test-'));

beforeAll(async () => {
  await initBackend();
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function options(over: Partial<TrainBaseOptions> = {}): TrainBaseOptions {
  return {
    size: 'tiny',
    steps: 4,
    pretrainSteps: 2,
    batchSize: 8,
    lr: { peak: 3e-3, warmupSteps: 0, decay: 'constant', finalFraction: 1 },
    seed: 1,
    name: 'lorahub/test-base',
    maxPerTask: 3,
    ...over,
  };
}

function values(params: Map<string, tf.Variable>): Float32Array[] {
  return [...params.values()].map((v) => v.dataSync() as Float32Array);
}

describe('base model', () => {
  it('mixes only upstream tasks and refuses a target task', () => {
    const tasks = upstreamTasks();
    expect(tasks.length).toBeGreaterThan(20);
    const targets = listTasks().filter((t) => t.kind === 'target');
    expect(targets.length).toBeGreaterThan(0);
    expect(tasks.some((t) => targets.some((x) => x.name === t.name))).toBe(false);
    expect(() => assertUpstreamOnly([...tasks, getTask('boolean_expressions')])).toThrow(/must not see target tasks.*boolean_expressions/);
    expect(() => upstreamMixture([getTask('boolean_expressions')])).toThrow(/target/);
  });

  it('initialises with HF T5 standard deviations, seeded', () => {
    const cfg = t5ConfigFromHf(baseHfConfig('tiny', 'x'));
    const a = initBaseParams(cfg, 7);
    const b = initBaseParams(cfg, 7);
    const c = initBaseParams(cfg, 8);
    expect(values(b)).toEqual(values(a));
    expect(values(c)[0]).not.toEqual(values(a)[0]);
    const std = (name: string) => {
      const x = Array.from((a.get(name) as tf.Variable).dataSync());
      return Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    };
    expect(std('enc.0.self.q')).toBeCloseTo((64 * 16) ** -0.5, 2);
    expect(std('enc.0.ffn.wo')).toBeCloseTo(128 ** -0.5, 2);
    expect(std('embed')).toBeCloseTo(1, 1);
    expect(Array.from((a.get('enc.0.selfNorm') as tf.Variable).dataSync()).every((x) => x === 1)).toBe(true);
    for (const p of [a, b, c]) disposeParams(p);
  });

  it('saves an HF checkpoint that loads back to the same model (F32 exact, F16 close)', () => {
    const raw = baseHfConfig('tiny', 'lorahub/t5-byte-tiny');
    const cfg = t5ConfigFromHf(raw);
    const params = initBaseParams(cfg, 3);
    const input = { inputIds: [[40, 50, 60, 1]] };
    const dec = [[0, 70, 80]];
    const logits = (m: T5Model) => tf.tidy(() => m.forward(input, dec).logits.dataSync() as Float32Array);
    const want = logits(modelOverParams(cfg, params));
    for (const dtype of ['F32', 'F16'] as const) {
      const dir = join(tmp, `save-${dtype}`);
      saveBaseModel(dir, raw, params, dtype);
      const back = T5Model.load(dir);
      const got = logits(back);
      if (dtype === 'F32') expect(got).toEqual(want);
      else got.forEach((x, i) => expect(Math.abs(x - want[i])).toBeLessThan(0.05));
      back.dispose();
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(json).toMatchObject({ _name_or_path: 'lorahub/t5-byte-tiny', vocab_size: 384, feed_forward_proj: 'gated-gelu', tie_word_embeddings: false });
      expect(loadTokenizer(dir).encode('a')).toEqual([100, 1]);
    }
    disposeParams(params);
  });

  it('training lowers the loss on the upstream mixture (span corruption, then instructions)', async () => {
    const tok = new ByteTokenizer({ extraIds: 125, modelVocabSize: 384 });
    const held = upstreamMixture(upstreamTasks(), 2);
    const cfg = t5ConfigFromHf(baseHfConfig('tiny', 'x'));
    const init = initBaseParams(cfg, 1);
    const before = meanTokenLoss(modelOverParams(cfg, init), tok, held);
    disposeParams(init);
    const start = tf.memory().numTensors;
    const r = await trainBase(options({ steps: 24, pretrainSteps: 4, maxPerTask: 8, tokenizer: 'bytes' }));
    const after = meanTokenLoss(r.model, r.tokenizer, held);
    disposeParams(r.params);
    expect(tf.memory().numTensors).toBe(start);
    expect(after).toBeLessThan(before - 1.5);
  });

  it('trains on the word vocabulary, and saves a tokenizer.json that loads back to the same ids', async () => {
    const r = await trainBase(options({ steps: 24, pretrainSteps: 4, maxPerTask: 8, tokenizer: 'words' }));
    const dir = join(tmp, 'words');
    try {
      const vocab = baseVocabulary('words', upstreamMixture(upstreamTasks(), 8).flatMap((e) => [e.input, e.target]));
      expect(r.tokenizer.vocabSize).toBe(vocab.tokenizer.vocabSize);
      expect(r.config).toMatchObject({ vocab_size: r.tokenizer.vocabSize, lorahub_training: { tokenizer: 'words' } });
      expect(r.tokenizer.vocabSize).toBeGreaterThan(384);
      const held = upstreamMixture(upstreamTasks(), 2);
      const cfg = t5ConfigFromHf(r.config);
      const init = initBaseParams(cfg, 1);
      const before = meanTokenLoss(modelOverParams(cfg, init), r.tokenizer, held);
      disposeParams(init);
      expect(meanTokenLoss(r.model, r.tokenizer, held)).toBeLessThan(before - 1.5);
      saveBaseModel(dir, r.config, r.params, 'F32', r.tokenizerFiles);
      const loaded = loadTokenizer(dir);
      expect(loaded.kind).toBe('tokenizer.json');
      for (const e of held.slice(0, 20)) expect(loaded.encode(e.input)).toEqual(r.tokenizer.encode(e.input));
      expect(JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'))).toMatchObject({ tokenizer_class: 'T5Tokenizer', extra_ids: 125 });
    } finally {
      disposeParams(r.params);
    }
    // A checkpoint of one vocabulary does not resume with the other.
    const ck = join(tmp, 'ck-words');
    const w = await trainBase(options({ steps: 2, tokenizer: 'words', checkpoint: { dir: ck, every: 0 } }));
    disposeParams(w.params);
    await expect(trainBase(options({ steps: 3, tokenizer: 'bytes', checkpoint: { dir: ck, every: 0 }, resume: true }))).rejects.toThrow(/tokenizer/);
    // The checkpoint names the vocabulary by its tokenizer.json's hash, so one counted from other
    // task data does not resume either.
    const json = w.tokenizerFiles.find((f) => f.name === 'tokenizer.json')!.data as string;
    expect(readCheckpoint(ck)?.state.run.vocabulary).toBe(createHash('sha256').update(json).digest('hex').slice(0, 16));
  });

  it('is seeded and resumes bit-identically across the phase change', async () => {
    const a = await trainBase(options({ steps: 4 }));
    const b = await trainBase(options({ steps: 4 }));
    expect(values(b.params)).toEqual(values(a.params));
    const ac = new AbortController();
    const dir = join(tmp, 'ck');
    await expect(
      trainBase(options({ steps: 4, checkpoint: { dir, every: 0 }, signal: ac.signal, hooks: { afterStep: ({ step }) => step === 1 && ac.abort() } })),
    ).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(readCheckpoint(dir)?.state.cursor).toMatchObject({ span: { epoch: 0, index: 1 }, instruct: { epoch: 0, index: 0 } });
    const c = await trainBase(options({ steps: 4, checkpoint: { dir, every: 0 }, resume: true }));
    expect(c.loop.losses).toEqual(a.loop.losses);
    expect(values(c.params)).toEqual(values(a.params));
    for (const r of [a, b, c]) disposeParams(r.params);
  });

  it('trains on the ort engine: the losses tfjs gives to round-off, bit-identical resume, no tensors leaked', async () => {
    const ort = { name: 'ort' as const, threads: 1 };
    const start = tf.memory().numTensors;
    const tfjs = await trainBase(options({ steps: 6, pretrainSteps: 2 }));
    const a = await trainBase(options({ steps: 6, pretrainSteps: 2, engine: ort }));
    // The same computation: per-step losses agree to float32 round-off over a few Adam steps.
    a.loop.losses.forEach((l, i) => expect(Math.abs(l - tfjs.loop.losses[i])).toBeLessThan(1e-3 * tfjs.loop.losses[i]));
    const dir = join(tmp, 'ck-ort');
    const ac = new AbortController();
    await expect(
      trainBase(options({ steps: 6, pretrainSteps: 2, engine: ort, checkpoint: { dir, every: 0 }, signal: ac.signal, hooks: { afterStep: ({ step }) => step === 3 && ac.abort() } })),
    ).rejects.toMatchObject({ code: 'INTERRUPTED' });
    // A checkpoint of one engine does not resume on the other (the trajectory would change).
    await expect(trainBase(options({ steps: 6, pretrainSteps: 2, checkpoint: { dir, every: 0 }, resume: true }))).rejects.toThrow(/engine/);
    const c = await trainBase(options({ steps: 6, pretrainSteps: 2, engine: ort, checkpoint: { dir, every: 0 }, resume: true }));
    expect(c.loop.losses).toEqual(a.loop.losses);
    expect(values(c.params)).toEqual(values(a.params));
    for (const r of [tfjs, a, c]) disposeParams(r.params);
    expect(tf.memory().numTensors).toBe(start);
  });
});
