/**
 * Seeded random numbers for data generation and training, over pure-rand's xoroshiro128+
 * (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018).
 *
 * One class serves the task generators, the trainers (data order, span corruption, weight init,
 * DyLoRA rank draws) and few-shot sampling. Its state can be written to a checkpoint and restored
 * exactly, so a resumed run draws the same numbers as an uninterrupted one. Randomness that only
 * depends on "where we are" (a dataset split, the order of epoch e) is derived from (seed, label)
 * instead of advancing a shared stream: it needs no saved state, and one consumer cannot shift
 * another's numbers.
 *
 * The optimisers keep their own generator (src/adapt/rng.ts: 53-bit uniforms from the high bits,
 * Box–Muller pairs) and share only the seeding below; the draws here must stay what they are,
 * because the shipped default library was built from them (test/rng.test.ts pins them).
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { LorahubError } from './errors.ts';

/**
 * xoroshiro128+'s four state words from a 32-bit seed, filled by SplitMix32 (golden-ratio Weyl
 * increment, MurmurHash3's fmix32 finaliser), as Vigna recommends for the xoshiro family.
 *
 * Why not pure-rand's `xoroshiro128plus(seed)`: it starts from (-1, ~seed, seed, 0), so nearby
 * seeds give nearly the same first outputs (seeds 0 and 4 draw the same first ranks in [1, 4]).
 */
export function splitMixState(seed: number): number[] {
  const words: number[] = [];
  let x = seed | 0;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) | 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    words.push((z ^ (z >>> 16)) | 0);
  }
  // xoroshiro's all-zero state is a fixed point.
  if (!words.some((w) => w !== 0)) words[0] = 1;
  return words;
}

export class Rng {
  private readonly gen: RandomGenerator;

  private constructor(gen: RandomGenerator) {
    this.gen = gen;
  }

  /** A generator from a 32-bit seed, its state filled by SplitMix (see splitMixState). */
  static fromSeed(seed: number): Rng {
    return new Rng(xoroshiro128plusFromState(splitMixState(seed)));
  }

  /** Restores a generator from `state()` (4 signed 32-bit integers). */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || !state.every((x) => Number.isInteger(x))) {
      throw new LorahubError('BAD_FILE', `RNG state must be 4 integers, got ${JSON.stringify(state)}`);
    }
    return new Rng(xoroshiro128plusFromState(state));
  }

  state(): number[] {
    return [...this.gen.getState()];
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new LorahubError('INTERNAL', `Rng.int: bad range [${lo}, ${hi}]`);
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

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new LorahubError('INTERNAL', 'Rng.pick: empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** Index drawn with probability proportional to weights[i]. */
  weightedIndex(weights: readonly number[]): number {
    const total = weights.reduce((s, w) => s + w, 0);
    if (!(total > 0)) throw new LorahubError('INTERNAL', 'Rng.weightedIndex: weights must sum to > 0');
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
      throw new LorahubError('INTERNAL', `Rng.sample: cannot draw ${k} distinct items from ${items.length}`);
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

/** A generator fixed by (seed, labels): e.g. derivedRng(seed, 'epoch', 3). */
export function derivedRng(seed: number, ...labels: (string | number)[]): Rng {
  return Rng.fromSeed(deriveSeed(seed, labels.join('/')));
}
