import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend.ts';
import { compose } from '../../src/lora/compose.ts';
import type { LoraModule } from '../../src/lora/module.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import type { Tokenizer } from '../../src/tokenizers/types.ts';
import { parseDyLoraRange, sampleRank, truncateDyLora } from '../../src/train/dylora.ts';
import { disposeLoraParams, initLoraParams, loraTargetPaths, trainLora, type TrainLoraOptions } from '../../src/train/lora.ts';
import { Rng } from '../../src/rng.ts';
import { T5_GATED, moduleLoss } from '../helpers.ts';

let model: T5Model;
let tok: Tokenizer;
const examples = Array.from({ length: 16 }, (_, i) => ({ input: `number ${i}`, target: i % 2 ? 'odd' : 'even' }));

beforeAll(async () => {
  await initBackend();
  model = T5Model.load(`${T5_GATED}/model`);
  tok = loadTokenizer(`${T5_GATED}/model`);
});

afterAll(() => model.dispose());

function options(over: Partial<TrainLoraOptions>): TrainLoraOptions {
  return {
    model,
    tokenizer: tok,
    examples,
    spec: { rank: 4, alpha: 8, targets: ['q', 'v'], dylora: { min: 1, max: 4 } },
    steps: 30,
    batchSize: 8,
    lr: { peak: 1e-2, warmupSteps: 0, decay: 'constant', finalFraction: 1 },
    seed: 11,
    name: 'parity-dylora',
    baseModelNameOrPath: '../model',
    ...over,
  };
}

function lossWith(module?: LoraModule): number {
  return moduleLoss(model, tok, examples, module);
}

describe('DyLoRA', () => {
  it('parses rmin:rmax', () => {
    expect(parseDyLoraRange('2:8')).toEqual({ min: 2, max: 8 });
    for (const bad of ['0:4', '5:4', '4', 'a:b']) expect(() => parseDyLoraRange(bad)).toThrow(/rmin:rmax/);
  });

  it('each step updates only component b−1 (row of A, column of B); undrawn components stay exactly as initialised', async () => {
    const range = { min: 1, max: 4 };
    const seed = 3;
    // The loop's random stream is Rng(seed) and each step's rank is its next draw.
    const rng = Rng.fromSeed(seed);
    const drawn = new Set([0, 1, 2].map(() => sampleRank(rng, range) - 1));
    expect(drawn.size).toBeLessThan(4);
    const init = initLoraParams(model.config, loraTargetPaths(model.config, ['q', 'v']), 4, seed);
    const initA = init.map((p) => Array.from(p.a.dataSync()));
    disposeLoraParams(init);
    const { module } = await trainLora(options({ steps: 3, seed }));
    [...module.targets.values()].forEach((t, i) => {
      for (let c = 0; c < 4; c++) {
        const row = Array.from(t.a.subarray(c * t.dIn, (c + 1) * t.dIn));
        const col = Array.from({ length: t.dOut }, (_, o) => t.b[o * 4 + c]);
        if (drawn.has(c)) {
          // B starts at 0, so A's first gradient is 0: a drawn component shows first in B.
          expect(col.some((x) => x !== 0)).toBe(true);
        } else {
          expect(row).toEqual(initA[i].slice(c * t.dIn, (c + 1) * t.dIn));
          expect(col.every((x) => x === 0)).toBe(true);
        }
      }
    });
  });

  it('trains one module that works truncated to ranks 1, 2 and 4, and composes with modules of other ranks by truncation', async () => {
    const base = lossWith();
    const { module: dy } = await trainLora(options({}));
    expect(dy.metadata?.lorahub_dylora).toBe(JSON.stringify({ min: 1, max: 4, scaling: 'lora_alpha/b' }));
    const losses = [1, 2, 4].map((r) => lossWith(truncateDyLora(dy, r)));
    for (const l of losses) expect(l).toBeLessThan(0.7 * base);
    // Truncation keeps lora_alpha: rank r means scaling α/r, as in training; the full rank is the module itself.
    expect(truncateDyLora(dy, 2).targets.values().next().value?.scaling).toBe(4);
    expect(lossWith(truncateDyLora(dy, 4))).toBe(lossWith(dy));
    expect(() => truncateDyLora(dy, 5)).toThrow(/ranks 1–4/);

    const plain = (rank: number, seed: number) => trainLora(options({ spec: { rank, alpha: 2 * rank, targets: ['q', 'v'] }, steps: 3, seed })).then((r) => r.module);
    const [m2, m8] = [await plain(2, 1), await plain(8, 2)];
    const dy2 = truncateDyLora(dy, 2);
    // With all weight on the DyLoRA module, the composition IS its rank-2 truncation.
    const only = compose([dy2, m2, m8], [1, 0, 0], { harmonize: 'truncate' });
    for (const [path, t] of only.targets) {
      const want = dy2.targets.get(path);
      expect(t.r).toBe(2);
      expect(t.a).toEqual(want?.a);
      expect(t.b).toEqual(want?.b);
      expect(t.scaling).toBe(want?.scaling);
    }
    const mixed = compose([dy2, m2, m8], [0.6, 0.3, 0.3], { harmonize: 'truncate' });
    expect([...mixed.targets.values()].every((t) => t.r === 2)).toBe(true);
    expect(Number.isFinite(lossWith(mixed))).toBe(true);
  });
});
