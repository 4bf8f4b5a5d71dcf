/**
 * A small seeded RNG for data generation, over pure-rand's xoroshiro128+. Everything the task
 * system draws goes through one of these, so a (seed, label) pair fixes a dataset exactly.
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { LorahubError } from '../errors.ts';

export class Rng {
  private readonly gen: RandomGenerator;

  constructor(seed: number) {
    this.gen = xoroshiro128plus(seed | 0);
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new LorahubError('BAD_ARGUMENT', `Rng.int: bad range [${lo}, ${hi}]`);
    }
    return uniformInt(this.gen, lo, hi);
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return uniformFloat64(this.gen);
  }

  bool(pTrue = 0.5): boolean {
    return this.float() < pTrue;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new LorahubError('BAD_ARGUMENT', 'Rng.pick: empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** Index drawn with probability proportional to weights[i]. */
  weightedIndex(weights: readonly number[]): number {
    const total = weights.reduce((s, w) => s + w, 0);
    if (!(total > 0)) throw new LorahubError('BAD_ARGUMENT', 'Rng.weightedIndex: weights must sum to > 0');
    let u = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    // Float rounding can leave u at ~0 after the last weight; the last positive weight wins.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
    return weights.length - 1;
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

  /** k distinct items, in random order. */
  sample<T>(items: readonly T[], k: number): T[] {
    if (k > items.length) {
      throw new LorahubError('BAD_ARGUMENT', `Rng.sample: cannot draw ${k} distinct items from ${items.length}`);
    }
    const pool = items.slice();
    for (let i = 0; i < k; i++) {
      const j = this.int(i, pool.length - 1);
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, k);
  }
}

/** FNV-1a over UTF-16 code units: a stable 32-bit hash for deriving seeds from labels. */
export function fnv1a(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** An independent stream per purpose ("test", "train", "fewshot"), so splits never share draws. */
export function deriveSeed(seed: number, label: string): number {
  return fnv1a(`${label}#${seed}`) | 0;
}
