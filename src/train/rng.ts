/**
 * The trainer's random numbers: xoroshiro128+ (pure-rand) with a state that can be written to a
 * checkpoint and restored exactly, so a resumed run draws the same numbers as an uninterrupted one.
 *
 * Randomness that only depends on "where we are" (the data order of an epoch, the corruption of a
 * batch) is derived from (seed, label) with `derivedRng` instead of advancing a shared stream: it
 * then needs no saved state at all, and one consumer cannot shift another's numbers.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { LorahubError } from '../errors.ts';
import { deriveSeed } from '../tasks/rng.ts';

export class TrainRng {
  private gen: RandomGenerator;

  private constructor(gen: RandomGenerator) {
    this.gen = gen;
  }

  /**
   * pure-rand's xoroshiro128plus(seed) starts from the state (-1, ~seed, seed, 0): nearby seeds
   * then give nearly the same first outputs (seeds 0 and 4 draw the same first ranks in [1, 4]).
   * As Vigna recommends for the xoroshiro family, the state is filled by SplitMix instead.
   */
  static fromSeed(seed: number): TrainRng {
    let x = seed | 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      // SplitMix32 (golden-ratio increment, murmur3's fmix32 finaliser).
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      words.push((z ^ (z >>> 16)) | 0);
    }
    // xoroshiro's all-zero state is a fixed point.
    if (!words.some((w) => w !== 0)) words[0] = 1;
    return new TrainRng(xoroshiro128plusFromState(words));
  }

  /** Restores a generator from `state()` (4 signed 32-bit integers). */
  static fromState(state: readonly number[]): TrainRng {
    if (state.length !== 4 || !state.every((x) => Number.isInteger(x))) {
      throw new LorahubError('BAD_FILE', `RNG state must be 4 integers, got ${JSON.stringify(state)}`);
    }
    return new TrainRng(xoroshiro128plusFromState(state));
  }

  state(): number[] {
    return [...this.gen.getState()];
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return uniformInt(this.gen, lo, hi);
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return uniformFloat64(this.gen);
  }

  /** Standard normal (Box–Muller; the second value is discarded so the state is the whole story). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }

  fillNormal(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** A generator fixed by (seed, labels): e.g. derivedRng(seed, 'epoch', 3). */
export function derivedRng(seed: number, ...labels: (string | number)[]): TrainRng {
  return TrainRng.fromSeed(deriveSeed(seed, labels.join('/')));
}
