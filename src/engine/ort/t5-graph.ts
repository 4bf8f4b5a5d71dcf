/**
 * T5 as ONNX graphs, built from the HF config: the same computation as transformers'
 * T5ForConditionalGeneration (v4.31 modeling_t5.py) and as the tfjs forward (models/t5/model.ts),
 * written as graph nodes.
 *
 * Three graphs share one builder:
 *   score   — teacher-forced encoder + decoder + LM head + token cross-entropy; returns the
 *             per-token loss [g, B, T] (labels −100 masked out), so logits never leave the graph.
 *   encoder — encoder stack once, returning every decoder block's cross-attention keys/values.
 *   step    — one greedy decoding step: token ids [B, 1] + past self-attention keys/values →
 *             the next token (ArgMax in the graph), the present keys/values, and `nonfinite`
 *             (1 when a logit is NaN/∞).
 * (`logits` is `score` with the logits and encoder states as outputs too, for parity tests.)
 *
 * Layout. Hidden states are 2D rows [g·R, width] (R = B·S or B·T, group-major), so every base
 * projection is one Gemm against the HF weight [dOut, dIn] with transB (measured as fast as a
 * pre-transposed MatMul, and the weight is used in place from the checkpoint). Population scoring
 * runs G candidates at once: each LoRA target has graph inputs A [G, r, dIn] and B [G, dOut, r]
 * (scaling folded into B), so xAᵀBᵀ is two batched MatMuls, and the base weights are never
 * rewritten. As in the tfjs forward, rows stay shared by all groups (g = 1) until the first
 * group-specific delta touches them; broadcasting in MatMul/Add does the rest.
 * Attention works on [g, B, H, S, dk] (keys pre-transposed to [g, B, H, dk, S]).
 *
 * Relative position buckets and the causal mask come in as inputs (computed in JS by
 * models/t5/position.ts with torch's float32 rounding), so the graph never re-derives them.
 */
import { t5Sublayer, type T5Sublayer } from '../../models/t5/checkpoint.ts';
import type { T5Config } from '../../models/t5/config.ts';
import { GraphBuilder, type LoraTargetShape, type Rows, type WeightSource } from './builder.ts';
import { Graph, type Dim } from './onnx.ts';

/** A large negative additive mask value (exp underflows to 0, like HF's finfo.min). */
export const MASKED = -1e9;

export type GraphKind = 'score' | 'logits' | 'encoder' | 'step';

/** Keys [g, B, H, dk, Sk] and values [g, B, H, Sk, dk]. */
interface KV {
  kT: string;
  v: string;
  shared: boolean;
}

class T5Builder extends GraphBuilder {
  private readonly cfg: T5Config;
  private readonly h: number;
  private readonly dk: number;
  private readonly inner: number;

  constructor(kind: GraphKind, cfg: T5Config, weights: Map<string, WeightSource>, loraTargets: readonly LoraTargetShape[], stacked: boolean) {
    super(`t5_${kind}`, weights, loraTargets, stacked);
    this.cfg = cfg;
    this.h = cfg.numHeads;
    this.dk = cfg.dKv;
    this.inner = cfg.numHeads * cfg.dKv;
  }

  /** y = x·Wᵀ (+ per-group LoRA), W the HF Linear weight [dOut, dIn]; R: rows per group ([1] int64). */
  linear(x: Rows, ours: string, hfPath: string, R: string, dOut: number): Rows {
    const base = this.g.op('Gemm', [x.v, this.w(ours)], { transB: 1 });
    return this.withLora(x, base, hfPath, R, this.weights.get(ours)?.shape[1] as number, dOut);
  }

  /** T5LayerNorm: x · 1/√(mean(x²) + eps) · weight (no mean subtraction, no bias). */
  rmsNorm(x: Rows, ours: string): Rows {
    const g = this.g;
    const variance = g.op('ReduceMean', [g.op('Mul', [x.v, x.v])], { axes: [-1], keepdims: 1 });
    const normed = g.op('Div', [x.v, g.op('Sqrt', [g.op('Add', [variance, g.f32([this.cfg.layerNormEpsilon], [])])])]);
    return { v: g.op('Mul', [normed, this.w(ours)]), shared: x.shared };
  }

  /** transformers' NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))). */
  geluNew(x: string): string {
    const g = this.g;
    const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.f32([0.044715], [])])]), g.f32([Math.sqrt(2 / Math.PI)], [])]);
    return g.op('Mul', [g.op('Mul', [x, g.f32([0.5], [])]), g.op('Add', [g.f32([1], []), g.op('Tanh', [inner])])]);
  }

  /** Keys/values of `x` (rows [g·B·Sk, d]) for attention. */
  projectKV(x: Rows, { ours, hf }: T5Sublayer, B: string, Sk: string | number, R: string): KV {
    const k = this.linear(x, `${ours}.k`, `${hf}.k`, R, this.inner);
    const v = this.linear(x, `${ours}.v`, `${hf}.v`, R, this.inner);
    const kT = this.g.op('Transpose', [this.reshape(k.v, [-1, B, Sk, this.h, this.dk])], { perm: [0, 1, 3, 4, 2] });
    const vh = this.g.op('Transpose', [this.reshape(v.v, [-1, B, Sk, this.h, this.dk])], { perm: [0, 1, 3, 2, 4] });
    return { kT, v: vh, shared: k.shared && v.shared };
  }

  /**
   * Attention of (normed) query rows over `kv` plus the output projection. T5 does not scale
   * scores by 1/√dk (the scale is folded into its initialisation, Raffel et al. §2.1); `bias` is
   * position bias and/or mask, broadcastable to [g, B, H, Sq, Sk].
   */
  attend(xq: Rows, kv: KV, { ours, hf }: T5Sublayer, B: string, Sq: string | number, R: string, bias: string): Rows {
    const g = this.g;
    const q = this.linear(xq, `${ours}.q`, `${hf}.q`, R, this.inner);
    const qh = g.op('Transpose', [this.reshape(q.v, [-1, B, Sq, this.h, this.dk])], { perm: [0, 1, 3, 2, 4] });
    const scores = g.op('Add', [g.op('MatMul', [qh, kv.kT]), bias]);
    const ctx = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), kv.v]); // [g, B, H, Sq, dk]
    const merged = this.reshape(g.op('Transpose', [ctx], { perm: [0, 1, 3, 2, 4] }), [-1, this.inner]);
    return this.linear({ v: merged, shared: q.shared && kv.shared }, `${ours}.o`, `${hf}.o`, R, this.cfg.dModel);
  }

  /** T5LayerFF: x + FFN(norm(x)). */
  feedForward(x: Rows, { ours, hf, norm }: T5Sublayer, R: string): Rows {
    const cfg = this.cfg;
    const normed = this.rmsNorm(x, norm.ours);
    let hidden: Rows;
    if (cfg.isGatedAct) {
      const gate = this.linear(normed, `${ours}.wi0`, `${hf}.wi_0`, R, cfg.dFf);
      const lin = this.linear(normed, `${ours}.wi1`, `${hf}.wi_1`, R, cfg.dFf);
      const act = { v: cfg.denseActFn === 'relu' ? this.g.op('Relu', [gate.v]) : this.geluNew(gate.v), shared: gate.shared };
      hidden = this.combine('Mul', act, lin, R, cfg.dFf);
    } else {
      const pre = this.linear(normed, `${ours}.wi`, `${hf}.wi`, R, cfg.dFf);
      hidden = { v: this.g.op('Relu', [pre.v]), shared: pre.shared };
    }
    return this.combine('Add', x, this.linear(hidden, `${ours}.wo`, `${hf}.wo`, R, cfg.dModel), R, cfg.dModel);
  }

  /** Token embeddings [B·S, d] of int64 ids [B, S]. */
  embed(ids: string): Rows {
    return { v: this.g.op('Gather', [this.w('embed'), this.reshape(ids, [-1])]), shared: true };
  }

  /** Position bias [1, 1, H, Sq, Sk] from a stack's bias table and int64 buckets [Sq, Sk]. */
  positionBias(stack: 'enc' | 'dec', buckets: string): string {
    const g = this.g;
    const values = g.op('Gather', [this.w(`${stack}.0.self.relBias`), buckets]); // [Sq, Sk, H]
    return g.op('Unsqueeze', [g.op('Transpose', [values], { perm: [2, 0, 1] }), g.i64([0, 1])]);
  }

  /** Additive padding bias [1, B, 1, 1, S] from a float 1/0 mask [B, S]. */
  maskBias(mask: string): string {
    const g = this.g;
    const bias = g.op('Mul', [g.op('Sub', [g.f32([1], []), mask]), g.f32([MASKED], [])]);
    return g.op('Unsqueeze', [bias, g.i64([0, 2, 3])]);
  }

  /** Encoder stack → final-normed rows [g·B·S, d]. */
  encoder(ids: string, mask: string, buckets: string): { hidden: Rows; B: string; S: string; R: string; maskBias: string } {
    const g = this.g;
    const B = this.dims(ids, 0, 1);
    const S = this.dims(ids, 1, 2);
    const R = g.op('Mul', [B, S]);
    const maskBias = this.maskBias(mask);
    const bias = g.op('Add', [this.positionBias('enc', buckets), maskBias]); // [1, B, H, S, S]
    let x = this.embed(ids);
    for (let i = 0; i < this.cfg.numLayers; i++) {
      const sa = t5Sublayer('enc', i, 'self');
      const normed = this.rmsNorm(x, sa.norm.ours);
      const kv = this.projectKV(normed, sa, B, S, R);
      x = this.combine('Add', x, this.attend(normed, kv, sa, B, S, R, bias), R, this.cfg.dModel);
      x = this.feedForward(x, t5Sublayer('enc', i, 'ffn'), R);
    }
    return { hidden: this.rmsNorm(x, 'enc.finalNorm'), B, S, R, maskBias };
  }

  crossKV(hidden: Rows, B: string, S: string, R: string): KV[] {
    const out: KV[] = [];
    for (let i = 0; i < this.cfg.numDecoderLayers; i++) {
      out.push(this.projectKV(hidden, t5Sublayer('dec', i, 'cross'), B, S, R));
    }
    return out;
  }

  /**
   * Decoder blocks over embedded inputs `x0` (rows [B·T, d]); `selfKV(i, normed)` gives block i's
   * self-attention keys/values (the step graph concatenates its cache there). Final-normed rows.
   */
  decoder(x0: Rows, B: string, T: string | number, R: string, selfBias: string, crossBias: string, cross: KV[], selfKV: (i: number, normed: Rows) => KV): Rows {
    let x = x0;
    for (let i = 0; i < this.cfg.numDecoderLayers; i++) {
      const [sa, ca] = [t5Sublayer('dec', i, 'self'), t5Sublayer('dec', i, 'cross')];
      const normed = this.rmsNorm(x, sa.norm.ours);
      x = this.combine('Add', x, this.attend(normed, selfKV(i, normed), sa, B, T, R, selfBias), R, this.cfg.dModel);
      const normedC = this.rmsNorm(x, ca.norm.ours);
      x = this.combine('Add', x, this.attend(normedC, cross[i], ca, B, T, R, crossBias), R, this.cfg.dModel);
      x = this.feedForward(x, t5Sublayer('dec', i, 'ffn'), R);
    }
    return this.rmsNorm(x, 'dec.finalNorm');
  }

  /** LM head: logits [rows, V]; tied embeddings rescale by d_model**-0.5 first (HF T5). */
  lmHead(x: string): string {
    if (this.cfg.tieWordEmbeddings) {
      return this.g.op('Gemm', [this.g.op('Mul', [x, this.g.f32([this.cfg.dModel ** -0.5], [])]), this.w('embed')], { transB: 1 });
    }
    return this.g.op('Gemm', [x, this.w('lmHead')], { transB: 1 });
  }
}

export interface BuildOptions {
  kind: GraphKind;
  cfg: T5Config;
  weights: Map<string, WeightSource>;
  /** LoRA targets with graph inputs (sorted by path); empty for the base model alone. */
  lora: readonly LoraTargetShape[];
  /** Inputs are module stacks + composition weights (composed in the graph) instead of composed A/B. */
  stacked?: boolean;
}

/**
 * The inputs of a teacher-forced T5 batch, as index.ts's t5ScoreFeeds fills them: ids and mask
 * [B, S], decoder inputs [B, T], position buckets, the causal mask, labels (−100 as 0) and their
 * mask. Shared by the score/logits graphs and the training graph (t5-train-graph.ts).
 */
export function t5BatchInputs(g: Graph): { ids: string; mask: string; decIds: string; encBuckets: string; decBuckets: string; causal: string; labels: string; keep: string } {
  return {
    ids: g.input('input_ids', 'int64', ['B', 'S']),
    mask: g.input('attention_mask', 'float', ['B', 'S']),
    decIds: g.input('decoder_input_ids', 'int64', ['B', 'T']),
    encBuckets: g.input('enc_buckets', 'int64', ['S', 'S']),
    decBuckets: g.input('dec_buckets', 'int64', ['T', 'T']),
    causal: g.input('dec_causal', 'float', ['T', 'T']),
    labels: g.input('label_ids', 'int64', ['B', 'T']),
    keep: g.input('label_mask', 'float', ['B', 'T']),
  };
}

/** Builds one graph; returns the serialised ModelProto. */
export function buildT5Graph(o: BuildOptions): Uint8Array {
  const b = new T5Builder(o.kind, o.cfg, o.weights, o.lora, o.stacked === true);
  const g = b.g;
  const cfg = o.cfg;
  const { numHeads: H, dKv: dk } = cfg;
  if (o.kind === 'score' || o.kind === 'logits') {
    const { ids, mask, decIds, encBuckets, decBuckets, causal, labels, keep } = t5BatchInputs(g);
    const enc = b.encoder(ids, mask, encBuckets);
    const cross = b.crossKV(enc.hidden, enc.B, enc.S, enc.R);
    const T = b.dims(decIds, 1, 2);
    const R = g.op('Mul', [enc.B, T]);
    const selfBias = g.op('Add', [b.positionBias('dec', decBuckets), causal]);
    const out = b.decoder(b.embed(decIds), enc.B, T, R, selfBias, enc.maskBias, cross, (i, normed) =>
      b.projectKV(normed, t5Sublayer('dec', i, 'self'), enc.B, T, R),
    );
    const logits = b.lmHead(out.v); // [g·B·T, V]
    // Token cross-entropy: −log softmax at the label, per (group, example, position).
    const logp = b.reshape(g.op('LogSoftmax', [logits], { axis: -1 }), [-1, R, cfg.vocabSize]); // [g, B·T, V]
    const idx = g.op('Expand', [b.reshape(labels, [1, -1, 1]), b.shape([b.dims(logp, 0, 1), 1, 1])]);
    const picked = g.op('GatherElements', [logp, idx], { axis: 2 }); // [g, B·T, 1]
    const nll = g.op('Mul', [g.op('Neg', [b.reshape(picked, [-1, enc.B, T])]), keep]);
    g.output('token_nll', nll);
    if (o.kind === 'logits') {
      g.output('logits', logits);
      g.output('encoder_hidden', enc.hidden.v);
    }
  } else if (o.kind === 'encoder') {
    const ids = g.input('input_ids', 'int64', ['B', 'S']);
    const mask = g.input('attention_mask', 'float', ['B', 'S']);
    const encBuckets = g.input('enc_buckets', 'int64', ['S', 'S']);
    const enc = b.encoder(ids, mask, encBuckets);
    b.crossKV(enc.hidden, enc.B, enc.S, enc.R).forEach((kv, i) => {
      // Generation runs one candidate: g = 1 whether or not a delta touched the rows.
      g.output(`cross_k.${i}`, kv.kT);
      g.output(`cross_v.${i}`, kv.v);
    });
  } else {
    const tok = g.input('decoder_input_ids', 'int64', ['B', 1]);
    const mask = g.input('attention_mask', 'float', ['B', 'S']);
    const buckets = g.input('self_buckets', 'int64', [1, 'P1']);
    const B = b.dims(tok, 0, 1);
    const cross: KV[] = [];
    const past: KV[] = [];
    for (let i = 0; i < cfg.numDecoderLayers; i++) {
      cross.push({ kT: g.input(`cross_k.${i}`, 'float', [1, 'B', H, dk, 'S']), v: g.input(`cross_v.${i}`, 'float', [1, 'B', H, 'S', dk]), shared: true });
      past.push({ kT: g.input(`past_k.${i}`, 'float', [1, 'B', H, dk, 'P']), v: g.input(`past_v.${i}`, 'float', [1, 'B', H, 'P', dk]), shared: true });
    }
    const out = b.decoder(b.embed(tok), B, 1, B, b.positionBias('dec', buckets), b.maskBias(mask), cross, (i, normed) => {
      const kv = b.projectKV(normed, t5Sublayer('dec', i, 'self'), B, 1, B);
      const present: KV = { kT: g.op('Concat', [past[i].kT, kv.kT], { axis: 4 }), v: g.op('Concat', [past[i].v, kv.v], { axis: 3 }), shared: kv.shared };
      g.output(`present_k.${i}`, present.kT);
      g.output(`present_v.${i}`, present.v);
      return present;
    });
    const logits = b.lmHead(out.v); // [B, V]
    g.output('next_token', g.op('ArgMax', [logits], { axis: -1, keepdims: 0 }), 'int64');
    // 1 when any logit is NaN/∞ (NaN weights, or a backend that ran out of memory): ArgMax would
    // still pick a token, so without it such a model generates quietly.
    const bad = g.op('Or', [g.op('IsNaN', [logits]), g.op('IsInf', [logits])]);
    g.output('nonfinite', g.op('ReduceMax', [g.op('Cast', [bad], { to: 1 })], { keepdims: 0 }));
  }
  return g.encode();
}

/** Dims helper for callers building matching feeds. */
export type { Dim };
