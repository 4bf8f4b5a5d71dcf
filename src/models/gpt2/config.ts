/**
 * GPT-2 configuration from a Hugging Face `config.json`, with transformers' defaults
 * (models/gpt2/configuration_gpt2.py) for every field a file may omit. GPT-2: learned position
 * embeddings, pre-LayerNorm blocks, a fused q/k/v projection, gelu_new, tied head.
 */
import { LorahubError } from '../../errors.ts';
import { badConfig, boolField, field, intField, positiveField, specialTokens, type ModelConfig } from '../shared/family.ts';
import { parseActivation, type Activation } from '../llama/config.ts';

export interface Gpt2Config extends ModelConfig {
  /** d_model. */
  nEmbd: number;
  nHead: number;
  nLayer: number;
  /** MLP width: n_inner, or 4·n_embd when null. */
  nInner: number;
  /** Rows of the learned position table: the longest sequence the model reads. */
  nPositions: number;
  activation: Activation;
  layerNormEpsilon: number;
  /** Scores divided by √(head dim) (true in every released GPT-2). */
  scaleAttnWeights: boolean;
  /** Scores of block i further divided by i + 1 (Stanford CRFM's Mistral GPT-2 runs). */
  scaleAttnByInverseLayerIdx: boolean;
  /** PretrainedConfig default true (GPT2LMHeadModel ties lm_head to wte). */
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

/** configuration_gpt2.py (GPT-2 small); tie_word_embeddings is PretrainedConfig's default. */
const GPT2_DEFAULTS = Object.freeze({
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_inner: null,
  activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5,
  scale_attn_weights: true,
  scale_attn_by_inverse_layer_idx: false,
  // Changes only the order of float32 operations (an upcast for fp16 training): same forward.
  reorder_and_upcast_attn: false,
  add_cross_attention: false,
  tie_word_embeddings: true,
  bos_token_id: 50256,
  eos_token_id: 50256,
  // GPT-2 has no pad token: padding positions then carry eos (as transformers' generate does).
  pad_token_id: null,
});

/** Parses an HF GPT-2 config object; `file` names it in errors. */
export function gpt2ConfigFromHf(raw: Record<string, unknown>, file = 'config.json'): Gpt2Config {
  const d = GPT2_DEFAULTS;
  if (raw.model_type !== 'gpt2') throw new LorahubError('INTERNAL', `${file}: model_type ${JSON.stringify(raw.model_type)} is not gpt2`);
  if (boolField(raw, d, 'add_cross_attention', file)) throw new LorahubError('UNSUPPORTED', `${file}: "add_cross_attention": true (GPT-2 as a decoder with cross-attention) is not supported`);
  const vocabSize = intField(raw, d, 'vocab_size', file);
  const nEmbd = intField(raw, d, 'n_embd', file);
  const nHead = intField(raw, d, 'n_head', file);
  if (nEmbd % nHead !== 0) throw badConfig(file, `n_embd (${nEmbd}) must be a multiple of n_head (${nHead})`);
  return {
    vocabSize,
    nEmbd,
    nHead,
    nLayer: intField(raw, d, 'n_layer', file),
    nInner: raw.n_inner == null ? 4 * nEmbd : intField(raw, d, 'n_inner', file),
    nPositions: intField(raw, d, 'n_positions', file),
    activation: parseActivation(field(raw, d, 'activation_function'), 'activation_function', file),
    layerNormEpsilon: positiveField(raw, d, 'layer_norm_epsilon', file),
    scaleAttnWeights: boolField(raw, d, 'scale_attn_weights', file),
    scaleAttnByInverseLayerIdx: boolField(raw, d, 'scale_attn_by_inverse_layer_idx', file),
    tieWordEmbeddings: boolField(raw, d, 'tie_word_embeddings', file),
    ...specialTokens(raw, d, file, vocabSize),
    raw,
  };
}

/** Refuses a sequence longer than the learned position table (transformers would index past it). */
export function checkPositions(cfg: Pick<Gpt2Config, 'nPositions'>, length: number, what: string): void {
  if (length > cfg.nPositions) {
    throw new LorahubError('UNSUPPORTED', `${what} is ${length} tokens, longer than this GPT-2 model's n_positions (${cfg.nPositions})`);
  }
}
