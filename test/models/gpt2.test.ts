/**
 * GPT-2: config.json with transformers' defaults, and the checkpoint layouts found on the Hub
 * (keys without "transformer.", the causal-mask buffers older files carry, a tied head stored
 * anyway, an untied head, F16) all read as the fixture's model on both engines: same losses as
 * transformers.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type EngineName } from '../../src/engine/index.ts';
import type { OrtModel } from '../../src/engine/ort/index.ts';
import type { TfjsCausalModel } from '../../src/engine/tfjs/index.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.ts';
import { gpt2ConfigFromHf } from '../../src/models/gpt2/config.ts';
import { FIXTURES, errorOf, readJson } from '../helpers.ts';

const F = join(FIXTURES, 'gpt2');
const tmp = mkdtempSync(join(tmpdir(), 'lorahub-gpt2-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('config.json with transformers defaults', () => {
  it('an empty config is GPT-2 small', () => {
    const c = gpt2ConfigFromHf({ model_type: 'gpt2' });
    expect(c).toMatchObject({ vocabSize: 50257, nEmbd: 768, nHead: 12, nLayer: 12, nInner: 3072, nPositions: 1024, activation: 'gelu_new', layerNormEpsilon: 1e-5 });
    expect(c).toMatchObject({ scaleAttnWeights: true, scaleAttnByInverseLayerIdx: false, tieWordEmbeddings: true, bosTokenId: 50256, eosTokenIds: [50256] });
    // GPT-2 has no pad token: padding carries eos.
    expect(c.padTokenId).toBe(50256);
  });

  it('reads the fixture config (n_inner null → 4·n_embd, tie_word_embeddings omitted → true)', () => {
    const raw = readJson<Record<string, unknown>>(join(F, 'model', 'config.json'));
    expect(gpt2ConfigFromHf(raw)).toMatchObject({ nEmbd: 64, nHead: 4, nLayer: 3, nInner: 256, nPositions: 128, tieWordEmbeddings: true, padTokenId: 0, eosTokenId: 2 });
  });

  it('refuses what it does not compute, naming the field', () => {
    expect(errorOf(() => gpt2ConfigFromHf({ model_type: 'gpt2', add_cross_attention: true }, 'g/config.json')).message).toMatch(/^g\/config\.json: "add_cross_attention": true/);
    expect(errorOf(() => gpt2ConfigFromHf({ model_type: 'gpt2', activation_function: 'quick_gelu' }, 'g/config.json')).message).toMatch(/^g\/config\.json: "activation_function" "quick_gelu" is not supported/);
    expect(errorOf(() => gpt2ConfigFromHf({ model_type: 'gpt2', n_embd: 10, n_head: 4 })).code).toBe('BAD_CONFIG');
  });
});

interface Case {
  name: string;
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  labels: number[][];
  expected: { per_example_loss_sum: number[]; per_example_token_count: number[] };
}

type Edit = (t: TensorToWrite[]) => TensorToWrite[];

const LAYOUTS: { name: string; tensors: Edit; config?: (c: Record<string, unknown>) => void; tol?: number }[] = [
  { name: 'keys without "transformer." (a bare GPT2Model checkpoint)', tensors: (t) => t.map((x) => ({ ...x, name: x.name.replace(/^transformer\./, '') })) },
  {
    name: 'with the attn.bias / attn.masked_bias buffers of older files',
    tensors: (t) => [...t, ...[0, 1, 2].flatMap((i) => [{ name: `transformer.h.${i}.attn.bias`, dtype: 'F32' as const, shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) }, { name: `transformer.h.${i}.attn.masked_bias`, dtype: 'F32' as const, shape: [], data: Float32Array.of(-1e4) }])],
  },
  { name: 'tied, lm_head.weight stored anyway', tensors: (t) => [...t, { ...(t.find((x) => x.name === 'transformer.wte.weight') as TensorToWrite), name: 'lm_head.weight' }] },
  { name: 'untied head (a copy of wte)', config: (c) => (c.tie_word_embeddings = false), tensors: (t) => [...t, { ...(t.find((x) => x.name === 'transformer.wte.weight') as TensorToWrite), name: 'lm_head.weight' }] },
  // F16 rounds the weights: the losses move by the rounding, not by a layout error.
  { name: 'F16', tensors: (t) => t.map((x) => ({ ...x, dtype: 'F16' })), tol: 5e-3 },
];

const ENGINES: EngineName[] = ['ort', 'tfjs'];

describe.each(LAYOUTS.map((l, i) => ({ ...l, i })))('checkpoint $name', (l) => {
  it.each(ENGINES)('gives the fixture losses on the %s engine', async (engine) => {
    const dir = join(tmp, `g${l.i}-${engine}`);
    cpSync(join(F, 'model'), dir, { recursive: true });
    const cfg = readJson<Record<string, unknown>>(join(dir, 'config.json'));
    l.config?.(cfg);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    const { tensors, metadata } = readSafetensors(join(dir, 'model.safetensors'));
    writeSafetensors(join(dir, 'model.safetensors'), l.tensors([...tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: t.data }))), metadata);
    const model = (await loadModel(dir, { engine, threads: 2 })) as OrtModel | TfjsCausalModel;
    try {
      for (const c of readJson<{ cases: Case[] }>(join(F, 'cases.json')).cases.slice(0, 3)) {
        const [got] = await model.scoreCausal({ inputIds: c.input_ids, attentionMask: c.attention_mask, positionIds: c.position_ids, labels: c.labels });
        expect(got.tokens).toEqual(c.expected.per_example_token_count);
        got.sum.forEach((s, i) => expect(Math.abs(s - c.expected.per_example_loss_sum[i]) / c.expected.per_example_loss_sum[i], `${c.name} ${i}`).toBeLessThan(l.tol ?? 1e-5));
      }
    } finally {
      await model.dispose();
    }
  });
});

it.each(ENGINES)('an unexpected tensor is refused, naming it (%s engine)', async (engine) => {
  const dir = join(tmp, `extra-${engine}`);
  cpSync(join(F, 'model'), dir, { recursive: true });
  const { tensors, metadata } = readSafetensors(join(dir, 'model.safetensors'));
  writeSafetensors(join(dir, 'model.safetensors'), [...[...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })), { name: 'score.weight', dtype: 'F32', shape: [2, 64], data: new Float32Array(128) }], metadata);
  await expect(loadModel(dir, { engine, threads: 2 })).rejects.toThrow(/unexpected tensor "score\.weight" for this config/);
});
