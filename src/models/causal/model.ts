/**
 * Decoder-only language models on tfjs: the forward of transformers' LlamaForCausalLM /
 * MistralForCausalLM / Qwen2ForCausalLM and GPT2LMHeadModel (v4.40 eager attention, the fixtures'
 * reference) — the computation engine/ort/causal-graph.ts writes as ONNX nodes, here in tfjs ops.
 *
 * Rows and population scoring follow T5's forward (models/ops.ts): hidden states are rows
 * [g·R, width] (R = B·S), every projection one plain 2D product against a weight stored [in, out]
 * (weights.ts), LoRA deltas added inside the linears without materialising W + BA — one delta per
 * candidate group when G candidates are scored in one pass — and rows stay shared by every group
 * (stored once) until a group-specific delta touches them.
 *
 * Attention reads key/value head ⌊h / rep⌋ for query head h (grouped-query attention,
 * transformers' repeat_kv). The rep query heads of one key/value head are stacked along the query
 * axis, [n·KV, rep·S, dh] against keys [n·KV, dh, K], so keys and values are never repeated.
 * GPT-2 is the case KV = H, rep = 1.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from '../../errors.ts';
import { checkTokenIds } from '../shared/batch.ts';
import { loadArch, type CausalArch } from '../index.ts';
import { addRows, bmm, expand, gatherRows, linear, mm, mulRows, rmsNorm, type GroupedLoraDelta, type LoraDelta, type Rows } from '../shared/ops.ts';
import { weightsFile } from '../t5/checkpoint.ts';
import { activation, applyRotary, layerNorm, rotaryTables, rotateHalfMatrix } from './ops.ts';
import { causalGeometry, type CausalGeometry } from './rows.ts';
import { disposeCausalWeights, loadCausalWeights, type CausalWeights } from './weights.ts';

/** Deltas keyed by PEFT module path ("model.layers.0.self_attn.q_proj"); one for all rows or one per group. */
export type LoraDeltas = Map<string, LoraDelta | GroupedLoraDelta>;

/** Keys kT [B·KV, dh, K] and values [B·KV, K, dh] of one block (generation: one group). */
export interface KVCache {
  kT: tf.Tensor3D;
  v: tf.Tensor3D;
}

/** Token rows [B][S] as a forward reads them: ids, position ids, and the additive attention bias. */
export interface CausalInput {
  inputIds: number[][];
  positionIds: number[][];
  /** [B][K] 1/0 over the keys (K = S, or cached + new keys when generating). */
  attentionMask: number[][];
  /** The causal table [S, K] (rows.ts `causalTable`). */
  causal: Float32Array;
}

/** What every block of one pass reads. */
interface Pass {
  batch: number;
  seq: number;
  groups: number;
  lora: LoraDeltas | undefined;
  /** Additive attention bias [B, 1, S, K]: causal + padding. */
  bias: tf.Tensor4D;
  /** Rotary tables [B·S, dh] (Llama family). */
  rope?: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** Generation: block i's cached keys/values (read), and the present ones (written, kept). */
  past?: KVCache[];
  present?: KVCache[];
}

export class CausalModel {
  readonly geo: CausalGeometry;
  /** rotate_half as a product (ops.ts), Llama family only. */
  private readonly rotateHalf: tf.Tensor2D | undefined;

  constructor(
    readonly arch: CausalArch,
    readonly weights: CausalWeights,
    readonly dir = '',
  ) {
    this.geo = causalGeometry(arch);
    this.rotateHalf = arch.family === 'llama' ? rotateHalfMatrix(this.geo.headDim) : undefined;
  }

  /** Loads an HF decoder-only folder (config.json + model.safetensors). */
  static load(dir: string): CausalModel {
    const arch = loadArch(dir);
    if (arch.family === 't5') throw new LorahubError('INTERNAL', `${dir}: a T5 model is not a decoder-only model`);
    return new CausalModel(arch, loadCausalWeights(arch, weightsFile(dir)), dir);
  }

  dispose(): void {
    disposeCausalWeights(this.weights);
    this.rotateHalf?.dispose();
  }

  private w<T extends tf.Tensor = tf.Tensor2D>(name: string): T {
    const t = this.weights.tensors.get(name);
    if (!t) throw new LorahubError('INTERNAL', `internal: weight "${name}" not loaded`);
    return t as T;
  }

  /** y = x·W (+ b) + the LoRA delta of the Linear / Conv1D at PEFT module path `path`. */
  private linear(x: Rows, path: string, pass: Pass): Rows {
    const y = linear(x, this.w(`${path}.weight`), pass.lora?.get(path), pass.groups);
    const bias = this.weights.tensors.get(`${path}.bias`);
    if (!bias) return y;
    return tf.tidy<Rows>(() => ({ x: tf.add(y.x, bias) as tf.Tensor2D, shared: y.shared }));
  }

  /** The family's norm: LlamaRMSNorm (`<prefix>.weight`) or LayerNorm (`<prefix>.weight`, `.bias`). */
  private norm(x: Rows, prefix: string): Rows {
    if (this.arch.family === 'llama') return { x: rmsNorm(x.x, this.w<tf.Tensor1D>(`${prefix}.weight`), this.arch.config.rmsNormEps), shared: x.shared };
    return { x: layerNorm(x.x, this.w<tf.Tensor1D>(`${prefix}.weight`), this.w<tf.Tensor1D>(`${prefix}.bias`), this.arch.config.layerNormEpsilon), shared: x.shared };
  }

  /**
   * softmax(q·kᵀ / scales + bias)·v over projected rows q [g·R, H·dh], k and v [g·R, KV·dh];
   * returns the merged heads as rows [g·R, H·dh]. `scales`: the divisors applied in turn.
   */
  private attend(q: Rows, k: Rows, v: Rows, layer: number, pass: Pass, scales: number[]): Rows {
    const { heads: H, kvHeads: KV, headDim: dh } = this.geo;
    const rep = H / KV;
    const { batch: B, seq: S, groups } = pass;
    return tf.tidy<Rows>(() => {
      let qx = q.x;
      let kx = k.x;
      if (pass.rope && this.rotateHalf) {
        qx = applyRotary(qx, H, pass.rope, this.rotateHalf);
        kx = applyRotary(kx, KV, pass.rope, this.rotateHalf);
      }
      const shared = q.shared && k.shared && v.shared;
      const g = shared ? 1 : groups;
      if (!shared) {
        qx = expand({ x: qx, shared: q.shared }, groups);
        kx = expand({ x: kx, shared: k.shared }, groups);
      }
      const vx = shared ? v.x : expand(v, groups);
      const n = g * B;
      const qh = tf.reshape(tf.transpose(tf.reshape(qx, [n, S, H, dh]), [0, 2, 1, 3]), [n * KV, rep * S, dh]) as tf.Tensor3D;
      let kT = tf.reshape(tf.transpose(tf.reshape(kx, [n, S, KV, dh]), [0, 2, 3, 1]), [n * KV, dh, S]) as tf.Tensor3D;
      let vh = tf.reshape(tf.transpose(tf.reshape(vx, [n, S, KV, dh]), [0, 2, 1, 3]), [n * KV, S, dh]) as tf.Tensor3D;
      if (pass.present) {
        // Generation runs one candidate (g = 1): the cache holds every key so far.
        const past = pass.past?.[layer];
        if (past) {
          kT = tf.concat([past.kT, kT], 2);
          vh = tf.concat([past.v, vh], 1);
        }
        pass.present[layer] = { kT: tf.keep(kT), v: tf.keep(vh) };
      }
      const K = kT.shape[2];
      let scores: tf.Tensor = tf.reshape(bmm(qh, kT), [g, B, H, S, K]);
      for (const s of scales) scores = tf.div(scores, s);
      const probs = tf.reshape(tf.softmax(tf.add(scores, pass.bias)), [n * KV, rep * S, K]) as tf.Tensor3D;
      const ctx = bmm(probs, vh); // [n·KV, rep·S, dh]
      const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [n, H, S, dh]), [0, 2, 1, 3]), [n * S, H * dh]) as tf.Tensor2D;
      return { x: merged, shared };
    });
  }

  /** LlamaDecoderLayer: pre-RMSNorm residual attention (scores / √head_dim), then the SwiGLU MLP. */
  private llamaBlock(x: Rows, i: number, pass: Pass): Rows {
    if (this.arch.family !== 'llama') throw new LorahubError('INTERNAL', 'internal: a Llama block on a GPT-2 model');
    const cfg = this.arch.config;
    const p = `model.layers.${i}`;
    const h1 = this.norm(x, `${p}.input_layernorm`);
    const q = this.linear(h1, `${p}.self_attn.q_proj`, pass);
    const k = this.linear(h1, `${p}.self_attn.k_proj`, pass);
    const v = this.linear(h1, `${p}.self_attn.v_proj`, pass);
    const attn = this.linear(this.attend(q, k, v, i, pass, [Math.sqrt(this.geo.headDim)]), `${p}.self_attn.o_proj`, pass);
    const h = addRows(x, attn, pass.groups);
    const h2 = this.norm(h, `${p}.post_attention_layernorm`);
    const gate = this.linear(h2, `${p}.mlp.gate_proj`, pass);
    const up = this.linear(h2, `${p}.mlp.up_proj`, pass);
    const act: Rows = { x: activation(gate.x, cfg.hiddenAct), shared: gate.shared };
    return addRows(h, this.linear(mulRows(act, up, pass.groups), `${p}.mlp.down_proj`, pass), pass.groups);
  }

  /** GPT2Block: pre-LayerNorm residual attention over the fused c_attn (q, k, v in that order), then the MLP. */
  private gpt2Block(x: Rows, i: number, pass: Pass): Rows {
    if (this.arch.family !== 'gpt2') throw new LorahubError('INTERNAL', 'internal: a GPT-2 block on a Llama model');
    const cfg = this.arch.config;
    const d = this.geo.d;
    const p = `transformer.h.${i}`;
    const qkv = this.linear(this.norm(x, `${p}.ln_1`), `${p}.attn.c_attn`, pass); // [g·R, 3d]
    const part = (j: number): Rows => ({ x: tf.slice(qkv.x, [0, j * d], [-1, d]), shared: qkv.shared });
    // GPT2Attention: scores / √(head dim) when scale_attn_weights, then / (layer + 1) when
    // scale_attn_by_inverse_layer_idx.
    const scales = [...(cfg.scaleAttnWeights ? [Math.sqrt(this.geo.headDim)] : []), ...(cfg.scaleAttnByInverseLayerIdx ? [i + 1] : [])];
    const attn = this.linear(this.attend(part(0), part(1), part(2), i, pass, scales), `${p}.attn.c_proj`, pass);
    const h = addRows(x, attn, pass.groups);
    const fc = this.linear(this.norm(h, `${p}.ln_2`), `${p}.mlp.c_fc`, pass);
    const mlp = this.linear({ x: activation(fc.x, cfg.activation), shared: fc.shared }, `${p}.mlp.c_proj`, pass);
    return addRows(h, mlp, pass.groups);
  }

  /** Token (+ learned position, GPT-2) embeddings: shared rows [B·S, d]. */
  private embed(input: CausalInput): Rows {
    const tokens = gatherRows(this.w(this.geo.embed), input.inputIds.flat());
    if (this.arch.family === 'llama') return { x: tokens, shared: true };
    return tf.tidy<Rows>(() => ({ x: tf.add(tokens, gatherRows(this.w('transformer.wpe.weight'), input.positionIds.flat())) as tf.Tensor2D, shared: true }));
  }

  /**
   * The decoder stack over `input`: the last block's rows [g·B·S, d], not yet final-normed
   * (g = groups, or 1 when no group-specific delta touched them). With `cache`, the blocks' keys
   * and values are read from `cache.past` and the present ones written to `cache.present` (kept
   * outside any tidy: the caller disposes them).
   */
  stack(input: CausalInput, lora?: LoraDeltas, groups = 1, cache?: { past?: KVCache[]; present: KVCache[] }): Rows {
    const B = input.inputIds.length;
    const S = input.inputIds[0]?.length ?? 0;
    const K = input.attentionMask[0]?.length ?? 0;
    checkTokenIds(input.inputIds, this.arch.config.vocabSize, 'input_ids');
    if (B === 0 || S === 0 || input.causal.length !== S * K) throw new LorahubError('INTERNAL', `stack: ${B}×${S} rows, ${K} keys, causal table of ${input.causal.length}`);
    return tf.tidy<Rows>(() => {
      const mask = tf.tensor2d(input.attentionMask, [B, K], 'float32');
      const pad = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [B, 1, 1, K]);
      const pass: Pass = {
        batch: B,
        seq: S,
        groups,
        lora,
        bias: tf.add(tf.tensor4d(input.causal, [1, 1, S, K]), pad) as tf.Tensor4D,
        rope: this.arch.family === 'llama' ? rotaryTables(this.arch.config, input.positionIds) : undefined,
        past: cache?.past,
        present: cache?.present,
      };
      let x = this.embed(input);
      for (let i = 0; i < this.geo.layers; i++) {
        const prev = x;
        x = tf.tidy<Rows>(() => (this.arch.family === 'llama' ? this.llamaBlock(prev, i, pass) : this.gpt2Block(prev, i, pass)));
        if (i > 0) prev.x.dispose();
      }
      return x;
    });
  }

  /** The final norm of rows [n, d]. */
  finalNorm(x: tf.Tensor2D): tf.Tensor2D {
    return this.norm({ x, shared: true }, this.arch.family === 'llama' ? 'model.norm' : 'transformer.ln_f').x;
  }

  /** LM head: logits [n, V] of final-normed rows (no rescaling in either family, tied or not). */
  lmHead(x: tf.Tensor2D): tf.Tensor2D {
    return mm(x, this.weights.lmHeadT);
  }

  /** Logits [g·B·S, V] and final hidden states [g·B·S, d] of every position (tests, parity). */
  forward(input: CausalInput, lora?: LoraDeltas, groups = 1): { logits: tf.Tensor2D; hidden: tf.Tensor2D; shared: boolean } {
    return tf.tidy(() => {
      const x = this.stack(input, lora, groups);
      const hidden = this.finalNorm(x.x);
      return { logits: this.lmHead(hidden), hidden, shared: x.shared };
    });
  }
}
