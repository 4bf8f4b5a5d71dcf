/**
 * Which engine computes the trainers' gradients: tfjs's tape (wasm; tfjs-node where installed),
 * or onnxruntime (engine/ort/train-step.ts: the T5 training graph with its hand-written backward
 * pass, matched against the tape in test/engine/ort-train.test.ts). Parameters, Adam, clipping and
 * checkpoints stay in train/loop.ts whichever computes the gradients.
 *
 * Measured on this 2-core machine (README, "Training engines"): the `tiny` base trains ~7× faster
 * on ort (one thread) than on tfjs-wasm, the `compact` one ~8×.
 */
import { LorahubError, opt } from '../errors.ts';
import { resolveEngineOptions, type EngineOptions } from '../engine/index.ts';

export interface TrainEngine {
  name: 'ort' | 'tfjs';
  /** ort: intra-op threads (default: all cores). */
  threads?: number;
  /** Why the default fell back to tfjs, when it did. */
  fallback?: string;
}

/**
 * The trainers' engine from the global options: `--engine` / LORAHUB_ENGINE, else ort where
 * onnxruntime-node loads, else tfjs. A tfjs `--backend` picks tfjs; DyLoRA (a rank per step)
 * trains on tfjs by default and refuses ort; training runs on the cpu.
 */
export async function resolveTrainEngine(opts: EngineOptions, needs: { dylora?: boolean } = {}): Promise<TrainEngine> {
  const r = resolveEngineOptions(opts);
  if (r.device === 'cuda') throw new LorahubError('UNSUPPORTED', `training runs on the cpu; ${opt('device')} cuda applies to compose, score, generate and eval`);
  if (r.engine === 'tfjs') return { name: 'tfjs' };
  if (needs.dylora) {
    if (r.engine === 'ort') throw new LorahubError('UNSUPPORTED', `DyLoRA trains on the tfjs engine only (a rank per step); add ${opt('engine')} tfjs`);
    return { name: 'tfjs' };
  }
  const { loadOrt } = await import('../engine/ort/index.ts');
  try {
    loadOrt();
  } catch (err) {
    if (r.engine === 'ort') throw err;
    return { name: 'tfjs', fallback: `onnxruntime-node did not load (${(err as Error).message.split('\n')[0]})` };
  }
  return { name: 'ort', threads: r.threads };
}
