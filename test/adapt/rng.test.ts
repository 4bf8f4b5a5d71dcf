import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/adapt/rng.ts';
import { LorahubError } from '../../src/errors.ts';

describe('Rng', () => {
  it('is a pure function of the seed; neighbouring seeds give unrelated streams', () => {
    const a = Rng.fromSeed(42);
    const b = Rng.fromSeed(42);
    const xs = Array.from({ length: 5 }, () => a.uniform());
    expect(Array.from({ length: 5 }, () => b.uniform())).toEqual(xs);
    const firsts = [0, 1, 2, 3].map((s) => Rng.fromSeed(s).uniform());
    expect(new Set(firsts).size).toBe(4);
    // pure-rand's plain seeding makes the first output ≈ ~seed; ours must spread them out
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(0.1);
  });

  it('uniform lies in [0, 1) with mean 1/2 and variance 1/12', () => {
    const r = Rng.fromSeed(1);
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      if (!(u >= 0 && u < 1)) outside++;
      s += u;
      s2 += u * u;
    }
    expect(outside).toBe(0);
    const mean = s / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005); // ~5 standard errors
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
  });

  it('normal has mean 0, variance 1 and the Gaussian tail mass beyond 2σ', () => {
    const r = Rng.fromSeed(2);
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    let tail = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
      if (Math.abs(z) > 2) tail++;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.02);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
    expect(Math.abs(tail / n - 0.0455)).toBeLessThan(0.004); // P(|Z| > 2) = 0.0455
  });

  it('state() → JSON → fromState() continues the same stream, pending Box–Muller variate included', () => {
    const r = Rng.fromSeed(3);
    r.normal(); // leaves a spare variate behind
    const copy = Rng.fromState(JSON.parse(JSON.stringify(r.state())));
    const next = [r.normal(), r.normal(), r.uniform(), r.normal()];
    expect([copy.normal(), copy.normal(), copy.uniform(), copy.normal()]).toEqual(next);
  });

  it('rejects bad seeds and states', () => {
    expect(() => Rng.fromSeed(1.5)).toThrow(LorahubError);
    expect(() => Rng.fromSeed(2 ** 40)).toThrow(/seed/);
    expect(() => Rng.fromState({ kind: 'xoroshiro128plus', words: [1, 2], spare: null })).toThrow(LorahubError);
  });
});
