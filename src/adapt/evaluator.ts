/**
 * Evaluators: how a population is scored.
 * - 'sequential': one candidate per forward pass (what the reference does; for comparison).
 * - 'batched': the whole population in one engine call (one forward pass; see EngineModel.tokenLosses).
 * - workers: the population split into slices scored in piscina worker threads, each of which
 *   loaded the base model (on the engine the main thread resolved) and the modules once.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { EngineName, EngineOptions } from '../engine/types.ts';
import { LorahubError, opt } from '../errors.ts';
import type { ModuleStack } from '../lora/compose.ts';
import type { Evaluator } from './adapt.ts';
import type { FewShotBatch, FewShotObjective, ObjectiveOptions } from './objective.ts';
import type { WorkerSetup, WorkerTask } from './worker.ts';

/** Candidates per forward pass at most (bounds activation memory: groups × examples × length). */
export const MAX_GROUPS_PER_PASS = 32;

export class BatchedEvaluator implements Evaluator {
  constructor(
    private readonly objective: FewShotObjective,
    private readonly maxGroups = MAX_GROUPS_PER_PASS,
  ) {}

  async evaluate(population: number[][]): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < population.length; i += this.maxGroups) {
      const scored = await this.objective.scorePopulation(population.slice(i, i + this.maxGroups));
      out.push(...scored.map((r) => r.objective));
    }
    return out;
  }
}

export class SequentialEvaluator implements Evaluator {
  constructor(private readonly objective: FewShotObjective) {}

  async evaluate(population: number[][]): Promise<number[]> {
    const out: number[] = [];
    for (const w of population) out.push((await this.objective.score(w)).objective);
    return out;
  }
}

/**
 * Copies a module stack's arrays into SharedArrayBuffers, so that every worker reads the same memory
 * instead of receiving its own structured-clone copy.
 */
export function shareStack(stack: ModuleStack): ModuleStack {
  const share = (x: Float32Array) => {
    const s = new Float32Array(new SharedArrayBuffer(x.byteLength));
    s.set(x);
    return s;
  };
  return { ...stack, targets: stack.targets.map((t) => ({ ...t, a: share(t.a), b: share(t.b) })) };
}

export interface WorkerEvaluatorOptions {
  workers: number;
  modelDir: string;
  /** The modules, stacked (lora/compose.ts stackModules); shared with every worker. */
  stack: ModuleStack;
  batch: FewShotBatch;
  objective: ObjectiveOptions;
  /**
   * The engine every worker loads the model on. Pass what the main thread resolved (engine,
   * device, threads per worker), not the user's request, so that no worker picks another engine.
   */
  engine: EngineOptions;
}

export class WorkerEvaluator implements Evaluator {
  private readonly pool: Piscina;
  private readonly setup: WorkerSetup;
  readonly workers: number;

  constructor(opts: WorkerEvaluatorOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new LorahubError('BAD_ARGUMENT', `${opt('workers')} must be ≥ 1, got ${opts.workers}`);
    this.workers = opts.workers;
    this.setup = {
      key: `${process.pid}-${Date.now()}-${Math.random()}`,
      modelDir: opts.modelDir,
      stack: shareStack(opts.stack),
      batch: opts.batch,
      objective: opts.objective,
      engine: opts.engine,
    };
    this.pool = new Piscina({
      filename: new URL('./worker.mjs', import.meta.url).href,
      minThreads: opts.workers,
      maxThreads: opts.workers,
      // The setup (model, modules) is sent once per thread through workerData.
      workerData: this.setup,
    });
  }

  /**
   * Loads the model and modules in every thread now (they load lazily on their first task), so
   * that startup is not paid inside the search. One empty task per thread, sent together.
   */
  async ready(): Promise<void> {
    await Promise.all(Array.from({ length: this.workers }, () => this.pool.run({ key: this.setup.key, population: [], hold: 50 } satisfies WorkerTask)));
  }

  async evaluate(population: number[][]): Promise<number[]> {
    const n = Math.min(this.workers, population.length);
    const per = Math.ceil(population.length / n);
    const slices: number[][][] = [];
    for (let i = 0; i < population.length; i += per) slices.push(population.slice(i, i + per));
    const results = await Promise.all(slices.map((s) => this.pool.run({ key: this.setup.key, population: s } satisfies WorkerTask) as Promise<number[]>));
    return results.flat();
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

/**
 * `--workers auto`: worker threads worth starting here for an engine (see README, ADAPT benchmark).
 * - ort: 1. One process already uses every core through onnxruntime's intra-op threads. Two
 *   single-threaded workers scored 21% more evaluations/s on the FLAN-T5-small-shaped world
 *   (29.5 vs 24.4) and 44% more on the tiny fixture, but each holds its own copy of the model
 *   (1049 vs 622 MB peak RSS on the small world) and costs ~1 s of startup — more than the whole
 *   search saves on the shipped default — and the gain shrinks as models grow (base: see README).
 * - tfjs: the wasm backend runs one thread per worker, so 2 workers on 2 cores (4.5 vs 2.3
 *   evals/s on the small world); with more cores, one is left for the main thread.
 */
export function autoWorkers(engine: EngineName): number {
  if (engine === 'ort') return 1;
  const cores = availableParallelism();
  return cores <= 2 ? cores : cores - 1;
}
