/**
 * Llama-family configuration from a Hugging Face `config.json`: Llama (1, 2, 3.x), Mistral and
 * Qwen2 share one decoder (RMSNorm, rotary position embeddings, SwiGLU MLP, grouped-query
 * attention) and differ in defaults, in biases (Qwen2's q/k/v) and in sliding-window attention.
 *
 * Defaults are transformers' own, per model_type (models/{llama,mistral,qwen2}/configuration_*.py;
 * a field absent from config.json, or null, takes them). What lorahub does not compute is refused
 * by name rather than approximated: rope scalings other than linear and llama3, and sliding
 * windows shorter than a sequence (checked per batch by the engine, see `checkWindow`).
 */
import { LorahubError } from '../../errors.ts';
import { badConfig, boolField, field, intField, positiveField, specialTokens, type ModelConfig } from '../shared/family.ts';

export type LlamaModelType = 'llama' | 'mistral' | 'qwen2';
export const LLAMA_MODEL_TYPES: readonly LlamaModelType[] = ['llama', 'mistral', 'qwen2'];

/** transformers' ACT2FN names we compute (silu = swish; gelu_pytorch_tanh is gelu_new's formula). */
export type Activation = 'silu' | 'gelu' | 'gelu_new' | 'relu';
const ACTIVATIONS: Record<string, Activation> = { silu: 'silu', swish: 'silu', gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu' };

/** Parses a `hidden_act` / `activation_function` value (shared with GPT-2). */
export function parseActivation(v: unknown, key: string, file: string): Activation {
  const act = typeof v === 'string' ? ACTIVATIONS[v] : undefined;
  if (!act) throw new LorahubError('UNSUPPORTED', `${file}: "${key}" ${JSON.stringify(v)} is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  return act;
}

/**
 * Rotary scaling (transformers modeling_rope_utils.py): none; `linear` (position interpolation:
 * inv_freq / factor); `llama3` (Llama 3.1+: low frequencies divided by factor, high ones kept,
 * a smooth ramp between).
 */
export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface LlamaConfig extends ModelConfig {
  modelType: LlamaModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Grouped-query attention: query head h reads key/value head ⌊h / (numHeads / numKvHeads)⌋. */
  numKvHeads: number;
  /** `head_dim` when given (Llama 3.2, Qwen3-style configs), else hidden_size / num_attention_heads. */
  headDim: number;
  hiddenAct: Activation;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  /** Biases on q_proj, k_proj, v_proj (Qwen2 always; Llama's attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama's attention_bias). */
  oBias: boolean;
  /** Biases on gate/up/down_proj (Llama's mlp_bias). */
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** Every id that ends generation. */
  eosTokenIds: number[];
  /** Keys a query may see, itself included (Mistral; Qwen2 with use_sliding_window); null: no window. */
  slidingWindow: number | null;
}

/** configuration_llama.py (transformers 4.40–4.5x). */
const LLAMA_DEFAULTS = Object.freeze({
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  // None → num_attention_heads (no grouping).
  num_key_value_heads: null,
  hidden_act: 'silu',
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
  pad_token_id: null,
  bos_token_id: 1,
  eos_token_id: 2,
  tie_word_embeddings: false,
  rope_theta: 10000.0,
  attention_bias: false,
  mlp_bias: false,
});

/** configuration_mistral.py: Llama's layers, GQA 32/8 and a 4096-token sliding window by default. */
const MISTRAL_DEFAULTS = Object.freeze({
  ...LLAMA_DEFAULTS,
  intermediate_size: 14336,
  num_key_value_heads: 8,
  max_position_embeddings: 4096 * 32,
  sliding_window: 4096,
});

/**
 * configuration_qwen2.py: q/k/v always carry biases (not a config field); the sliding window
 * applies only with use_sliding_window (off by default); no bos/eos defaults (PretrainedConfig's
 * None: Qwen2 checkpoints set them).
 */
const QWEN2_DEFAULTS = Object.freeze({
  ...LLAMA_DEFAULTS,
  vocab_size: 151936,
  intermediate_size: 22016,
  num_key_value_heads: 32,
  max_position_embeddings: 32768,
  bos_token_id: null,
  eos_token_id: null,
  use_sliding_window: false,
  sliding_window: 4096,
});

const DEFAULTS: Record<LlamaModelType, Readonly<Record<string, unknown>>> = { llama: LLAMA_DEFAULTS, mistral: MISTRAL_DEFAULTS, qwen2: QWEN2_DEFAULTS };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * rope_theta and the scaling: from `rope_scaling` (+ `rope_theta`), or from transformers 5's
 * `rope_parameters` ({rope_type, rope_theta, …}). The type key is `rope_type`, or `type` in older
 * files (both read by transformers); "default" means no scaling.
 */
function parseRope(raw: Record<string, unknown>, defaults: Readonly<Record<string, unknown>>, file: string): { ropeTheta: number; ropeScaling: RopeScaling } {
  const params = raw.rope_parameters;
  const where = isObject(params) ? 'rope_parameters' : 'rope_scaling';
  const theta = isObject(params) && params.rope_theta != null ? params.rope_theta : field(raw, defaults, 'rope_theta');
  if (typeof theta !== 'number' || !(theta > 0)) throw badConfig(file, `"rope_theta" must be a positive number, got ${JSON.stringify(theta)}`);
  const s = isObject(params) ? params : raw.rope_scaling;
  if (s == null) return { ropeTheta: theta, ropeScaling: { type: 'none' } };
  if (!isObject(s)) throw badConfig(file, `"${where}" must be an object or null, got ${JSON.stringify(s)}`);
  const type = s.rope_type ?? s.type ?? 'default';
  const num = (key: string): number => {
    const v = s[key];
    if (typeof v !== 'number' || !(v > 0)) throw badConfig(file, `"${where}.${key}" must be a positive number for rope type "${String(type)}", got ${JSON.stringify(v)}`);
    return v;
  };
  if (type === 'default') return { ropeTheta: theta, ropeScaling: { type: 'none' } };
  if (type === 'linear') return { ropeTheta: theta, ropeScaling: { type: 'linear', factor: num('factor') } };
  if (type === 'llama3') {
    const r: RopeScaling = { type: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'), highFreqFactor: num('high_freq_factor'), originalMaxPositionEmbeddings: num('original_max_position_embeddings') };
    if (!(r.highFreqFactor > r.lowFreqFactor)) throw badConfig(file, `"${where}": high_freq_factor must be greater than low_freq_factor`);
    return { ropeTheta: theta, ropeScaling: r };
  }
  throw new LorahubError('UNSUPPORTED', `${file}: "${where}" type ${JSON.stringify(type)} is not supported (supported: linear, llama3, or none)`);
}

/** Parses an HF Llama / Mistral / Qwen2 config object; `file` names it in errors. */
export function llamaConfigFromHf(raw: Record<string, unknown>, file = 'config.json'): LlamaConfig {
  const modelType = raw.model_type as LlamaModelType;
  if (!LLAMA_MODEL_TYPES.includes(modelType)) throw new LorahubError('INTERNAL', `${file}: model_type ${JSON.stringify(raw.model_type)} is not a Llama-family type`);
  const d = DEFAULTS[modelType];
  const vocabSize = intField(raw, d, 'vocab_size', file);
  const hiddenSize = intField(raw, d, 'hidden_size', file);
  const numHeads = intField(raw, d, 'num_attention_heads', file);
  const numKvHeads = raw.num_key_value_heads == null && d.num_key_value_heads == null ? numHeads : intField(raw, d, 'num_key_value_heads', file);
  if (numHeads % numKvHeads !== 0) throw badConfig(file, `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  let headDim: number;
  if (raw.head_dim != null) {
    headDim = intField(raw, d, 'head_dim', file);
  } else {
    if (hiddenSize % numHeads !== 0) throw badConfig(file, `hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and no head_dim is given`);
    headDim = hiddenSize / numHeads;
  }
  // Rotary embeddings rotate pairs (x_i, x_{i + d/2}) of every head.
  if (headDim % 2 !== 0) throw badConfig(file, `the head dimension (${headDim}) must be even for rotary embeddings`);
  const prf = raw.partial_rotary_factor;
  if (prf != null && prf !== 1 && prf !== 1.0) throw new LorahubError('UNSUPPORTED', `${file}: "partial_rotary_factor" ${JSON.stringify(prf)} is not supported (only 1)`);
  // attention_bias is Llama's field: Mistral's projections never have biases, and Qwen2's are
  // fixed (q/k/v yes, o no) whatever the file says.
  const attentionBias = modelType === 'llama' && boolField(raw, d, 'attention_bias', file);
  const { ropeTheta, ropeScaling } = parseRope(raw, d, file);

  let slidingWindow: number | null = null;
  const useWindow = modelType === 'mistral' || (modelType === 'qwen2' && boolField(raw, d, 'use_sliding_window', file));
  // An explicit null window (Mistral v0.2+) means none; an absent one takes the default.
  const windowRaw = 'sliding_window' in raw ? raw.sliding_window : d.sliding_window;
  if (useWindow && windowRaw != null) {
    if (typeof windowRaw !== 'number' || !Number.isSafeInteger(windowRaw) || windowRaw < 1) throw badConfig(file, `"sliding_window" must be a positive integer or null, got ${JSON.stringify(windowRaw)}`);
    slidingWindow = windowRaw;
  }

  return {
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize: intField(raw, d, 'intermediate_size', file),
    numLayers: intField(raw, d, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    hiddenAct: parseActivation(field(raw, d, 'hidden_act'), 'hidden_act', file),
    rmsNormEps: positiveField(raw, d, 'rms_norm_eps', file),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings: intField(raw, d, 'max_position_embeddings', file),
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: modelType === 'llama' && boolField(raw, d, 'mlp_bias', file),
    tieWordEmbeddings: boolField(raw, d, 'tie_word_embeddings', file),
    ...specialTokens(raw, d, file, vocabSize),
    slidingWindow,
    raw,
  };
}

/**
 * Refuses a sequence the sliding window would cut: with a window of W keys (HF: key j visible
 * from query i iff i − W < j ≤ i), sequences of at most W tokens attend exactly as without one.
 */
export function checkWindow(cfg: Pick<LlamaConfig, 'slidingWindow' | 'modelType'>, length: number, what: string): void {
  if (cfg.slidingWindow !== null && length > cfg.slidingWindow) {
    throw new LorahubError(
      'UNSUPPORTED',
      `${what} is ${length} tokens, longer than this ${cfg.modelType} model's sliding_window (${cfg.slidingWindow}): sliding-window attention is not implemented; use shorter inputs`,
    );
  }
}

/**
 * The rotary inverse frequencies [headDim / 2] in float32, as transformers computes them
 * (modeling_rope_utils.py `_compute_default_rope_parameters`, `_compute_linear_scaling_…`,
 * `_compute_llama3_parameters`): every step rounded to float32 like the torch float32 tensor ops.
 */
export function ropeInvFreq(cfg: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const f = Math.fround;
  const dim = cfg.headDim;
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f(1 / f(Math.pow(cfg.ropeTheta, f((2 * i) / dim))));
  const s = cfg.ropeScaling;
  if (s.type === 'linear') {
    for (let i = 0; i < inv.length; i++) inv[i] = f(inv[i] / s.factor);
  } else if (s.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < inv.length; i++) {
      const wavelen = f(f(2 * Math.PI) / inv[i]);
      // Long wavelengths (low frequencies) are divided by the factor, short ones kept, and the
      // band between interpolates smoothly.
      const base = wavelen > lowWavelen ? f(inv[i] / s.factor) : inv[i];
      if (wavelen < highWavelen || wavelen > lowWavelen) {
        inv[i] = base;
        continue;
      }
      const smooth = f(f(f(s.originalMaxPositionEmbeddings / wavelen) - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor));
      inv[i] = f(f(f(f(1 - smooth) * base) / s.factor) + f(smooth * base));
    }
  }
  return inv;
}
