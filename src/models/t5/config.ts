/**
 * T5 configuration from a Hugging Face `config.json`, with transformers' own defaults
 * (transformers/models/t5/configuration_t5.py) for every field a file may omit.
 */
import { readHfConfig } from '../shared/family.ts';
import { LorahubError } from '../../errors.ts';

export type FeedForwardProj = 'relu' | 'gated-gelu' | 'gated-relu' | 'gelu';

export interface T5Config {
  vocabSize: number;
  dModel: number;
  dKv: number;
  dFf: number;
  numLayers: number;
  /** Defaults to numLayers (HF: `num_decoder_layers or num_layers`). */
  numDecoderLayers: number;
  numHeads: number;
  relativeAttentionNumBuckets: number;
  relativeAttentionMaxDistance: number;
  layerNormEpsilon: number;
  /** v1.0: "relu" (wi, wo); v1.1/FLAN: "gated-gelu" (wi_0, wi_1, wo). */
  feedForwardProj: FeedForwardProj;
  /** "relu" | "gelu_new" (HF maps "gated-gelu" to gelu_new). */
  denseActFn: 'relu' | 'gelu_new';
  isGatedAct: boolean;
  /** HF default true: lm_head shares `shared.weight` and the decoder output is scaled by d_model**-0.5. */
  tieWordEmbeddings: boolean;
  padTokenId: number;
  eosTokenId: number;
  decoderStartTokenId: number;
  /** The original JSON, kept for writing a merged checkpoint back out unchanged. */
  raw: Record<string, unknown>;
}

/** transformers' T5Config defaults (v4.31). */
const HF_DEFAULTS = Object.freeze({
  vocab_size: 32128,
  d_model: 512,
  d_kv: 64,
  d_ff: 2048,
  num_layers: 6,
  num_heads: 8,
  relative_attention_num_buckets: 32,
  relative_attention_max_distance: 128,
  layer_norm_epsilon: 1e-6,
  feed_forward_proj: 'relu',
  // A missing tie_word_embeddings means true (PretrainedConfig default).
  tie_word_embeddings: true,
  pad_token_id: 0,
  eos_token_id: 1,
  // T5 starts decoding from the pad token.
  decoder_start_token_id: 0,
});

function intField(raw: Record<string, unknown>, key: keyof typeof HF_DEFAULTS, file: string): number {
  const v = raw[key] ?? HF_DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new LorahubError('BAD_CONFIG', `${file}: "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parses an HF T5 config object. `file` names the source in error messages. */
export function t5ConfigFromHf(raw: Record<string, unknown>, file = 'config.json'): T5Config {
  const modelType = raw.model_type;
  if (modelType !== undefined && modelType !== 't5') {
    throw new LorahubError('UNSUPPORTED', `${file}: model_type "${String(modelType)}" is not supported (only "t5")`);
  }
  const ffp = String(raw.feed_forward_proj ?? HF_DEFAULTS.feed_forward_proj);
  // HF: "gated-<act>" or "<act>"; the act must be one we implement.
  const parts = ffp.split('-');
  const isGated = parts[0] === 'gated';
  const act = parts[parts.length - 1];
  if (!(parts.length === 1 || (parts.length === 2 && isGated)) || (act !== 'relu' && act !== 'gelu')) {
    throw new LorahubError(
      'UNSUPPORTED',
      `${file}: unknown feed_forward_proj "${ffp}" (supported: relu, gated-gelu, gated-relu, gelu)`,
    );
  }
  const eps = raw.layer_norm_epsilon ?? HF_DEFAULTS.layer_norm_epsilon;
  if (typeof eps !== 'number' || !(eps > 0)) {
    throw new LorahubError('BAD_CONFIG', `${file}: "layer_norm_epsilon" must be a positive number`);
  }
  const tie = raw.tie_word_embeddings ?? HF_DEFAULTS.tie_word_embeddings;
  const numLayers = intField(raw, 'num_layers', file);
  const numDecoderLayers = raw.num_decoder_layers == null ? numLayers : intField({ num_layers: raw.num_decoder_layers } as Record<string, unknown>, 'num_layers', file);
  const eosRaw = raw.eos_token_id ?? HF_DEFAULTS.eos_token_id;
  const cfg: T5Config = {
    vocabSize: intField(raw, 'vocab_size', file),
    dModel: intField(raw, 'd_model', file),
    dKv: intField(raw, 'd_kv', file),
    dFf: intField(raw, 'd_ff', file),
    numLayers,
    numDecoderLayers,
    numHeads: intField(raw, 'num_heads', file),
    relativeAttentionNumBuckets: intField(raw, 'relative_attention_num_buckets', file),
    relativeAttentionMaxDistance: intField(raw, 'relative_attention_max_distance', file),
    layerNormEpsilon: eps,
    feedForwardProj: ffp as FeedForwardProj,
    // HF maps "gated-gelu" to gelu_new (configuration_t5.py); plain "gelu" uses ACT2FN["gelu"]
    // which is exact erf gelu: we do not implement it separately, so it is rejected above unless gated.
    denseActFn: act === 'gelu' ? 'gelu_new' : 'relu',
    isGatedAct: isGated,
    tieWordEmbeddings: tie !== false,
    padTokenId: intField(raw, 'pad_token_id', file),
    eosTokenId: Array.isArray(eosRaw) ? Number(eosRaw[0]) : intField(raw, 'eos_token_id', file),
    decoderStartTokenId: intField(raw, 'decoder_start_token_id', file),
    raw,
  };
  if (ffp === 'gelu') {
    throw new LorahubError('UNSUPPORTED', `${file}: feed_forward_proj "gelu" (exact erf gelu, ungated) is not supported`);
  }
  for (const k of ['vocabSize', 'dModel', 'dKv', 'dFf', 'numHeads'] as const) {
    if (cfg[k] === 0) throw new LorahubError('BAD_CONFIG', `${file}: ${k} must be positive`);
  }
  return cfg;
}

/** Reads `<dir>/config.json`. */
export function loadT5Config(dir: string): T5Config {
  const { raw, file } = readHfConfig(dir);
  return t5ConfigFromHf(raw, file);
}
