/**
 * The engines agree at FLAN-T5-base size (the ADAPT objective at a few weight vectors, 1e-4
 * relative), on a random world from scripts/make-random-world.ts. Slow (writes a 1 GB checkpoint,
 * and a tfjs forward at that size takes seconds): runs with LORAHUB_SLOW_TESTS=1.
 *   LORAHUB_SLOW_TESTS=1 npx vitest run test/engine/scale.test.ts
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFewShotBatch, FewShotObjective } from '../../src/adapt/objective.ts';
import { loadModel } from '../../src/engine/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { loadExamplesFile } from '../../src/tasks/index.ts';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';
import { REPO } from '../helpers.ts';
import { writeWorld } from '../../scripts/lib/world.ts';

const slow = process.env.LORAHUB_SLOW_TESTS === '1';

describe.skipIf(!slow)('engines agree on the FLAN-T5-base-shaped world', () => {
  // Reuse the benchmark's world when it exists (same generator, same seed).
  const benchDir = join(REPO, '.bench', 'world-base');
  const tmp = existsSync(join(benchDir, 'world.json')) ? undefined : mkdtempSync(join(tmpdir(), 'lorahub-scale-'));
  afterAll(() => tmp && rmSync(tmp, { recursive: true, force: true }));

  it('objective at five weight vectors: ort = tfjs within 1e-4 relative', async () => {
    const dir = tmp ?? benchDir;
    if (tmp) await writeWorld({ size: 'base', modules: 20, rank: 16, seed: 0, out: dir });
    const modules = await Promise.all(readdirSync(join(dir, 'modules')).sort().map((m) => readAdapter(join(dir, 'modules', m))));
    const batch = buildFewShotBatch(new ByteTokenizer(), loadExamplesFile(join(dir, 'task.json')));
    const population = [modules.map(() => 0), ...Array.from({ length: 4 }, (_, i) => modules.map((_, j) => 0.6 * Math.sin(1 + 3 * i + j)))];
    const scores: number[][] = [];
    for (const engine of ['ort', 'tfjs']) {
      const model = await loadModel(join(dir, 'base'), { engine });
      try {
        scores.push((await new FewShotObjective(model, modules, batch).scorePopulation(population)).map((r) => r.loss));
      } finally {
        await model.dispose();
      }
    }
    console.log('ort vs tfjs, max relative difference:', Math.max(...scores[0].map((v, i) => Math.abs(v - scores[1][i]) / Math.abs(scores[1][i]))).toExponential(2));
    scores[0].forEach((v, i) => expect(Math.abs(v - scores[1][i]) / Math.abs(scores[1][i]), `candidate ${i}`).toBeLessThan(1e-4));
  }, 600_000);
});
