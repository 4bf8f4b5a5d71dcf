/**
 * Decoder-only language models as ONNX graphs, built from the HF config: the computation of
 * transformers' LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM and GPT2LMHeadModel
 * (v4.40 eager attention, the fixtures' reference), written as graph nodes.
 *
 * Three graphs share one builder:
 *   score  — rows of prompt + target → per-token cross-entropy at the label positions only
 *            (label_pos [N], flat b·S + t; the LM head runs on those N rows, not on all B·S,
 *            so prompts cost no vocabulary-sized products); returns token_nll [g, N].
 *   logits — the same forward with the logits [B·S, V] and final hidden states as outputs (tests).
 *   decode — greedy generation with a key/value cache: ids [B, S] (the whole prompt at first,
 *            then one token) + past keys/values → the next token of each row (ArgMax in the
 *            graph), the present keys/values, and `nonfinite`.
 *
 * Layout and population scoring follow t5-graph.ts: hidden states are rows [g·R, width]
 * (R = B·S), every base projection one Gemm against the checkpoint's weight in place (torch
 * Linear [out, in] with transB; GPT-2's Conv1D [in, out] without), each LoRA target a pair of
 * graph inputs A [G, r, dIn], B [G, dOut, r] (or a module stack composed in the graph), and
 * rows stay shared by all groups (g = 1) until a group-specific delta touches them.
 *
 * Attention works on [g, B, KV, rep, S, dh]: grouped-query attention reads key/value head
 * ⌊h / rep⌋ for query head h (transformers' repeat_kv), which here is a broadcast of keys
 * [g, B, KV, 1, dh, K] against queries grouped by their key/value head, with no copy. GPT-2 is
 * the case KV = H, rep = 1. The attention bias (causal + padding) is built from a causal table
 * [S, K] and the attention mask [B, K], both inputs.
 */
import { causalGeometry, MASKED, type CausalGeometry } from '../../models/causal/rows.ts';
import type { CausalArch } from '../../models/index.ts';
import { ropeInvFreq, type Activation } from '../../models/llama/config.ts';
import { GraphBuilder, type LoraTargetShape, type Rows, type WeightSource } from './builder.ts';


export type CausalGraphKind = 'score' | 'logits' | 'decode';

/** Per-graph values every block reads. */
interface Context {
  B: string;
  S: string;
  R: string;
  /** Additive attention bias [1, B, 1, 1, S, K]. */
  bias: string;
  /** Rotary tables [1, B, 1, S, dh] (Llama family). */
  rope?: { cos: string; sin: string };
  /** Decode graph: block i's cached keys/values [1, B, KV, P, dh]; present ones become outputs. */
  past?: { k: string; v: string }[];
}

class CausalBuilder extends GraphBuilder {
  readonly geo: CausalGeometry;
  private readonly arch: CausalArch;

  constructor(kind: CausalGraphKind, arch: CausalArch, weights: Map<string, WeightSource>, loraTargets: readonly LoraTargetShape[], stacked: boolean) {
    super(`${arch.modelType}_${kind}`, weights, loraTargets, stacked);
    this.arch = arch;
    this.geo = causalGeometry(arch);
  }

  /** Columns [from, to) of rows [n, width]. */
  columns(x: string, from: number, to: number): string {
    return this.g.op('Slice', [x, this.g.i64([from]), this.g.i64([to]), this.g.i64([1])]);
  }

  /**
   * y = x·Wᵀ + b (torch Linear, W [out, in]) or x·W + b (Conv1D, W [in, out]), plus the group's
   * LoRA delta s·(x·Aᵀ)·Bᵀ where `path` (the PEFT module path) is a target.
   */
  linear(x: Rows, path: string, R: string): Rows {
    const weight = `${path}.weight`;
    const src = this.weights.get(weight);
    if (!src) throw new Error(`internal: no weight "${weight}"`);
    const [dIn, dOut] = this.geo.conv1d ? src.shape : [src.shape[1], src.shape[0]];
    const inputs = [x.v, this.w(weight)];
    if (this.weights.has(`${path}.bias`)) inputs.push(this.w(`${path}.bias`));
    const base = this.g.op('Gemm', inputs, { transB: this.geo.conv1d ? 0 : 1 });
    return this.withLora(x, base, path, R, dIn, dOut);
  }

  /** LlamaRMSNorm: weight · x / √(mean(x²) + eps). */
  rmsNorm(x: Rows, weight: string, eps: number): Rows {
    const g = this.g;
    const variance = g.op('ReduceMean', [g.op('Mul', [x.v, x.v])], { axes: [-1], keepdims: 1 });
    const normed = g.op('Div', [x.v, g.op('Sqrt', [g.op('Add', [variance, g.f32([eps], [])])])]);
    return { v: g.op('Mul', [normed, this.w(weight)]), shared: x.shared };
  }

  /** torch LayerNorm over the last axis: (x − mean) / √(var + eps) · weight + bias (biased variance). */
  layerNorm(x: Rows, prefix: string, eps: number): Rows {
    const g = this.g;
    const centred = g.op('Sub', [x.v, g.op('ReduceMean', [x.v], { axes: [-1], keepdims: 1 })]);
    const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: [-1], keepdims: 1 });
    const normed = g.op('Div', [centred, g.op('Sqrt', [g.op('Add', [variance, g.f32([eps], [])])])]);
    return { v: g.op('Add', [g.op('Mul', [normed, this.w(`${prefix}.weight`)]), this.w(`${prefix}.bias`)]), shared: x.shared };
  }

  /** transformers' ACT2FN: silu x·σ(x); gelu (erf); gelu_new (tanh form); relu. */
  act(x: Rows, kind: Activation): Rows {
    const g = this.g;
    let v: string;
    if (kind === 'silu') v = g.op('Mul', [x.v, g.op('Sigmoid', [x.v])]);
    else if (kind === 'relu') v = g.op('Relu', [x.v]);
    else if (kind === 'gelu') v = g.op('Mul', [g.op('Mul', [x.v, g.f32([0.5], [])]), g.op('Add', [g.f32([1], []), g.op('Erf', [g.op('Mul', [x.v, g.f32([Math.SQRT1_2], [])])])])]);
    else {
      // NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
      const cube = g.op('Mul', [g.op('Mul', [x.v, x.v]), x.v]);
      const inner = g.op('Mul', [g.op('Add', [x.v, g.op('Mul', [cube, g.f32([0.044715], [])])]), g.f32([Math.sqrt(2 / Math.PI)], [])]);
      v = g.op('Mul', [g.op('Mul', [x.v, g.f32([0.5], [])]), g.op('Add', [g.f32([1], []), g.op('Tanh', [inner])])]);
    }
    return { v, shared: x.shared };
  }

  /** Rotary tables [1, B, 1, S, dh] from int64 positions [B, S]: cos/sin of cat(p·inv_freq, p·inv_freq). */
  rotary(positions: string): { cos: string; sin: string } {
    if (this.arch.family !== 'llama') throw new Error('internal: rotary embeddings on a non-Llama model');
    const g = this.g;
    const inv = ropeInvFreq(this.arch.config);
    const freqs = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [positions], { to: 1 }), g.i64([2])]), g.f32(Array.from(inv), [inv.length])]); // [B, S, dh/2]
    const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
    return { cos: g.op('Unsqueeze', [g.op('Cos', [emb]), g.i64([0, 2])]), sin: g.op('Unsqueeze', [g.op('Sin', [emb]), g.i64([0, 2])]) };
  }

  /** x·cos + rotate_half(x)·sin on heads [g, B, h, S, dh], rotate_half(x) = cat(−x₂, x₁). */
  applyRotary(x: string, rope: { cos: string; sin: string }): string {
    const g = this.g;
    const half = this.geo.headDim / 2;
    const x1 = g.op('Slice', [x, g.i64([0]), g.i64([half]), g.i64([4])]);
    const x2 = g.op('Slice', [x, g.i64([half]), g.i64([2 * half]), g.i64([4])]);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: 4 });
    return g.op('Add', [g.op('Mul', [x, rope.cos]), g.op('Mul', [rotated, rope.sin])]);
  }

  /** Rows [g·B·S, h·dh] → heads [g, B, h, S, dh]. */
  heads(x: string, c: Context, h: number): string {
    return this.g.op('Transpose', [this.reshape(x, [-1, c.B, c.S, h, this.geo.headDim])], { perm: [0, 1, 3, 2, 4] });
  }

  /**
   * softmax(q·kᵀ / scale + bias)·v over projected rows q [g·R, H·dh], k and v [g·R, KV·dh];
   * returns the merged heads as rows [g·R, H·dh]. `scales`: the divisors applied in turn.
   */
  attend(q: Rows, k: Rows, v: Rows, layer: number, c: Context, scales: number[]): Rows {
    const g = this.g;
    const { heads: H, kvHeads: KV, headDim: dh } = this.geo;
    let qh = this.heads(q.v, c, H); // [g, B, H, S, dh]
    let kh = this.heads(k.v, c, KV); // [g, B, KV, S, dh]
    let vh = this.heads(v.v, c, KV);
    if (c.rope) {
      qh = this.applyRotary(qh, c.rope);
      kh = this.applyRotary(kh, c.rope);
    }
    if (c.past) {
      // Generation runs one candidate: g = 1 whether or not a delta touched the rows.
      kh = g.op('Concat', [c.past[layer].k, kh], { axis: 3 });
      vh = g.op('Concat', [c.past[layer].v, vh], { axis: 3 });
      g.output(`present_k.${layer}`, kh);
      g.output(`present_v.${layer}`, vh);
    }
    const q6 = this.reshape(qh, [-1, c.B, KV, H / KV, c.S, dh]); // query heads grouped by their key/value head
    const kT6 = g.op('Unsqueeze', [g.op('Transpose', [kh], { perm: [0, 1, 2, 4, 3] }), g.i64([3])]); // [g, B, KV, 1, dh, K]
    const v6 = g.op('Unsqueeze', [vh, g.i64([3])]); // [g, B, KV, 1, K, dh]
    let scores = g.op('MatMul', [q6, kT6]); // [g, B, KV, rep, S, K]
    for (const s of scales) scores = g.op('Div', [scores, g.f32([s], [])]);
    const ctx = g.op('MatMul', [g.op('Softmax', [g.op('Add', [scores, c.bias])], { axis: -1 }), v6]); // [g, B, KV, rep, S, dh]
    const merged = g.op('Transpose', [this.reshape(ctx, [-1, c.B, H, c.S, dh])], { perm: [0, 1, 3, 2, 4] });
    return { v: this.reshape(merged, [-1, H * dh]), shared: q.shared && k.shared && v.shared };
  }

  /** One decoder block (pre-norm residual attention, then MLP). */
  block(x: Rows, i: number, c: Context): Rows {
    const { d, headDim: dh, heads: H, kvHeads: KV } = this.geo;
    if (this.arch.family === 'llama') {
      const cfg = this.arch.config;
      const p = `model.layers.${i}`;
      const h1 = this.rmsNorm(x, `${p}.input_layernorm.weight`, cfg.rmsNormEps);
      const q = this.linear(h1, `${p}.self_attn.q_proj`, c.R);
      const k = this.linear(h1, `${p}.self_attn.k_proj`, c.R);
      const v = this.linear(h1, `${p}.self_attn.v_proj`, c.R);
      // LlamaAttention: scores / math.sqrt(head_dim).
      const attn = this.linear(this.attend(q, k, v, i, c, [Math.sqrt(dh)]), `${p}.self_attn.o_proj`, c.R);
      const h = this.combine('Add', x, attn, c.R, d);
      const h2 = this.rmsNorm(h, `${p}.post_attention_layernorm.weight`, cfg.rmsNormEps);
      const gate = this.act(this.linear(h2, `${p}.mlp.gate_proj`, c.R), cfg.hiddenAct);
      const up = this.linear(h2, `${p}.mlp.up_proj`, c.R);
      const mlp = this.linear(this.combine('Mul', gate, up, c.R, cfg.intermediateSize), `${p}.mlp.down_proj`, c.R);
      return this.combine('Add', h, mlp, c.R, d);
    }
    const cfg = this.arch.config;
    const p = `transformer.h.${i}`;
    const h1 = this.layerNorm(x, `${p}.ln_1`, cfg.layerNormEpsilon);
    const qkv = this.linear(h1, `${p}.attn.c_attn`, c.R); // [g·R, 3d]: q, k, v in that order
    const part = (j: number): Rows => ({ v: this.columns(qkv.v, j * d, (j + 1) * d), shared: qkv.shared });
    // GPT2Attention: scores / √(head dim) when scale_attn_weights, then / (layer + 1) when
    // scale_attn_by_inverse_layer_idx.
    const scales = [...(cfg.scaleAttnWeights ? [Math.sqrt(dh)] : []), ...(cfg.scaleAttnByInverseLayerIdx ? [i + 1] : [])];
    if (H !== KV) throw new Error('internal: GPT-2 has no grouped-query attention');
    const attn = this.linear(this.attend(part(0), part(1), part(2), i, c, scales), `${p}.attn.c_proj`, c.R);
    const h = this.combine('Add', x, attn, c.R, d);
    const h2 = this.layerNorm(h, `${p}.ln_2`, cfg.layerNormEpsilon);
    const mlp = this.linear(this.act(this.linear(h2, `${p}.mlp.c_fc`, c.R), cfg.activation), `${p}.mlp.c_proj`, c.R);
    return this.combine('Add', h, mlp, c.R, d);
  }

  /** Token (+ learned position, GPT-2) embeddings: rows [B·S, d]. */
  embed(ids: string, positions: string): Rows {
    const g = this.g;
    const tokens = g.op('Gather', [this.w(this.geo.embed), this.reshape(ids, [-1])]);
    if (this.arch.family === 'llama') return { v: tokens, shared: true };
    return { v: g.op('Add', [tokens, g.op('Gather', [this.w('transformer.wpe.weight'), this.reshape(positions, [-1])])]), shared: true };
  }

  finalNorm(x: Rows): Rows {
    return this.arch.family === 'llama' ? this.rmsNorm(x, 'model.norm.weight', this.arch.config.rmsNormEps) : this.layerNorm(x, 'transformer.ln_f', this.arch.config.layerNormEpsilon);
  }

  /** LM head: logits [rows, V] (no rescaling in either family, tied or not). */
  lmHead(x: string): string {
    return this.g.op('Gemm', [x, this.w(this.geo.head)], { transB: 1 });
  }

  /** Additive bias [1, B, 1, 1, S, K] from a causal table [S, K] and a float 1/0 mask [B, K]. */
  attentionBias(causal: string, mask: string): string {
    const g = this.g;
    const pad = g.op('Mul', [g.op('Sub', [g.f32([1], []), mask]), g.f32([MASKED], [])]);
    return g.op('Add', [g.op('Unsqueeze', [causal, g.i64([0, 1, 2, 3])]), g.op('Unsqueeze', [pad, g.i64([0, 2, 3, 4])])]);
  }

  /** The decoder stack over ids [B, S]: last block's rows [g·B·S, d] (not yet final-normed). */
  stack(ids: string, positions: string, mask: string, causal: string, past?: { k: string; v: string }[]): { x: Rows; c: Context } {
    const B = this.dims(ids, 0, 1);
    const S = this.dims(ids, 1, 2);
    const c: Context = { B, S, R: this.g.op('Mul', [B, S]), bias: this.attentionBias(causal, mask), past };
    if (this.arch.family === 'llama') c.rope = this.rotary(positions);
    let x = this.embed(ids, positions);
    for (let i = 0; i < this.geo.layers; i++) x = this.block(x, i, c);
    return { x, c };
  }
}

export interface CausalBuildOptions {
  kind: CausalGraphKind;
  arch: CausalArch;
  /** Checkpoint tensors by canonical HF name. */
  weights: Map<string, WeightSource>;
  /** LoRA targets with graph inputs (sorted by path); empty for the base model alone. */
  lora: readonly LoraTargetShape[];
  /** Inputs are module stacks + composition weights (composed in the graph) instead of composed A/B. */
  stacked?: boolean;
}

/** Builds one graph; returns the serialised ModelProto. */
export function buildCausalGraph(o: CausalBuildOptions): Uint8Array {
  const b = new CausalBuilder(o.kind, o.arch, o.weights, o.lora, o.stacked === true);
  const g = b.g;
  const { kvHeads: KV, headDim: dh, d, vocab } = b.geo;
  const ids = g.input('input_ids', 'int64', ['B', 'S']);
  const positions = g.input('position_ids', 'int64', ['B', 'S']);
  if (o.kind === 'decode') {
    const mask = g.input('attention_mask', 'float', ['B', 'K']);
    const causal = g.input('causal', 'float', ['S', 'K']);
    const past = Array.from({ length: b.geo.layers }, (_, i) => ({ k: g.input(`past_k.${i}`, 'float', [1, 'B', KV, 'P', dh]), v: g.input(`past_v.${i}`, 'float', [1, 'B', KV, 'P', dh]) }));
    const { x, c } = b.stack(ids, positions, mask, causal, past);
    // The last position of every row (prompts are left-padded, so it is each row's last token).
    const last = g.op('Slice', [b.reshape(x.v, [-1, c.S, d]), g.i64([-1]), g.i64([Number.MAX_SAFE_INTEGER]), g.i64([1])]);
    const logits = b.lmHead(b.finalNorm({ v: b.reshape(last, [-1, d]), shared: x.shared }).v); // [B, V]
    g.output('next_token', g.op('ArgMax', [logits], { axis: -1, keepdims: 0 }), 'int64');
    // 1 when any logit is NaN/∞: ArgMax would still pick a token, so such a model would generate quietly.
    const bad = g.op('Or', [g.op('IsNaN', [logits]), g.op('IsInf', [logits])]);
    g.output('nonfinite', g.op('ReduceMax', [g.op('Cast', [bad], { to: 1 })], { keepdims: 0 }));
    return g.encode();
  }
  const mask = g.input('attention_mask', 'float', ['B', 'S']);
  const causal = g.input('causal', 'float', ['S', 'S']);
  const { x, c } = b.stack(ids, positions, mask, causal);
  if (o.kind === 'logits') {
    const hidden = b.finalNorm(x).v;
    g.output('logits', b.lmHead(hidden));
    g.output('hidden', hidden);
    return g.encode();
  }
  // Token cross-entropy at the label positions only: −log softmax(logits at t)[label of t + 1].
  const labelPos = g.input('label_pos', 'int64', ['N']);
  const labelIds = g.input('label_ids', 'int64', ['N']);
  const picked = g.op('Gather', [b.reshape(x.v, [-1, c.R, d]), labelPos], { axis: 1 }); // [g, N, d]
  const logits = b.lmHead(b.finalNorm({ v: b.reshape(picked, [-1, d]), shared: x.shared }).v); // [g·N, V]
  const N = b.dims(labelIds, 0, 1);
  const logp = b.reshape(g.op('LogSoftmax', [logits], { axis: -1 }), [-1, N, vocab]); // [g, N, V]
  const idx = g.op('Expand', [b.reshape(labelIds, [1, -1, 1]), b.shape([b.dims(logp, 0, 1), 1, 1])]);
  g.output('token_nll', g.op('Neg', [b.reshape(g.op('GatherElements', [logp, idx], { axis: 2 }), [-1, N])]));
  return g.encode();
}
