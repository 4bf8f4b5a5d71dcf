/**
 * T5 training step as one ONNX graph: the teacher-forced loss of a batch and its gradient with
 * respect to the trainable weights, so that onnxruntime (not tfjs on wasm) does the arithmetic
 * of training. onnxruntime-node has no training API, and ONNX no autodiff, so the backward pass
 * is written here: every primitive of the forward records the nodes of its own vector-Jacobian
 * product on a tape (`Tape`), derived by hand for the shapes that primitive sees, and the tape
 * emits them in reverse. The forward is the computation of models/t5/model.ts (the tfjs forward
 * the trainers differentiate today) and of engine/ort/t5-graph.ts's `score` graph.
 *
 * Inputs: every weight in OUR layout (models/t5/checkpoint.ts: Linear weights [dIn, dOut],
 * embeddings [V, d], position bias [buckets, H], norms [d], untied head [d, V]) under our names;
 * LoRA factors `<path>.lora_A` [r, dIn] and `<path>.lora_B` [dOut, r] (lora.ts's names and PEFT's
 * layout) with the scaling a constant; the batch (input_ids, attention_mask, decoder_input_ids,
 * position buckets, causal mask, labels with −100 as 0, label mask) and `loss_scale` (1 / the
 * batch's label tokens). Outputs: `loss` (Σ token NLL · loss_scale) and `grad.<name>` for every
 * trainable input.
 *
 * One group (no population), rows [B·S, d]; attention [B, H, S, dk]. Dropout is not modelled (the
 * trainers use none).
 */
import { LorahubError } from '../../errors.ts';
import { loraFactorName } from '../../lora/module.ts';
import { oursShape, t5LinearShape, t5Sublayer, t5WeightTable, type T5Sublayer } from '../../models/t5/checkpoint.ts';
import type { T5Config } from '../../models/t5/config.ts';
import { ShapeBuilder } from './builder.ts';
import { MASKED, t5BatchInputs } from './t5-graph.ts';
import type { Graph } from './onnx.ts';

/**
 * Reverse-mode differentiation over graph values. A primitive's rule runs after every use of its
 * output has added its contribution; values that depend on no trainable input get no gradient.
 */
class Tape {
  private readonly rules: (() => void)[] = [];
  private readonly parts = new Map<string, string[]>();
  /** Values whose gradient is wanted: trainable inputs and everything computed from them. */
  private readonly live = new Set<string>();

  constructor(readonly g: Graph) {}

  markLive(v: string): void {
    this.live.add(v);
  }

  isLive(v: string): boolean {
    return this.live.has(v);
  }

  /** Marks `out` live when any input is, and records its rule only then. */
  record(out: string, inputs: readonly string[], rule: (dOut: string) => void): string {
    if (inputs.some((v) => this.live.has(v))) {
      this.live.add(out);
      this.rules.push(() => {
        const d = this.grad(out);
        if (d) rule(d);
      });
    }
    return out;
  }

  /** Adds a contribution to d(loss)/d(v) (ignored for values that need none). */
  add(v: string, d: string): void {
    if (!this.live.has(v)) return;
    const list = this.parts.get(v);
    if (list) list.push(d);
    else this.parts.set(v, [d]);
  }

  /** The summed gradient of `v`, or undefined when nothing reached it. */
  grad(v: string): string | undefined {
    const list = this.parts.get(v);
    if (!list || list.length === 0) return undefined;
    if (list.length > 1) {
      const sum = this.g.op('Sum', list);
      this.parts.set(v, [sum]);
      return sum;
    }
    return list[0];
  }

  backward(loss: string): void {
    this.parts.set(loss, [this.g.f32([1], [])]);
    for (let i = this.rules.length - 1; i >= 0; i--) this.rules[i]();
  }
}

/** One LoRA target's factors and scaling. */
export interface LoraFactors {
  a: string;
  b: string;
  scaling: number;
}

export interface TrainGraphOptions {
  cfg: T5Config;
  /** Names (ours) of the weights to differentiate; the others are frozen inputs. */
  trainable: ReadonlySet<string>;
  /** LoRA targets (HF module path → rank and scaling); their factors are always trainable. */
  lora?: ReadonlyMap<string, { rank: number; scaling: number }>;
}

class TrainBuilder extends ShapeBuilder {
  readonly tape = new Tape(this.g);
  private readonly cfg: T5Config;
  private readonly w = new Map<string, string>();
  private readonly lora = new Map<string, LoraFactors>();
  /** Trainable inputs, in input order. */
  readonly trainable: string[] = [];
  /** Every weight input (frozen or trainable) with its shape. */
  readonly shapes = new Map<string, number[]>();

  constructor(o: TrainGraphOptions) {
    super('t5_train');
    this.cfg = o.cfg;
    for (const e of t5WeightTable(o.cfg)) {
      const v = this.weightInput(e.ours, oursShape(e));
      this.w.set(e.ours, v);
      if (o.trainable.has(e.ours)) {
        this.tape.markLive(v);
        this.trainable.push(v);
      }
    }
    const unknown = [...o.trainable].filter((n) => !this.w.has(n));
    if (unknown.length > 0) throw new LorahubError('INTERNAL', `internal: no weight "${unknown[0]}" to train`);
    for (const [path, { rank, scaling }] of o.lora ?? []) {
      const shape = t5LinearShape(o.cfg, path);
      if (!shape) throw new LorahubError('BAD_ARGUMENT', `LoRA target "${path}": no such Linear in this model`);
      const [dOut, dIn] = shape;
      const a = this.weightInput(loraFactorName(path, 'A'), [rank, dIn]);
      const b = this.weightInput(loraFactorName(path, 'B'), [dOut, rank]);
      for (const v of [a, b]) {
        this.tape.markLive(v);
        this.trainable.push(v);
      }
      this.lora.set(path, { a, b, scaling });
    }
  }

  private weightInput(name: string, shape: number[]): string {
    this.shapes.set(name, shape);
    return this.g.input(name, 'float', shape);
  }

  weight(name: string): string {
    const v = this.w.get(name);
    if (!v) throw new LorahubError('INTERNAL', `internal: no weight "${name}"`);
    return v;
  }

  // --- differentiable primitives ---------------------------------------------------------

  /** Same-shape sum. */
  add(a: string, b: string): string {
    const out = this.g.op('Add', [a, b]);
    return this.tape.record(out, [a, b], (d) => {
      this.tape.add(a, d);
      this.tape.add(b, d);
    });
  }

  /** Same-shape product. */
  mul(a: string, b: string): string {
    const g = this.g;
    const out = g.op('Mul', [a, b]);
    return this.tape.record(out, [a, b], (d) => {
      if (this.tape.isLive(a)) this.tape.add(a, g.op('Mul', [d, b]));
      if (this.tape.isLive(b)) this.tape.add(b, g.op('Mul', [d, a]));
    });
  }

  /** x · c for a constant c. */
  scale(x: string, c: number): string {
    const k = this.g.f32([c], []);
    const out = this.g.op('Mul', [x, k]);
    return this.tape.record(out, [x], (d) => this.tape.add(x, this.g.op('Mul', [d, k])));
  }

  /**
   * y = x·W (+ s·(x·Aᵀ)·Bᵀ when `path` is a LoRA target); x [R, dIn], W [dIn, dOut] (our layout).
   * dx = dy·Wᵀ (+ s·dy·B·A), dW = xᵀ·dy, dB = s·dyᵀ·(x·Aᵀ), dA = (s·dy·B)ᵀ·x.
   */
  linear(x: string, wName: string, path: string): string {
    const g = this.g;
    const W = this.weight(wName);
    const base = g.op('Gemm', [x, W]);
    const f = this.lora.get(path);
    if (!f) {
      return this.tape.record(base, [x, W], (d) => {
        if (this.tape.isLive(x)) this.tape.add(x, g.op('Gemm', [d, W], { transB: 1 }));
        if (this.tape.isLive(W)) this.tape.add(W, g.op('Gemm', [x, d], { transA: 1 }));
      });
    }
    // The scaling is applied to u (x·Aᵀ): a scalar Mul, not Gemm's float alpha attribute.
    const s = g.f32([f.scaling], []);
    const u = g.op('Mul', [g.op('Gemm', [x, f.a], { transB: 1 }), s]); // s·x·Aᵀ [R, r]
    const out = g.op('Add', [base, g.op('Gemm', [u, f.b], { transB: 1 })]);
    return this.tape.record(out, [x, W, f.a, f.b], (d) => {
      const du = g.op('Mul', [g.op('Gemm', [d, f.b]), s]); // s·dy·B [R, r]
      this.tape.add(f.b, g.op('Gemm', [d, u], { transA: 1 })); // [dOut, r]
      this.tape.add(f.a, g.op('Gemm', [du, x], { transA: 1 })); // [r, dIn]
      if (this.tape.isLive(x)) this.tape.add(x, g.op('Add', [g.op('Gemm', [d, W], { transB: 1 }), g.op('Gemm', [du, f.a])]));
      if (this.tape.isLive(W)) this.tape.add(W, g.op('Gemm', [x, d], { transA: 1 }));
    });
  }

  /**
   * T5LayerNorm y = x·inv·w, inv = 1/√(mean(x²) + eps); x [R, d], w [d].
   * dw = Σ_rows dy·x·inv; dx = inv·(dy·w − x̂·mean(dy·w·x̂)) with x̂ = x·inv.
   */
  rmsNorm(x: string, wName: string): string {
    const g = this.g;
    const w = this.weight(wName);
    const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 }); // [R, 1]
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, g.f32([this.cfg.layerNormEpsilon], [])])])]);
    const xn = g.op('Mul', [x, inv]);
    const out = g.op('Mul', [xn, w]);
    return this.tape.record(out, [x, w], (d) => {
      if (this.tape.isLive(w)) this.tape.add(w, g.op('ReduceSum', [g.op('Mul', [d, xn]), g.i64([0])], { keepdims: 0 }));
      if (this.tape.isLive(x)) {
        const dxn = g.op('Mul', [d, w]);
        const m = g.op('ReduceMean', [g.op('Mul', [dxn, xn])], { axes: [-1], keepdims: 1 });
        this.tape.add(x, g.op('Mul', [inv, g.op('Sub', [dxn, g.op('Mul', [xn, m])])]));
      }
    });
  }

  /** transformers' NewGELUActivation 0.5·x·(1 + tanh(c(x + 0.044715x³))), c = √(2/π). */
  geluNew(x: string): string {
    const g = this.g;
    const c = Math.sqrt(2 / Math.PI);
    const x2 = g.op('Mul', [x, x]);
    const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [g.op('Mul', [x2, x]), g.f32([0.044715], [])])]), g.f32([c], [])]);
    const t = g.op('Tanh', [inner]);
    const half1t = g.op('Mul', [g.op('Add', [t, g.f32([1], [])]), g.f32([0.5], [])]); // 0.5(1 + t)
    const out = g.op('Mul', [x, half1t]);
    return this.tape.record(out, [x], (d) => {
      // d/dx = 0.5(1 + t) + 0.5·x·(1 − t²)·c·(1 + 3·0.044715·x²)
      const sech2 = g.op('Sub', [g.f32([1], []), g.op('Mul', [t, t])]);
      const dInner = g.op('Mul', [g.op('Add', [g.f32([1], []), g.op('Mul', [x2, g.f32([3 * 0.044715], [])])]), g.f32([0.5 * c], [])]);
      const slope = g.op('Add', [half1t, g.op('Mul', [g.op('Mul', [x, sech2]), dInner])]);
      this.tape.add(x, g.op('Mul', [d, slope]));
    });
  }

  relu(x: string): string {
    const g = this.g;
    const out = g.op('Relu', [x]);
    return this.tape.record(out, [x], (d) => {
      this.tape.add(x, g.op('Mul', [d, g.op('Cast', [g.op('Greater', [x, g.f32([0], [])])], { to: 1 })]));
    });
  }

  /** Token embeddings [B·S, d] of int64 ids [B, S]; dE = onehot(ids)ᵀ·dx. */
  embed(ids: string): string {
    const g = this.g;
    const table = this.weight('embed');
    const flat = this.reshape(ids, [-1]);
    const out = g.op('Gather', [table, flat]);
    return this.tape.record(out, [table], (d) => {
      this.tape.add(table, g.op('Gemm', [this.oneHot(flat, this.cfg.vocabSize), d], { transA: 1 }));
    });
  }

  /** Float one-hot rows [n, depth] of int64 indices [n]. */
  oneHot(idx: string, depth: number): string {
    return this.g.op('OneHot', [idx, this.g.i64([depth], []), this.g.f32([0, 1])], { axis: -1 });
  }

  /**
   * Position bias [1, H, Sq, Sk] from a stack's bias table [buckets, H] and int64 buckets [Sq, Sk];
   * d(table) = onehot(buckets)ᵀ · d(bias) laid out [Sq·Sk, H].
   */
  positionBias(stack: 'enc' | 'dec', buckets: string): string {
    const g = this.g;
    const table = this.weight(`${stack}.0.self.relBias`);
    const out = g.op('Unsqueeze', [g.op('Transpose', [g.op('Gather', [table, buckets])], { perm: [2, 0, 1] }), g.i64([0])]);
    return this.tape.record(out, [table], (d) => {
      const rows = this.reshape(g.op('Transpose', [d], { perm: [0, 2, 3, 1] }), [-1, this.cfg.numHeads]); // [Sq·Sk, H]
      this.tape.add(table, g.op('Gemm', [this.oneHot(this.reshape(buckets, [-1]), this.cfg.relativeAttentionNumBuckets), rows], { transA: 1 }));
    });
  }

  /**
   * Attention core over projected rows: q [B·Sq, H·dk], k and v [B·Sk, H·dk] → context rows
   * [B·Sq, H·dk]. Scores are q·kᵀ (T5 does not scale) + `pos` (differentiable [1, H, Sq, Sk], or
   * none) + `mask` (a constant broadcastable to [B, H, Sq, Sk]).
   */
  attention(q: string, k: string, v: string, B: string, Sq: string, Sk: string, pos: string | undefined, mask: string): string {
    const g = this.g;
    const { numHeads: H, dKv: dk } = this.cfg;
    const heads = (x: string, S: string) => g.op('Transpose', [this.reshape(x, [B, S, H, dk])], { perm: [0, 2, 1, 3] }); // [B, H, S, dk]
    const rows = (x: string) => this.reshape(g.op('Transpose', [x], { perm: [0, 2, 1, 3] }), [-1, H * dk]);
    const qh = heads(q, Sq);
    const kh = heads(k, Sk);
    const vh = heads(v, Sk);
    let scores = g.op('Add', [g.op('MatMul', [qh, g.op('Transpose', [kh], { perm: [0, 1, 3, 2] })]), mask]);
    if (pos) scores = g.op('Add', [scores, pos]);
    const p = g.op('Softmax', [scores], { axis: -1 }); // [B, H, Sq, Sk]
    const out = rows(g.op('MatMul', [p, vh]));
    const inputs = pos ? [q, k, v, pos] : [q, k, v];
    return this.tape.record(out, inputs, (d) => {
      const dctx = heads(d, Sq); // [B, H, Sq, dk]
      const dp = g.op('MatMul', [dctx, g.op('Transpose', [vh], { perm: [0, 1, 3, 2] })]); // [B, H, Sq, Sk]
      const ds = g.op('Mul', [p, g.op('Sub', [dp, g.op('ReduceSum', [g.op('Mul', [dp, p]), g.i64([-1])], { keepdims: 1 })])]);
      if (this.tape.isLive(v)) this.tape.add(v, rows(g.op('MatMul', [g.op('Transpose', [p], { perm: [0, 1, 3, 2] }), dctx])));
      if (this.tape.isLive(q)) this.tape.add(q, rows(g.op('MatMul', [ds, kh])));
      if (this.tape.isLive(k)) this.tape.add(k, rows(g.op('MatMul', [g.op('Transpose', [ds], { perm: [0, 1, 3, 2] }), qh])));
      if (pos && this.tape.isLive(pos)) this.tape.add(pos, g.op('ReduceSum', [ds, g.i64([0])], { keepdims: 1 }));
    });
  }

  // --- T5 -------------------------------------------------------------------------------

  /**
   * T5LayerSelfAttention / T5LayerCrossAttention: x + o(attention(q(norm(x)), k, v)), keys and
   * values from norm(x) itself (Sk = Sq) or from the encoder states `kv` (cross-attention).
   */
  attentionSublayer(x: string, sub: T5Sublayer, B: string, Sq: string, Sk: string, pos: string | undefined, mask: string, kv?: string): string {
    const normed = this.rmsNorm(x, sub.norm.ours);
    const source = kv ?? normed;
    const q = this.linear(normed, `${sub.ours}.q`, `${sub.hf}.q`);
    const k = this.linear(source, `${sub.ours}.k`, `${sub.hf}.k`);
    const v = this.linear(source, `${sub.ours}.v`, `${sub.hf}.v`);
    const ctx = this.attention(q, k, v, B, Sq, Sk, pos, mask);
    return this.add(x, this.linear(ctx, `${sub.ours}.o`, `${sub.hf}.o`));
  }

  feedForward(x: string, sub: T5Sublayer): string {
    const cfg = this.cfg;
    const normed = this.rmsNorm(x, sub.norm.ours);
    let hidden: string;
    if (cfg.isGatedAct) {
      const gate = this.linear(normed, `${sub.ours}.wi0`, `${sub.hf}.wi_0`);
      const lin = this.linear(normed, `${sub.ours}.wi1`, `${sub.hf}.wi_1`);
      hidden = this.mul(cfg.denseActFn === 'relu' ? this.relu(gate) : this.geluNew(gate), lin);
    } else {
      hidden = this.relu(this.linear(normed, `${sub.ours}.wi`, `${sub.hf}.wi`));
    }
    return this.add(x, this.linear(hidden, `${sub.ours}.wo`, `${sub.hf}.wo`));
  }

  /**
   * Σ over positions of keep·(−log softmax(logits)[label]) · scale, a scalar;
   * d(logits) = (softmax − onehot(label)) · keep · scale.
   */
  crossEntropy(logits: string, labels: string, keep: string, scale: string): string {
    const g = this.g;
    const logp = g.op('LogSoftmax', [logits], { axis: -1 }); // [R, V]
    const picked = g.op('GatherElements', [logp, g.op('Unsqueeze', [labels, g.i64([1])])], { axis: 1 }); // [R, 1]
    const w = g.op('Mul', [g.op('Unsqueeze', [keep, g.i64([1])]), scale]); // [R, 1]
    const out = g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [picked, w])], { keepdims: 0 })]);
    return this.tape.record(out, [logits], (d) => {
      const dl = g.op('Mul', [g.op('Sub', [g.op('Exp', [logp]), this.oneHot(labels, this.cfg.vocabSize)]), w]);
      this.tape.add(logits, g.op('Mul', [dl, d]));
    });
  }
}

/**
 * Builds the training graph; returns the serialised ModelProto, every weight input with its shape,
 * and the trainable ones (output `grad.<name>` each).
 */
export function buildT5TrainGraph(o: TrainGraphOptions): { bytes: Uint8Array; shapes: Map<string, number[]>; trainable: string[] } {
  const b = new TrainBuilder(o);
  const g = b.g;
  const cfg = o.cfg;
  const { ids, mask, decIds, encBuckets, decBuckets, causal, labels, keep } = t5BatchInputs(g);
  const lossScale = g.input('loss_scale', 'float', []);

  const B = b.dims(ids, 0, 1);
  const S = b.dims(ids, 1, 2);
  const T = b.dims(decIds, 1, 2);
  // Padding bias [B, 1, 1, S] (constant).
  const maskBias = b.reshape(g.op('Mul', [g.op('Sub', [g.f32([1], []), mask]), g.f32([MASKED], [])]), [B, 1, 1, S]);

  let x = b.embed(ids);
  const encPos = b.positionBias('enc', encBuckets);
  for (let i = 0; i < cfg.numLayers; i++) {
    x = b.attentionSublayer(x, t5Sublayer('enc', i, 'self'), B, S, S, encPos, maskBias);
    x = b.feedForward(x, t5Sublayer('enc', i, 'ffn'));
  }
  const enc = b.rmsNorm(x, 'enc.finalNorm');

  let y = b.embed(decIds);
  const decPos = b.positionBias('dec', decBuckets);
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    y = b.attentionSublayer(y, t5Sublayer('dec', i, 'self'), B, T, T, decPos, causal);
    y = b.attentionSublayer(y, t5Sublayer('dec', i, 'cross'), B, T, S, undefined, maskBias, enc);
    y = b.feedForward(y, t5Sublayer('dec', i, 'ffn'));
  }
  let out = b.rmsNorm(y, 'dec.finalNorm');
  // LM head: tied embeddings rescale by d_model**-0.5 and project on the embedding (HF T5).
  let logits: string;
  if (cfg.tieWordEmbeddings) {
    out = b.scale(out, cfg.dModel ** -0.5);
    const E = b.weight('embed');
    logits = g.op('Gemm', [out, E], { transB: 1 });
    b.tape.record(logits, [out, E], (d) => {
      b.tape.add(out, g.op('Gemm', [d, E]));
      b.tape.add(E, g.op('Gemm', [d, out], { transA: 1 }));
    });
  } else {
    logits = b.linear(out, 'lmHead', 'lm_head');
  }
  const loss = b.crossEntropy(logits, b.reshape(labels, [-1]), b.reshape(keep, [-1]), lossScale);
  g.output('loss', loss);
  b.tape.backward(loss);
  for (const v of b.trainable) {
    const d = b.tape.grad(v);
    // A trainable weight the loss does not reach (none in T5) still gets its zero gradient.
    g.output(`grad.${v}`, d ?? g.op('Mul', [v, g.f32([0], [])]));
  }
  return { bytes: g.encode(), shapes: b.shapes, trainable: b.trainable };
}
