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
 * The same class serves the optimisers (CMA-ES, random search): `uniform()` and `normal()` are
 * their draws, `int`/`float` and what is built on them the data side's. Both families of draws are
 * pinned (test/rng.test.ts): the shipped default library was built from the data draws, and the
 * optimisers' runs are resumed from saved states bit for bit.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';
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

/** JSON-serialisable snapshot of an `Rng` (trainer checkpoints and ADAPT runs store it). */
export interface RngState {
  readonly kind: 'xoroshiro128plus';
  /** The generator's four 32-bit words, as pure-rand's `getState()` returns them. */
  readonly words: number[];
  /** Second Box–Muller variate of `normal()` not yet handed out, or null. */
  readonly spare: number | null;
}

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

export class Rng {
  private readonly gen: JumpableRandomGenerator;
  private spare: number | null;

  private constructor(gen: JumpableRandomGenerator, spare: number | null = null) {
    this.gen = gen;
    this.spare = spare;
  }

  /** A generator from an integer seed in [-2^31, 2^32), its state filled by SplitMix (see splitMixState). */
  static fromSeed(seed: number): Rng {
    if (!Number.isInteger(seed) || seed < -0x80000000 || seed >= 0x100000000) {
      throw new LorahubError('INTERNAL', `rng seed: expected an integer in [-2^31, 2^32), got ${seed}`);
    }
    return new Rng(xoroshiro128plusFromState(splitMixState(seed)));
  }

  /**
   * A generator seeded the way pure-rand's `xoroshiro128plus(seed)` seeds it (weaker for nearby
   * seeds, see splitMixState). Only module sampling uses it: `compose --seed N` has always drawn
   * its N modules from this stream, and the README's tables depend on which modules those are.
   */
  static fromPureRandSeed(seed: number): Rng {
    return new Rng(xoroshiro128plus(seed | 0));
  }

  /**
   * Restores a generator saved with `state()`; it continues the identical stream. A bare array of
   * four words is the state format trainer checkpoints used before `RngState` (no spare).
   */
  static fromState(state: RngState | readonly number[]): Rng {
    const words = Array.isArray(state) ? (state as readonly number[]) : (state as RngState).words;
    const spare = Array.isArray(state) ? null : (state as RngState).spare;
    const kind = Array.isArray(state) ? 'xoroshiro128plus' : (state as RngState).kind;
    if (kind !== 'xoroshiro128plus' || !Array.isArray(words) || words.length !== 4 || !words.every(Number.isInteger)) {
      throw new LorahubError('BAD_FILE', `rng state: expected {kind: "xoroshiro128plus", words: [4 integers], spare}, got ${JSON.stringify(state)}`);
    }
    if (spare !== null && !Number.isFinite(spare)) {
      throw new LorahubError('BAD_FILE', `rng state: spare must be null or finite, got ${spare}`);
    }
    return new Rng(xoroshiro128plusFromState(words), spare);
  }

  /** JSON-serialisable snapshot; `Rng.fromState(rng.state())` continues the same stream. */
  state(): RngState {
    return { kind: 'xoroshiro128plus', words: [...this.gen.getState()], spare: this.spare };
  }

  /** An independent copy at the same position in the stream. */
  clone(): Rng {
    return new Rng(this.gen.clone(), this.spare);
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

  /**
   * Uniform on [0, 1) with 53 random bits: the optimisers' uniform.
   *
   * Takes the high 27 and 26 bits of two outputs, like the reference Mersenne Twister's
   * `genrand_res53` (Matsumoto & Nishimura): the lowest bits of xoroshiro128+ are its weakest
   * (Blackman & Vigna §10), so they are the ones dropped. `float()` (pure-rand's `uniformFloat64`)
   * keeps the low bits; it stays as it is because the data streams pinned above are built on it.
   */
  uniform(): number {
    const a = this.gen.next() >>> 5; // 27 bits
    const b = this.gen.next() >>> 6; // 26 bits
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  }

  /**
   * Standard normal N(0, 1), by the Box–Muller transform (Box & Muller, Ann. Math. Stat. 1958):
   * two `uniform()`s give two independent normals; the second is kept (in `state()`) for the next call.
   */
  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const u1 = 1 - this.uniform(); // in (0, 1], so log(u1) is finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const phi = 2 * Math.PI * u2;
    this.spare = r * Math.sin(phi);
    return r * Math.cos(phi);
  }

  /** A fresh array of `n` standard normals. */
  normals(n: number): number[] {
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /**
   * `n` normals with standard deviation `std`, as float32, one Box–Muller value per pair of
   * `float()`s (the second discarded): the trainers' weight initialisation. The shipped base was
   * drawn from this stream, so it stays as it is; new code wants `normal()`.
   */
  fillNormal(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let u = 0;
      while (u === 0) u = this.float();
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float()) * std;
    }
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
