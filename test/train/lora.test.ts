import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend.ts';
import { LorahubError } from '../../src/errors.ts';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import type { Tokenizer } from '../../src/tokenizers/types.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { initLoraParams, loraTargetPaths, trainLora, disposeLoraParams, type TrainLoraOptions } from '../../src/train/lora.ts';
import { T5_GATED, moduleLoss } from '../helpers.ts';

let model: T5Model;
let tok: Tokenizer;
const tmp = mkdtempSync(join(tmpdir(), 'lorahub-train-test-'));
// A tiny task the fixture model cannot do at first: the parity of a number.
const examples = Array.from({ length: 16 }, (_, i) => ({ input: `number ${i}`, target: i % 2 ? 'odd' : 'even' }));

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
  tok = loadTokenizer(`${T5_GATED}/model`);
});

afterAll(() => {
  model.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

function options(over: Partial<TrainLoraOptions> = {}): TrainLoraOptions {
  return {
    model,
    tokenizer: tok,
    examples,
    spec: { rank: 4, alpha: 8, targets: ['q', 'v'] },
    steps: 8,
    batchSize: 8,
    lr: { peak: 1e-2, warmupSteps: 0, decay: 'constant', finalFraction: 1 },
    seed: 3,
    name: 'parity',
    baseModelNameOrPath: '../model',
    ...over,
  };
}

function lossWith(module?: LoraModule): number {
  return moduleLoss(model, tok, examples, module);
}

function weightsOf(m: LoraModule): Float32Array[] {
  return [...m.targets.values()].flatMap((t) => [t.a, t.b]);
}

describe('LoRA targets and init', () => {
  it('expands short names to every block of encoder and decoder, and refuses names the model lacks', () => {
    const cfg = model.config;
    expect(loraTargetPaths(cfg, ['q'])).toEqual([
      'decoder.block.0.layer.0.SelfAttention.q',
      'decoder.block.0.layer.1.EncDecAttention.q',
      'decoder.block.1.layer.0.SelfAttention.q',
      'decoder.block.1.layer.1.EncDecAttention.q',
      'encoder.block.0.layer.0.SelfAttention.q',
      'encoder.block.1.layer.0.SelfAttention.q',
    ]);
    expect(loraTargetPaths(cfg, ['k', 'o', 'wi_0', 'wi_1', 'wo'])).toHaveLength(6 + 6 + 4 + 4 + 4);
    expect(() => loraTargetPaths(cfg, ['wi'])).toThrow(/no such Linear/);
    expect(() => loraTargetPaths(cfg, ['qkv'])).toThrow(LorahubError);
  });

  it("follows PEFT's init: A ~ U(±1/√dIn) (kaiming_uniform_, a=√5), B = 0, so training starts at the base", () => {
    const params = initLoraParams(model.config, loraTargetPaths(model.config, ['v']), 8, 1);
    const a = Array.from(params[0].a.dataSync());
    const bound = 1 / Math.sqrt(params[0].dIn);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    const std = Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    expect(std).toBeGreaterThan(0.8 * (bound / Math.sqrt(3)));
    expect(std).toBeLessThan(1.2 * (bound / Math.sqrt(3)));
    expect(params.every((p) => p.b.dataSync().every((x) => x === 0))).toBe(true);
    disposeLoraParams(params);
  });
});

describe('trainLora', () => {
  it('lowers the loss on a tiny task and leaks no tensors', async () => {
    const start = tf.memory().numTensors;
    const before = lossWith();
    const { module, loop } = await trainLora(options({ steps: 30 }));
    expect(tf.memory().numTensors).toBe(start);
    const after = lossWith(module);
    expect(after).toBeLessThan(0.5 * before);
    expect(loop.losses).toHaveLength(30);
    expect(loop.tokensPerSecond).toBeGreaterThan(0);
  });

  it('writes a PEFT adapter with the fixture adapters\' config fields and key layout', async () => {
    const { module } = await trainLora(options({ steps: 2 }));
    const dir = join(tmp, 'adapter');
    await writeAdapter(dir, module);
    const back = await readAdapter(dir);
    expect([...back.targets.keys()]).toEqual([...module.targets.keys()]);
    expect(back.config.r).toBe(4);
    expect(back.config.lora_alpha).toBe(8);
    const fixtureDir = `${T5_GATED}/adapters/a0`;
    const ours = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const theirs = JSON.parse(readFileSync(join(fixtureDir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
    // Same base, same targets and rank as fixture a0 (q, v, r 4): identical config and tensor table.
    expect({ ...ours, lora_alpha: theirs.lora_alpha }).toEqual(theirs);
    const a = SafetensorsFile.open(join(dir, 'adapter_model.safetensors'));
    const b = SafetensorsFile.open(join(fixtureDir, 'adapter_model.safetensors'));
    try {
      expect(a.names().sort()).toEqual(b.names().sort());
      for (const n of b.names()) expect(a.info(n).shape).toEqual(b.info(n).shape);
    } finally {
      a.close();
      b.close();
    }
  });

  it('is seeded: the same seed gives bit-identical weights, another seed different ones', async () => {
    const x = await trainLora(options({ steps: 4 }));
    const y = await trainLora(options({ steps: 4 }));
    const z = await trainLora(options({ steps: 4, seed: 4 }));
    expect(weightsOf(y.module)).toEqual(weightsOf(x.module));
    expect(y.loop.losses).toEqual(x.loop.losses);
    expect(weightsOf(z.module)).not.toEqual(weightsOf(x.module));
  });

  it('resumes bit-identically: k steps, interrupt, resume k steps = 2k steps', async () => {
    const k = 5;
    const straight = await trainLora(options({ steps: 2 * k, checkpoint: { dir: join(tmp, 'ck-a'), every: 3 } }));
    const ac = new AbortController();
    const dir = join(tmp, 'ck-b');
    const first = trainLora(
      options({ steps: 2 * k, checkpoint: { dir, every: 3 }, signal: ac.signal, hooks: { afterStep: ({ step }) => step === k && ac.abort() } }),
    );
    await expect(first).rejects.toMatchObject({ code: 'INTERRUPTED', message: expect.stringMatching(`interrupted at step ${k}; checkpoint saved`) });
    expect(readCheckpoint(dir)?.state.step).toBe(k);
    const resumed = await trainLora(options({ steps: 2 * k, checkpoint: { dir, every: 3 }, resume: true }));
    expect(resumed.loop.resumedFrom).toBe(k);
    expect(resumed.loop.losses).toEqual(straight.loop.losses);
    expect(weightsOf(resumed.module)).toEqual(weightsOf(straight.module));
    // A resume with other hyperparameters is refused, naming the difference.
    await expect(trainLora(options({ steps: 2 * k, checkpoint: { dir, every: 3 }, resume: true, seed: 9 }))).rejects.toThrow(/seed = 3.*this run has 9/);
  });

  it('accumulates micro-batch gradients to the full batch\'s (same update, bounded memory)', async () => {
    const whole = await trainLora(options({ steps: 3 }));
    const parts = await trainLora(options({ steps: 3, microBatchTokens: 40 }));
    expect(parts.loop.losses.map((x) => x.toFixed(5))).toEqual(whole.loop.losses.map((x) => x.toFixed(5)));
    const [a, b] = [weightsOf(whole.module), weightsOf(parts.module)];
    a.forEach((w, i) => w.forEach((x, j) => expect(Math.abs(x - b[i][j])).toBeLessThan(1e-5)));
  });

  it('trains on the ort engine as on tfjs (same losses to round-off), seeded, and refuses DyLoRA there', async () => {
    const ort = { name: 'ort' as const, threads: 1 };
    const start = tf.memory().numTensors;
    const tfjs = await trainLora(options({ steps: 10 }));
    const x = await trainLora(options({ steps: 10, engine: ort }));
    const y = await trainLora(options({ steps: 10, engine: ort }));
    expect(tf.memory().numTensors).toBe(start);
    x.loop.losses.forEach((l, i) => expect(Math.abs(l - tfjs.loop.losses[i])).toBeLessThan(1e-3 * tfjs.loop.losses[i]));
    expect(weightsOf(y.module)).toEqual(weightsOf(x.module));
    expect(lossWith(x.module)).toBeLessThan(lossWith());
    await expect(trainLora(options({ spec: { rank: 4, alpha: 8, targets: ['q', 'v'], dylora: { min: 1, max: 4 } }, engine: ort }))).rejects.toThrow(/DyLoRA trains on the tfjs engine/);
  });

  it('stops on a NaN loss with NUMERIC and keeps the last good checkpoint', async () => {
    const dir = join(tmp, 'ck-nan');
    const poison = (step: number, params: Map<string, tf.Variable>) => {
      if (step !== 5) return;
      const p = params.values().next().value as tf.Variable;
      tf.tidy(() => p.assign(tf.fill(p.shape, Number.NaN)));
    };
    await expect(trainLora(options({ steps: 10, checkpoint: { dir, every: 2 }, hooks: { beforeStep: poison } }))).rejects.toMatchObject({
      code: 'NUMERIC',
      message: expect.stringMatching(/^step 6: loss is NaN; kept checkpoint at step 4/),
    });
    const c = readCheckpoint(dir);
    expect(c?.state.step).toBe(4);
    expect([...(c?.tensors.values() ?? [])].every((t) => t.data.every(Number.isFinite))).toBe(true);
  });
});
