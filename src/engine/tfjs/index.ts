/**
 * The tfjs engine: the forwards of src/models (@tensorflow/tfjs on wasm, or tfjs-node when
 * installed) behind the engine seam — T5 (models/t5, here) and the decoder-only families
 * (models/causal, causal.ts), picked by config.json's `model_type`. It is also the trainers'
 * engine: training needs tfjs's autodiff, so src/train uses T5Model directly and wraps it here
 * (`TfjsModel.fromT5`) when it needs the seam's calls.
 */
import * as tf from '@tensorflow/tfjs';
import { backendInfo, initBackend, type BackendInfo } from '../../backend.ts';
import { disposeDeltas, groupDeltas, moduleDeltas } from '../../models/t5/deltas.ts';
import { composeStack } from '../../lora/compose.ts';
import type { LoraModule } from '../../lora/module.ts';
import type { T5Config } from '../../models/t5/config.ts';
import { generateGreedy } from '../../models/t5/generate.ts';
import { checkLabels, exampleLosses } from '../../models/shared/batch.ts';
import { teacherForcedLosses } from '../../models/t5/loss.ts';
import { T5Model, type LoraDeltas } from '../../models/t5/model.ts';
import { CausalModel } from '../../models/causal/model.ts';
import { familyOf } from '../../models/index.ts';
import { readHfConfig } from '../../models/shared/family.ts';
import { TfjsCausalModel } from './causal.ts';
import { isStacked, nonFiniteError, type Engine, type EngineInfo, type EngineModel, type GenerateInput, type GenerateOptions, type Population, type ScoreBatch, type TokenLosses } from '../types.ts';
import { tfjsMatmulGflops } from './matmul.ts';

/** What runs: tfjs-node uses its own thread pool; wasm and cpu run one thread per process or worker. */
function tfjsInfo(b: BackendInfo, threads: number): EngineInfo {
  return { engine: 'tfjs', device: 'cpu', provider: `${b.provider} (${b.name})`, threads: b.name === 'tensorflow' ? threads : 1 };
}

/**
 * Per-group token-loss sums and counts of one teacher-forced batch (synchronous: the trainers'
 * evaluation calls it between steps). `deltas` with `groups` > 1 are grouped deltas (population
 * scoring, group-major rows); a pass in which no delta touched the rows gives one set of logits
 * shared by every group.
 */
export function t5TokenLosses(model: T5Model, batch: ScoreBatch, deltas?: LoraDeltas, groups = 1): TokenLosses[] {
  checkLabels(batch.labels, model.config.vocabSize);
  const { perToken, shared } = teacherForcedLosses(model, batch, deltas, groups);
  const values = perToken.dataSync();
  perToken.dispose();
  const rows = batch.labels.reduce((n, row) => n + row.length, 0);
  return Array.from({ length: groups }, (_, g) => {
    const l = exampleLosses(values, batch.labels, shared ? 0 : g * rows);
    return { sum: l.sum, tokens: l.tokens };
  });
}

/** A T5Model behind the seam. Adapters become low-rank deltas for one call and are disposed after it. */
export class TfjsModel implements EngineModel {
  readonly dir: string;
  readonly config: T5Config;
  readonly info: EngineInfo;
  /** The wrapped model (tfjs-only code — training, the forward benchmark — uses it directly). */
  readonly t5: T5Model;

  private constructor(t5: T5Model, info: EngineInfo) {
    this.t5 = t5;
    this.dir = t5.dir;
    this.config = t5.config;
    this.info = info;
  }

  /** Wraps a loaded T5Model (info: the active tfjs backend's by default); `dispose()` disposes it. */
  static fromT5(model: T5Model, info: EngineInfo = tfjsInfo(backendInfo(), 1)): TfjsModel {
    return new TfjsModel(model, info);
  }

  async tokenLosses(batch: ScoreBatch, population: Population = []): Promise<TokenLosses[]> {
    // A stacked population is composed here, in JS (lora/compose.ts, the reference's float32 order).
    const adapters: readonly Pick<LoraModule, 'name' | 'targets'>[] = isStacked(population)
      ? population.weights.map((w, i) => ({ name: `candidate-${i}`, targets: composeStack(population.stack, w) }))
      : population;
    // One adapter applies to every row (plain deltas); several are a population (grouped deltas).
    const groups = Math.max(1, adapters.length);
    const deltas = adapters.length === 0 ? undefined : adapters.length === 1 ? moduleDeltas(adapters[0]) : groupDeltas(adapters);
    try {
      return t5TokenLosses(this.t5, batch, deltas, groups);
    } finally {
      if (deltas) disposeDeltas(deltas);
    }
  }

  async generate(input: GenerateInput, opts: GenerateOptions): Promise<number[][]> {
    const deltas = opts.adapter ? moduleDeltas(opts.adapter) : undefined;
    try {
      return generateGreedy(this.t5, input, { maxNewTokens: opts.maxNewTokens, lora: deltas, nonFinite: (what) => nonFiniteError(this, what) });
    } finally {
      if (deltas) disposeDeltas(deltas);
    }
  }

  async dispose(): Promise<void> {
    this.t5.dispose();
  }
}

/**
 * Loads a model folder with its family's forward. A config.json that does not read goes to the
 * T5 loader, whose errors (and behaviour, every message included) stay T5's; an unknown
 * `model_type` is refused listing the supported ones, as on the ort engine.
 */
function loadTfjs(dir: string, info: EngineInfo): EngineModel {
  let raw: Record<string, unknown> | undefined;
  let file = `${dir}/config.json`;
  try {
    ({ raw, file } = readHfConfig(dir));
  } catch {
    raw = undefined;
  }
  if (raw === undefined || familyOf(raw, file).name === 't5') return TfjsModel.fromT5(T5Model.load(dir), info);
  return new TfjsCausalModel(CausalModel.load(dir), info);
}

/** The tfjs engine on the backend `r.backend` (or LORAHUB_BACKEND, else the best available). */
export async function createTfjsEngine(r: { device: string; threads: number; backend?: string }): Promise<Engine> {
  const info = tfjsInfo(await initBackend(r.backend), r.threads);
  return {
    info,
    // Models share the engine's info object, so a fallback reason set on it shows on them too.
    load: async (dir: string) => loadTfjs(dir, info),
    matmulGflops: tfjsMatmulGflops,
  };
}

export { TfjsCausalModel };
