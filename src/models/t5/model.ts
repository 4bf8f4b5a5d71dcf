/**
 * T5 encoder-decoder forward pass, matching transformers' T5ForConditionalGeneration (v4.31,
 * modeling_t5.py) in float32: RMS norms, relative position bias computed once per stack,
 * unscaled dot-product attention, relu or gated-gelu FFN, optional tied LM head with the
 * d_model**-0.5 rescale.
 *
 * LoRA deltas are applied inside the linears (y = xW + s·(xAᵀ)Bᵀ) without materialising W + BA.
 * `groups` > 1 scores G candidate modules in one pass (population scoring): the batch becomes
 * G×B rows, group-major, and rows stay shared until the first group-specific delta (ops.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../../errors.ts';
import { loadT5Config, type T5Config } from './config.ts';
import { bucketTable } from './position.ts';
import { addRows, bmm, expand, gatherRows, geluNew, linear, mm, mulRows, repeatRows, rmsNorm, type GroupedLoraDelta, type LoraDelta, type Rows } from '../shared/ops.ts';
import { t5Sublayer, weightsFile, type T5Sublayer } from './checkpoint.ts';
import { checkTokenIds } from '../shared/batch.ts';
import { disposeWeights, loadT5Weights, type T5Weights } from './weights.ts';

/** Deltas keyed by HF module path ("decoder.block.1.layer.1.EncDecAttention.v"); one per group or shared. */
export type LoraDeltas = Map<string, LoraDelta | GroupedLoraDelta>;

/** What every pass needs to know about the layout of its rows. */
interface Layout {
  /** Examples in the batch. */
  batch: number;
  /** Candidate groups (1 unless population scoring). */
  groups: number;
  lora: LoraDeltas | undefined;
}

/** Keys and values of one attention, laid out for `bmm`: kT [g·B·H, dk, Sk], v [g·B·H, Sk, dk]. */
export type KV = {
  kT: tf.Tensor3D;
  v: tf.Tensor3D;
  /** True when the rows are shared by every group (g = 1 in the shapes above). */
  shared: boolean;
};

/** A large negative additive mask value; exp() of it underflows to exactly 0 like HF's finfo.min. */
const MASKED = -1e9;

/** A padded batch: token ids and the 1/0 padding mask, both [B][S]. */
export interface EncoderInput {
  inputIds: number[][];
  attentionMask?: number[][];
}

export type EncoderOutput = {
  /** Final-normed encoder states [g·B·S, d]. */
  hidden: Rows;
  /** Additive padding bias for attention over encoder keys, [B, 1, 1, S]. */
  maskBias: tf.Tensor4D;
  seqLen: number;
};

export class T5Model {
  readonly config: T5Config;
  readonly weights: T5Weights;
  readonly dir: string;

  constructor(config: T5Config, weights: T5Weights, dir = '') {
    this.config = config;
    this.weights = weights;
    this.dir = dir;
  }

  /** Loads an HF T5 folder (config.json + model.safetensors). */
  static load(dir: string): T5Model {
    const cfg = loadT5Config(dir);
    return new T5Model(cfg, loadT5Weights(cfg, weightsFile(dir)), dir);
  }

  dispose(): void {
    disposeWeights(this.weights);
  }

  private w<T extends tf.Tensor = tf.Tensor2D>(name: string): T {
    const t = this.weights.tensors.get(name);
    if (!t) throw new LorahubError('BAD_FILE', `internal: weight "${name}" not loaded`);
    return t as T;
  }

  private checkIds(ids: number[][], what: string): void {
    checkTokenIds(ids, this.config.vocabSize, what);
  }

  /** Token embeddings [B·S, d] for a rectangular id matrix. */
  private embed(ids: number[][]): tf.Tensor2D {
    return gatherRows(this.w('embed'), ids.flat());
  }

  /** Relative position bias [1, H, Sq, Sk] from a stack's block-0 bias table. */
  private positionBias(stack: 'enc' | 'dec', sq: number, sk: number, queryOffset = 0): tf.Tensor4D {
    const cfg = this.config;
    const buckets = bucketTable(sq, sk, stack === 'enc', cfg.relativeAttentionNumBuckets, cfg.relativeAttentionMaxDistance, queryOffset);
    return tf.tidy(() => {
      const values = gatherRows(this.w(`${stack}.0.self.relBias`), buckets); // [Sq·Sk, H]
      return tf.reshape(tf.transpose(values), [1, cfg.numHeads, sq, sk]) as tf.Tensor4D;
    });
  }

  private delta(path: string, layout: Layout): LoraDelta | GroupedLoraDelta | undefined {
    return layout.lora?.get(path);
  }

  /** Projects rows to per-head keys and values for `bmm`. */
  projectKV(x: Rows, { ours, hf: hfPrefix }: T5Sublayer, seqLen: number, layout: Layout): KV {
    const { numHeads: h, dKv: dk } = this.config;
    return tf.tidy(() => {
      let k = linear(x, this.w(`${ours}.k`), this.delta(`${hfPrefix}.k`, layout), layout.groups);
      let v = linear(x, this.w(`${ours}.v`), this.delta(`${hfPrefix}.v`, layout), layout.groups);
      const shared = k.shared && v.shared;
      if (!shared) {
        k = { x: expand(k, layout.groups), shared: false };
        v = { x: expand(v, layout.groups), shared: false };
      }
      const n = k.x.shape[0] / seqLen; // g·B
      const kT = tf.reshape(tf.transpose(tf.reshape(k.x, [n, seqLen, h, dk]), [0, 2, 3, 1]), [n * h, dk, seqLen]) as tf.Tensor3D;
      const vh = tf.reshape(tf.transpose(tf.reshape(v.x, [n, seqLen, h, dk]), [0, 2, 1, 3]), [n * h, seqLen, dk]) as tf.Tensor3D;
      return { kT, v: vh, shared };
    });
  }

  /**
   * Attention of (normed) query rows over `kv`, plus output projection. `bias` [B|1, H, Sq, Sk]
   * is the additive position bias and/or mask (HF adds both to the raw scores; T5 does not
   * scale scores by 1/√d_k — the scale is folded into the initialisation, Raffel et al. §2.1).
   */
  attend(xq: Rows, kv: KV, { ours, hf: hfPrefix }: T5Sublayer, sq: number, bias: tf.Tensor4D, layout: Layout): Rows {
    const { numHeads: h, dKv: dk } = this.config;
    const { batch, groups } = layout;
    return tf.tidy(() => {
      let q = linear(xq, this.w(`${ours}.q`), this.delta(`${hfPrefix}.q`, layout), groups);
      let kT = kv.kT;
      let v = kv.v;
      const shared = q.shared && kv.shared;
      if (!shared) {
        q = { x: expand(q, groups), shared: false };
        if (kv.shared && groups > 1) {
          kT = repeatRows(kT, groups);
          v = repeatRows(v, groups);
        }
      }
      const g = shared ? 1 : groups;
      const n = g * batch;
      const sk = kT.shape[2];
      const qh = tf.reshape(tf.transpose(tf.reshape(q.x, [n, sq, h, dk]), [0, 2, 1, 3]), [n * h, sq, dk]) as tf.Tensor3D;
      const scores = tf.add(tf.reshape(bmm(qh, kT), [g, batch, h, sq, sk]), bias); // [g, B, H, Sq, Sk]
      const probs = tf.reshape(tf.softmax(scores), [n * h, sq, sk]) as tf.Tensor3D;
      const ctx = bmm(probs, v); // [n·H, Sq, dk]
      const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [n, h, sq, dk]), [0, 2, 1, 3]), [n * sq, h * dk]) as tf.Tensor2D;
      return linear({ x: merged, shared }, this.w(`${ours}.o`), this.delta(`${hfPrefix}.o`, layout), groups);
    });
  }

  /** T5LayerFF: x + FFN(norm(x)). */
  private feedForward(x: Rows, { ours, hf: hfPrefix, norm }: T5Sublayer, layout: Layout): Rows {
    const cfg = this.config;
    return tf.tidy(() => {
      const normed: Rows = { x: rmsNorm(x.x, this.w<tf.Tensor1D>(norm.ours), cfg.layerNormEpsilon), shared: x.shared };
      let hidden: Rows;
      if (cfg.isGatedAct) {
        const gate = linear(normed, this.w(`${ours}.wi0`), this.delta(`${hfPrefix}.wi_0`, layout), layout.groups);
        const lin = linear(normed, this.w(`${ours}.wi1`), this.delta(`${hfPrefix}.wi_1`, layout), layout.groups);
        const act: Rows = { x: (cfg.denseActFn === 'relu' ? tf.relu(gate.x) : geluNew(gate.x)) as tf.Tensor2D, shared: gate.shared };
        hidden = mulRows(act, lin, layout.groups);
      } else {
        const pre = linear(normed, this.w(`${ours}.wi`), this.delta(`${hfPrefix}.wi`, layout), layout.groups);
        hidden = { x: tf.relu(pre.x), shared: pre.shared };
      }
      const out = linear(hidden, this.w(`${ours}.wo`), this.delta(`${hfPrefix}.wo`, layout), layout.groups);
      return addRows(x, out, layout.groups);
    });
  }

  /**
   * Encoder: embeddings → blocks → final norm. Returns states for every (group, example, position).
   */
  encode(input: EncoderInput, lora?: LoraDeltas, groups = 1): EncoderOutput {
    const cfg = this.config;
    const { inputIds } = input;
    const batch = inputIds.length;
    if (batch === 0) throw new LorahubError('INTERNAL', 'encode: empty batch');
    const s = inputIds[0].length;
    if (s === 0 || inputIds.some((r) => r.length !== s)) throw new LorahubError('INTERNAL', 'encode: input_ids must be a non-empty rectangular [B][S] array');
    this.checkIds(inputIds, 'input_ids');
    const mask = input.attentionMask ?? inputIds.map((r) => r.map(() => 1));
    if (mask.length !== batch || mask.some((r) => r.length !== s)) throw new LorahubError('INTERNAL', 'encode: attention_mask must match input_ids [B][S]');
    const layout: Layout = { batch, groups, lora };
    return tf.tidy(() => {
      const maskBias = tf.reshape(tf.mul(tf.sub(1, tf.tensor2d(mask, [batch, s], 'float32')), MASKED), [batch, 1, 1, s]) as tf.Tensor4D;
      const bias = tf.add(this.positionBias('enc', s, s), maskBias) as tf.Tensor4D; // [B, H, S, S]
      let x: Rows = { x: this.embed(inputIds), shared: true };
      for (let i = 0; i < cfg.numLayers; i++) {
        const sa = t5Sublayer('enc', i, 'self');
        const normed: Rows = { x: rmsNorm(x.x, this.w<tf.Tensor1D>(sa.norm.ours), cfg.layerNormEpsilon), shared: x.shared };
        const kv = this.projectKV(normed, sa, s, layout);
        x = addRows(x, this.attend(normed, kv, sa, s, bias, layout), groups);
        x = this.feedForward(x, t5Sublayer('enc', i, 'ffn'), layout);
      }
      const hidden: Rows = { x: rmsNorm(x.x, this.w<tf.Tensor1D>('enc.finalNorm'), cfg.layerNormEpsilon), shared: x.shared };
      return { hidden, maskBias, seqLen: s };
    });
  }

  /** Cross-attention keys/values of every decoder block over the encoder states (computed once). */
  crossKV(enc: EncoderOutput, lora: LoraDeltas | undefined, groups: number, batch: number): KV[] {
    const layout: Layout = { batch, groups, lora };
    const out: KV[] = [];
    for (let i = 0; i < this.config.numDecoderLayers; i++) {
      out.push(this.projectKV(enc.hidden, t5Sublayer('dec', i, 'cross'), enc.seqLen, layout));
    }
    return out;
  }

  /**
   * Decoder blocks over `x` (embedded decoder inputs, [g·B·T, d]) with self-attention keys and
   * values from `selfKV` (per block; the caller builds them so that generation can cache them).
   * Returns the final-normed states.
   */
  private decoderStack(
    x0: Rows,
    t: number,
    selfBias: tf.Tensor4D,
    selfKV: (block: number, normed: Rows) => KV,
    cross: KV[],
    enc: EncoderOutput,
    layout: Layout,
  ): Rows {
    const cfg = this.config;
    let x = x0;
    for (let i = 0; i < cfg.numDecoderLayers; i++) {
      const [sa, ca] = [t5Sublayer('dec', i, 'self'), t5Sublayer('dec', i, 'cross')];
      const normed: Rows = { x: rmsNorm(x.x, this.w<tf.Tensor1D>(sa.norm.ours), cfg.layerNormEpsilon), shared: x.shared };
      x = addRows(x, this.attend(normed, selfKV(i, normed), sa, t, selfBias, layout), layout.groups);
      const normedC: Rows = { x: rmsNorm(x.x, this.w<tf.Tensor1D>(ca.norm.ours), cfg.layerNormEpsilon), shared: x.shared };
      x = addRows(x, this.attend(normedC, cross[i], ca, t, enc.maskBias, layout), layout.groups);
      x = this.feedForward(x, t5Sublayer('dec', i, 'ffn'), layout);
    }
    return { x: rmsNorm(x.x, this.w<tf.Tensor1D>('dec.finalNorm'), cfg.layerNormEpsilon), shared: x.shared };
  }

  /** LM head: logits [rows, V]; tied embeddings rescale by d_model**-0.5 first (HF T5). */
  lmHead(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const scaled = this.config.tieWordEmbeddings ? tf.mul(x, this.config.dModel ** -0.5) : x;
      return mm(scaled as tf.Tensor2D, this.weights.lmHeadT);
    });
  }

  /**
   * Teacher-forced forward: logits [g·B·T, V] (group-major rows; g = groups unless nothing in
   * the pass depended on the group, then 1 — see `logitsShared`).
   */
  forward(
    input: EncoderInput,
    decoderInputIds: number[][],
    lora?: LoraDeltas,
    groups = 1,
  ): { logits: tf.Tensor2D; shared: boolean; encoder: tf.Tensor2D } {
    const batch = input.inputIds.length;
    if (decoderInputIds.length !== batch) throw new LorahubError('INTERNAL', 'forward: decoder_input_ids and input_ids differ in batch size');
    const t = decoderInputIds[0]?.length ?? 0;
    if (t === 0 || decoderInputIds.some((r) => r.length !== t)) throw new LorahubError('INTERNAL', 'forward: decoder_input_ids must be a non-empty rectangular [B][T] array');
    this.checkIds(decoderInputIds, 'decoder_input_ids');
    const layout: Layout = { batch, groups, lora };
    return tf.tidy(() => {
      const enc = this.encode(input, lora, groups);
      const cross = this.crossKV(enc, lora, groups, batch);
      // Causal mask (the decoder gets no padding mask, as in lorahub/HF with labels only).
      const causal = tf.tensor4d(
        Float32Array.from({ length: t * t }, (_, k) => (k % t > Math.floor(k / t) ? MASKED : 0)),
        [1, 1, t, t],
      );
      const selfBias = tf.add(this.positionBias('dec', t, t), causal) as tf.Tensor4D;
      const x0: Rows = { x: this.embed(decoderInputIds), shared: true };
      const out = this.decoderStack(
        x0,
        t,
        selfBias,
        (i, normed) => this.projectKV(normed, t5Sublayer('dec', i, 'self'), t, layout),
        cross,
        enc,
        layout,
      );
      return { logits: this.lmHead(out.x), shared: out.shared, encoder: enc.hidden.x };
    });
  }

  /** One decoding step for generation (groups = 1): see generate.ts. */
  decodeStep(
    tokens: number[],
    position: number,
    cache: KV[],
    cross: KV[],
    enc: EncoderOutput,
    lora: LoraDeltas | undefined,
  ): { logits: tf.Tensor2D; cache: KV[] } {
    const batch = tokens.length;
    const layout: Layout = { batch, groups: 1, lora };
    const { numHeads: h, dKv: dk } = this.config;
    return tf.tidy(() => {
      const selfBias = this.positionBias('dec', 1, position + 1, position);
      const next: KV[] = [];
      const out = this.decoderStack(
        { x: this.embed(tokens.map((tok) => [tok])), shared: true },
        1,
        selfBias,
        (i, normed) => {
          const kv = this.projectKV(normed, t5Sublayer('dec', i, 'self'), 1, layout);
          const past = cache[i];
          const merged: KV = past
            ? { kT: tf.concat([past.kT, kv.kT], 2), v: tf.concat([past.v, kv.v], 1), shared: true }
            : kv;
          if (merged.kT.shape[0] !== batch * h || merged.kT.shape[1] !== dk) throw new Error('internal: KV cache shape');
          next.push(merged);
          return merged;
        },
        cross,
        enc,
        layout,
      );
      return { logits: this.lmHead(out.x), cache: next };
    });
  }
}
