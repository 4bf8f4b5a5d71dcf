/**
 * Adapters beyond the fixture's (r=4, q/v): every Linear a LoRA may target, other ranks,
 * rslora. The LoRA forward (y = xW + s·(xAᵀ)Bᵀ) is checked against the merged checkpoint
 * (W + s·BA, computed independently in merge.ts), and through a PEFT write/read round trip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/rng.ts';
import { initBackend } from '../../src/backend.ts';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import { disposeDeltas, moduleDeltas } from '../../src/models/t5/deltas.ts';
import { mergeIntoCheckpoint } from '../../src/models/merge.ts';
import type { LoraModule, LoraTarget } from '../../src/lora/module.ts';
import { t5LinearShape } from '../../src/models/t5/checkpoint.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { scaledNormals } from '../../src/models/t5/random.ts';
import { T5_GATED, maxAbsDiff } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-targets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let model: T5Model;
let fixture: LoraModule;

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
  fixture = await readAdapter(`${T5_GATED}/adapters/a0`);
});

const ids = [[20, 30, 40, 50, 60, 70, 1], [80, 90, 1, 0, 0, 0, 0]];
const mask = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]];
const dec = [[0, 11, 12, 13], [0, 14, 15, 16]];

function everyLinear(rank: number, rslora: boolean, seed: number): LoraModule {
  const rng = Rng.fromSeed(seed);
  const cfg = model.config;
  const paths: string[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    for (const n of ['q', 'k', 'v', 'o']) paths.push(`encoder.block.${i}.layer.0.SelfAttention.${n}`);
    for (const n of ['wi_0', 'wi_1', 'wo']) paths.push(`encoder.block.${i}.layer.1.DenseReluDense.${n}`);
  }
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    for (const n of ['q', 'k', 'v', 'o']) paths.push(`decoder.block.${i}.layer.0.SelfAttention.${n}`, `decoder.block.${i}.layer.1.EncDecAttention.${n}`);
    for (const n of ['wi_0', 'wi_1', 'wo']) paths.push(`decoder.block.${i}.layer.2.DenseReluDense.${n}`);
  }
  const alpha = 16;
  const scaling = rslora ? alpha / Math.sqrt(rank) : alpha / rank;
  const targets = new Map<string, LoraTarget>();
  for (const path of paths.sort()) {
    const [dOut, dIn] = t5LinearShape(cfg, path) as [number, number];
    targets.set(path, { path, r: rank, dIn, dOut, a: scaledNormals(rng, rank * dIn, dIn ** -0.5), b: scaledNormals(rng, dOut * rank, 0.05 / scaling), scaling });
  }
  return {
    name: `all-r${rank}${rslora ? '-rs' : ''}`,
    config: { ...fixture.config, r: rank, lora_alpha: alpha, use_rslora: rslora, target_modules: ['q', 'k', 'v', 'o', 'wi_0', 'wi_1', 'wo'] },
    targets,
  };
}

async function forward(m: T5Model, module?: LoraModule): Promise<Float32Array> {
  const deltas = module ? moduleDeltas(module) : undefined;
  const r = m.forward({ inputIds: ids, attentionMask: mask }, dec, deltas);
  const out = (await r.logits.data()) as Float32Array;
  tf.dispose([r.logits, r.encoder]);
  if (deltas) disposeDeltas(deltas);
  return out;
}

describe('LoRA on every Linear type, other ranks, rslora', () => {
  for (const [rank, rslora] of [[1, false], [8, false], [6, true]] as const) {
    it(`rank ${rank}${rslora ? ' (rslora)' : ''}: LoRA forward = merged checkpoint, and survives a PEFT round trip`, async () => {
      const module = everyLinear(rank, rslora, rank);
      const dir = join(tmp, module.name);
      await writeAdapter(dir, module);
      const back = await readAdapter(dir);
      expect(back.targets.size).toBe(module.targets.size);
      for (const [p, t] of module.targets) expect(back.targets.get(p)?.scaling).toBeCloseTo(t.scaling, 12);
      const withLora = await forward(model, back);
      expect(maxAbsDiff(withLora, await forward(model))).toBeGreaterThan(1e-2); // the adapter matters
      const mergedDir = join(tmp, `${module.name}-merged`);
      mergeIntoCheckpoint(`${T5_GATED}/model`, back, mergedDir);
      const merged = T5Model.load(mergedDir);
      expect(maxAbsDiff(withLora, await forward(merged))).toBeLessThan(1e-4);
      merged.dispose();
    });
  }
});
