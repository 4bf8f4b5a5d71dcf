/**
 * src/rng.ts: the one generator of the task generators, trainers and few-shot sampling. Its
 * draws are pinned, because the shipped default (modules/) was built from them: a change here, or
 * in any generator, silently detaches the committed modules from the data they claim to come from.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Rng as OptimizerRng } from '../src/adapt/rng.ts';
import { Rng, derivedRng, splitMixState } from '../src/rng.ts';
import { taskExamples } from '../src/tasks/dataset.ts';
import { listTasks } from '../src/tasks/registry.ts';

describe('Rng (src/rng.ts)', () => {
  it('draws the pinned streams', () => {
    const a = Rng.fromSeed(7);
    expect([a.int(0, 999), a.int(0, 999), a.int(0, 999)]).toEqual([80, 78, 971]);
    expect(a.float()).toBe(0.3911503083840465);
    expect(a.normal()).toBe(-1.2595196259350976);
    expect(derivedRng(0, 'epoch', 3).shuffle([0, 1, 2, 3, 4, 5, 6, 7])).toEqual([7, 0, 4, 5, 1, 3, 6, 2]);
  });

  it('shares its seeding with the optimisers’ generator', () => {
    for (const seed of [0, 1, 42, -5, 0xffffffff]) {
      expect(OptimizerRng.fromSeed(seed).state().words).toEqual(splitMixState(seed));
    }
  });

  it('restores from state() to the identical stream', () => {
    const r = Rng.fromSeed(3);
    r.normal();
    const copy = Rng.fromState(r.state());
    expect(Array.from({ length: 5 }, () => copy.float())).toEqual(Array.from({ length: 5 }, () => r.float()));
    expect(() => Rng.fromState([1, 2, 3])).toThrow(/RNG state must be 4 integers/);
    expect(() => r.int(3, 2)).toThrow(/bad range/);
  });

  it('generates every task’s splits exactly as when the shipped default was built', () => {
    // If this fails on purpose (a generator or the RNG changed), rebuild modules/ with
    // scripts/build-default.ts and update the digest.
    const h = createHash('sha256');
    for (const t of listTasks()) h.update(JSON.stringify([t.name, taskExamples(t, 'train'), taskExamples(t, 'test')]));
    expect(h.digest('hex')).toBe('8b2e2d4991e2becc70d24dc66b18c62b68bb4fbe82406929b320c1a7d23d029f');
  });
});
