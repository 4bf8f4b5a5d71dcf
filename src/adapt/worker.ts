/**
 * A piscina worker: loads the base model and the modules once (from workerData), then scores
 * population slices with the batched objective.
 */
import { workerData } from 'node:worker_threads';
import { loadModel } from '../engine/index.ts';
import type { EngineOptions } from '../engine/types.ts';
import type { ModuleStack } from '../lora/compose.ts';
import { FewShotObjective, type FewShotBatch, type ObjectiveOptions } from './objective.ts';

export interface WorkerSetup {
  key: string;
  modelDir: string;
  /** The modules as one stack whose arrays live in SharedArrayBuffers: every thread reads the same memory. */
  stack: ModuleStack;
  batch: FewShotBatch;
  objective: ObjectiveOptions;
  engine: EngineOptions;
}

export interface WorkerTask {
  key: string;
  population: number[][];
  /** Warm-up only: keep this thread busy this many ms after loading, so each thread gets one. */
  hold?: number;
}

let objective: Promise<FewShotObjective> | undefined;

async function load(setup: WorkerSetup): Promise<FewShotObjective> {
  return new FewShotObjective(await loadModel(setup.modelDir, setup.engine), setup.stack, setup.batch, setup.objective);
}

export default async function score(task: WorkerTask): Promise<number[]> {
  const setup = workerData as WorkerSetup;
  if (task.key !== setup.key) throw new Error('worker: task for another setup');
  objective ??= load(setup);
  const obj = await objective;
  if (task.hold) await new Promise((r) => setTimeout(r, task.hold));
  const out: number[] = [];
  for (let i = 0; i < task.population.length; i += 32) {
    const scored = await obj.scorePopulation(task.population.slice(i, i + 32));
    out.push(...scored.map((r) => r.objective));
  }
  return out;
}
