/**
 * One training step's loss and gradients on onnxruntime (the graph of t5-train-graph.ts). The
 * trainers keep their parameters, Adam and checkpoints (train/loop.ts); this computes what tfjs's
 * tape computes for them, on a native engine: the weights go in as inputs each step (our layout,
 * float32), the gradients come back by parameter name.
 */
import type * as OrtTypes from 'onnxruntime-node';
import { LorahubError } from '../../errors.ts';
import type { T5Config } from '../../models/t5/config.ts';
import type { ScoreBatch } from '../../models/shared/batch.ts';
import { loadOrt, t5ScoreFeeds } from './index.ts';
import { buildT5TrainGraph, type TrainGraphOptions } from './t5-train-graph.ts';

export interface TrainStepResult {
  /** Σ token NLL / labelTokens of the batch. */
  loss: number;
  /** d loss / d parameter, by parameter name, in the parameter's layout. */
  grads: Map<string, Float32Array>;
}

export class OrtTrainStep {
  private constructor(
    private readonly ort: typeof OrtTypes,
    private readonly session: OrtTypes.InferenceSession,
    private readonly cfg: T5Config,
    /** Every input weight (frozen or not) with its shape. */
    private readonly shapes: Map<string, number[]>,
    readonly trainable: readonly string[],
  ) {}

  /** Builds the graph for `o` and a session over it (`threads`: intra-op threads, default all cores). */
  static async create(o: TrainGraphOptions, threads?: number): Promise<OrtTrainStep> {
    const ort = loadOrt();
    const { bytes, shapes, trainable } = buildT5TrainGraph(o);
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      ...(threads ? { intraOpNumThreads: threads } : {}),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    return new OrtTrainStep(ort, session, o.cfg, shapes, trainable);
  }

  /**
   * Loss and gradients of `batch` (its summed token loss divided by `labelTokens`: the batch's
   * mean, or a micro-batch's share of its whole batch's) at `weights` (every input by name).
   */
  async run(weights: ReadonlyMap<string, Float32Array>, batch: ScoreBatch & { labelTokens: number }): Promise<TrainStepResult> {
    const { feeds } = t5ScoreFeeds(this.ort, this.cfg, batch);
    for (const [name, shape] of this.shapes) {
      const data = weights.get(name);
      if (!data) throw new LorahubError('INTERNAL', `internal: no value for weight "${name}"`);
      feeds[name] = new this.ort.Tensor('float32', data, shape);
    }
    feeds.loss_scale = new this.ort.Tensor('float32', Float32Array.of(1 / batch.labelTokens), []);
    const out = await this.session.run(feeds);
    const grads = new Map<string, Float32Array>();
    for (const name of this.trainable) grads.set(name, out[`grad.${name}`].data as Float32Array);
    return { loss: (out.loss.data as Float32Array)[0], grads };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
