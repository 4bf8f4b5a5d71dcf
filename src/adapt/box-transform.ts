/**
 * Box constraints for CMA-ES by a genotype → phenotype transformation, as pycma's default
 * `BoundTransform` does it (pycma `cma/transformations.py`,
 * `BoxConstraintsLinQuadTransformation`). The optimiser searches an unbounded space and
 * only ever hands out images under this map, which lie in [lower, upper] by construction.
 */
import { LorahubError } from '../errors.ts';

/**
 * pycma's `BoxConstraintsLinQuadTransformation`: R → [lb, ub], the identity on
 * [lb + al, ub − au] (about 90 % of a wide interval), quadratic (C¹) on the margins, and
 * periodic/mirrored beyond so every genotype has a feasible image. Margins
 * a = min((ub − lb)/2, max(1, |bound|)/20), pycma's default `margin_width2`.
 * With both bounds infinite a coordinate is left alone.
 */
export class BoxTransform {
  readonly lower: readonly number[];
  readonly upper: readonly number[];
  readonly bounded: boolean;
  private readonly al: number[];
  private readonly au: number[];

  constructor(lower: readonly number[], upper: readonly number[]) {
    this.lower = [...lower];
    this.upper = [...upper];
    this.bounded = lower.some((b) => b > -Infinity) || upper.some((b) => b < Infinity);
    const margin = (lb: number, ub: number, bound: number): number =>
      Number.isFinite(bound) ? Math.min((ub - lb) / 2, Math.max(1, Math.abs(bound)) / 20) : 1;
    this.al = lower.map((lb, i) => margin(lb, upper[i], lb));
    this.au = upper.map((ub, i) => margin(lower[i], ub, ub));
  }

  /** Genotype → feasible phenotype. */
  transform(g: readonly number[]): number[] {
    if (!this.bounded) return [...g];
    return g.map((x, i) => this.transformOne(x, i));
  }

  /** Feasible phenotype → the genotype on the invertible branch [lb − al, ub + au]. */
  inverse(y: readonly number[]): number[] {
    if (!this.bounded) return [...y];
    return y.map((v, i) => {
      const lb = this.lower[i];
      const ub = this.upper[i];
      if (!(v >= lb && v <= ub)) {
        throw new LorahubError('INTERNAL', `CMA-ES: coordinate ${i} = ${v} is outside the bounds [${lb}, ${ub}]`);
      }
      const al = this.al[i];
      const au = this.au[i];
      if (v < lb + al) return lb - al + 2 * Math.sqrt(al * (v - lb));
      if (v > ub - au) return ub + au - 2 * Math.sqrt(au * (ub - v));
      return v;
    });
  }

  private transformOne(x: number, i: number): number {
    const lb = this.lower[i];
    const ub = this.upper[i];
    if (lb === -Infinity && ub === Infinity) return x;
    const al = this.al[i];
    const au = this.au[i];
    // Far away: shift by whole periods 2(ub − lb + al + au) into one period.
    const start = lb - 2 * al - (ub - lb) / 2;
    const end = ub + 2 * au + (ub - lb) / 2;
    if (Number.isFinite(start) && Number.isFinite(end) && (x < start || x > end)) {
      const period = 2 * (ub - lb + al + au);
      x -= period * Math.floor((x - start) / period);
    }
    // Mirror into the invertible domain [lb − al, ub + au].
    if (x > ub + au) x -= 2 * (x - ub - au);
    if (x < lb - al) x += 2 * (lb - al - x);
    let y = x;
    if (x < lb + al) y = lb + (x - (lb - al)) ** 2 / (4 * al);
    else if (x > ub - au) y = ub - (x - (ub + au)) ** 2 / (4 * au);
    // The algebra keeps y in [lb, ub]; the clamp only guards the periodic shift's rounding.
    return Math.min(ub, Math.max(lb, y));
  }
}
