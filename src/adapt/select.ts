/**
 * Module selection before the search (`compose --select K`): every candidate module is scored
 * alone (weight 1) on the few-shot loss, and the K lowest are the ones composed.
 *
 * Why: the paper composes 20 modules sampled at random from ~200. On a library where only a few
 * modules carry the target's skill, a random 20 may hold none of them, and the search spends its
 * budget on modules that only fit the few-shot set. Scoring each candidate alone costs one
 * evaluation per candidate (batched, a population per pass); keeping the best 5 of the shipped
 * 33 measured +3.4 points on real BBH boolean_expressions over 10 seeds, with a quarter of the
 * spread between seeds (README, "The few-shot objective"). The ranking needs nothing but the
 * few-shot set the search uses anyway.
 */
import type { EngineModel } from '../engine/types.ts';
import { stackModules, type Harmonize } from '../lora/compose.ts';
import type { LoraModule } from '../lora/module.ts';
import { FewShotObjective, type FewShotBatch, type ObjectiveOptions } from './objective.ts';

/**
 * One candidate's few-shot loss alone (weight 1). The L1 term is left out: it is the same for
 * every candidate alone (α·1/N), and leaving it out keeps a score independent of how many
 * modules shared its pass.
 */
export interface ModuleScore {
  module: string;
  loss: number;
}

/** What a selecting run records (run.json and report.json): K, the pool's size, and every score, lowest first. */
export interface Selection {
  k: number;
  pool: number;
  scores: ModuleScore[];
}

/**
 * Candidates scored per pass: a pass stacks this many modules (so a pool of 200 large modules
 * is never held at once) and scores each of them alone as one population.
 */
export const SELECT_CHUNK = 16;

/**
 * Scores every module of `pool` alone on the few-shot batch. `load(names)` resolves a chunk of
 * the pool (in order); each chunk is stacked, scored and dropped before the next is loaded.
 * A candidate whose loss is not finite scores +∞ (it is never selected before a finite one).
 */
export async function scoreModulesAlone(
  model: EngineModel,
  pool: readonly string[],
  load: (names: string[]) => Promise<LoraModule[]>,
  batch: FewShotBatch,
  objective: Partial<ObjectiveOptions>,
  harmonize: Harmonize,
  chunk = SELECT_CHUNK,
): Promise<ModuleScore[]> {
  const scores: ModuleScore[] = [];
  for (let start = 0; start < pool.length; start += chunk) {
    const names = pool.slice(start, start + chunk);
    const stack = stackModules(await load(names), harmonize);
    const alone = names.map((_, i) => names.map((_, j) => (i === j ? 1 : 0)));
    const scored = await new FewShotObjective(model, stack, batch, objective).scorePopulation(alone);
    scored.forEach((s, i) => scores.push({ module: stack.names[i], loss: Number.isFinite(s.loss) ? s.loss : Infinity }));
  }
  return scores;
}

/**
 * The pool indices of the K lowest-scoring modules (all of them when K ≥ the pool), ascending:
 * the composition keeps the pool's order, so its module order (the search's coordinates) does not
 * depend on the scores' round-off. Ties go to the earlier module. `ranked`: every score, lowest first.
 */
export function selectLowest(scores: readonly ModuleScore[], k: number): { chosen: number[]; ranked: ModuleScore[] } {
  // Not a.loss − b.loss: ∞ − ∞ is NaN, which would leave the order to the sort's internals.
  const order = scores.map((s, i) => ({ s, i })).sort((a, b) => (a.s.loss < b.s.loss ? -1 : a.s.loss > b.s.loss ? 1 : a.i - b.i));
  const chosen = order
    .slice(0, k)
    .map((o) => o.i)
    .sort((a, b) => a - b);
  return { chosen, ranked: order.map((o) => o.s) };
}
