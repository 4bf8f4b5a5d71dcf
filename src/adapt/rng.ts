/**
 * Seeded random numbers for the optimisers: uniform on [0, 1) and standard normal.
 *
 * Built on pure-rand's xoroshiro128+ (Blackman & Vigna, "Scrambled linear pseudorandom
 * number generators", 2018). Everything that samples (CMA-ES, random search) takes an `Rng`
 * as an argument instead of reaching for `Math.random`, so that the same seed gives the same
 * run, bit for bit, and a run can be checkpointed and resumed (`state()` / `Rng.fromState`).
 */
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';
import { LorahubError } from '../errors.ts';
import { splitMixState } from '../rng.ts';

/** JSON-serialisable snapshot of an `Rng`. */
export interface RngState {
  readonly kind: 'xoroshiro128plus';
  /** The generator's four 32-bit words, as pure-rand's `getState()` returns them. */
  readonly words: number[];
  /** Second Box–Muller variate not yet handed out, or null. */
  readonly spare: number | null;
}

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

export class Rng {
  private readonly gen: JumpableRandomGenerator;
  private spare: number | null;

  private constructor(gen: JumpableRandomGenerator, spare: number | null) {
    this.gen = gen;
    this.spare = spare;
  }

  /** A generator from an integer seed in [-2^31, 2^32), its state filled by SplitMix (src/rng.ts). */
  static fromSeed(seed: number): Rng {
    if (!Number.isInteger(seed) || seed < -0x80000000 || seed >= 0x100000000) {
      throw new LorahubError('BAD_ARGUMENT', `rng seed: expected an integer in [-2^31, 2^32), got ${seed}`);
    }
    return new Rng(xoroshiro128plusFromState(splitMixState(seed)), null);
  }

  /** Restores a generator saved with `state()`; it continues the identical stream. */
  static fromState(state: RngState): Rng {
    if (state.kind !== 'xoroshiro128plus' || state.words.length !== 4 || !state.words.every(Number.isInteger)) {
      throw new LorahubError('BAD_FILE', 'rng state: expected {kind: "xoroshiro128plus", words: [4 integers]}');
    }
    if (state.spare !== null && !Number.isFinite(state.spare)) {
      throw new LorahubError('BAD_FILE', `rng state: spare must be null or finite, got ${state.spare}`);
    }
    return new Rng(xoroshiro128plusFromState(state.words), state.spare);
  }

  /**
   * Uniform on [0, 1) with 53 random bits.
   *
   * Takes the high 27 and 26 bits of two outputs, like the reference Mersenne Twister's
   * `genrand_res53` (Matsumoto & Nishimura): the lowest bits of xoroshiro128+ are its weakest
   * (Blackman & Vigna §10), so they are the ones dropped. pure-rand's `uniformFloat64` keeps
   * the low bits instead, which is why it is not used here.
   */
  uniform(): number {
    const a = this.gen.next() >>> 5; // 27 bits
    const b = this.gen.next() >>> 6; // 26 bits
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  }

  /**
   * Standard normal N(0, 1), by the Box–Muller transform (Box & Muller, Ann. Math. Stat. 1958):
   * two uniforms give two independent normals; the second is kept for the next call.
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

  /** JSON-serialisable snapshot; `Rng.fromState(rng.state())` continues the same stream. */
  state(): RngState {
    return { kind: 'xoroshiro128plus', words: [...this.gen.getState()], spare: this.spare };
  }

  /** An independent copy at the same position in the stream. */
  clone(): Rng {
    return new Rng(this.gen.clone(), this.spare);
  }
}
