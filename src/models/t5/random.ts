/**
 * Seeded random T5 checkpoints in Hugging Face's format (config.json + model.safetensors +
 * ByT5 tokenizer files), for benchmarks and for side-by-side runs through Python transformers.
 *
 * Initialisation follows transformers' T5PreTrainedModel._init_weights (factor 1.0), with the
 * same rescaling as the shared fixtures so that outputs are not degenerate: RMSNorm weights
 * U(0.6, 1.4) instead of exactly 1, an LM head with std d_model^-0.5 (logits of order 1).
 */
import { Rng } from '../../rng.ts';
import { makeDir, writeFileAtomic, type FileToWrite } from '../../io/atomic.ts';
import { writeSafetensors, type TensorToWrite } from '../../io/safetensors.ts';
import { LorahubError } from '../../errors.ts';
import { t5ConfigFromHf, type T5Config } from './config.ts';
import { t5WeightTable } from './checkpoint.ts';

export type RandomT5Size = 'tiny' | 'small' | 'base' | 'large';

/**
 * HF config fields per size; 'small'/'base'/'large' have FLAN-T5-small/base/large shapes with a
 * byte vocabulary ('large': 718 M parameters, 2.9 GB as F32 — the paper's base model's size).
 */
export const RANDOM_T5_SIZES: Record<RandomT5Size, Record<string, number>> = {
  tiny: { d_model: 64, d_kv: 16, num_heads: 4, d_ff: 128, num_layers: 2, num_decoder_layers: 2 },
  small: { d_model: 512, d_kv: 64, num_heads: 6, d_ff: 1024, num_layers: 8, num_decoder_layers: 8 },
  base: { d_model: 768, d_kv: 64, num_heads: 12, d_ff: 2048, num_layers: 12, num_decoder_layers: 12 },
  large: { d_model: 1024, d_kv: 64, num_heads: 16, d_ff: 2816, num_layers: 24, num_decoder_layers: 24 },
};

/** A full HF config.json object for a T5 v1.1 (gated-gelu, untied) model with the ByT5 vocabulary. */
export function randomT5HfConfig(size: RandomT5Size): Record<string, unknown> {
  return {
    architectures: ['T5ForConditionalGeneration'],
    ...RANDOM_T5_SIZES[size],
    decoder_start_token_id: 0,
    dense_act_fn: 'gelu_new',
    dropout_rate: 0.0,
    eos_token_id: 1,
    feed_forward_proj: 'gated-gelu',
    initializer_factor: 1.0,
    is_encoder_decoder: true,
    is_gated_act: true,
    layer_norm_epsilon: 1e-6,
    model_type: 't5',
    pad_token_id: 0,
    relative_attention_max_distance: 128,
    relative_attention_num_buckets: 32,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    use_cache: true,
    // ByT5's vocabulary: 3 specials + 256 bytes + 125 extra ids.
    vocab_size: 384,
  };
}

/** n normals (`rng.normal()`, paired Box–Muller) with standard deviation `std`, as float32. */
export function scaledNormals(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

/**
 * Initial standard deviation of each HF weight (transformers T5PreTrainedModel._init_weights,
 * factor 1.0), except the LM head: HF draws an untied head with std 1.0, which on unit-RMS
 * decoder states gives logits of std √d_model; d_model^-0.5 gives unit logits. The relative
 * position bias std is the caller's (HF: d_model^-0.5). Layer norms are not drawn.
 */
export function t5InitStd(hf: string, cfg: T5Config, relativeBiasStd: number): number {
  const d = cfg.dModel;
  if (hf === 'shared.weight') return 1.0;
  if (hf === 'lm_head.weight') return d ** -0.5;
  if (hf.endsWith('relative_attention_bias.weight')) return relativeBiasStd;
  if (/\.q\.weight$/.test(hf)) return (d * cfg.dKv) ** -0.5;
  if (/\.(k|v)\.weight$/.test(hf)) return d ** -0.5;
  if (/\.o\.weight$/.test(hf)) return (cfg.numHeads * cfg.dKv) ** -0.5;
  if (/\.wi(_0|_1)?\.weight$/.test(hf)) return d ** -0.5;
  if (/\.wo\.weight$/.test(hf)) return cfg.dFf ** -0.5;
  throw new LorahubError('INTERNAL', `internal: no initialisation for ${hf}`);
}

/** Writes a random checkpoint folder; returns the parameter count. */
export function writeRandomT5(size: RandomT5Size, seed: number, outDir: string): number {
  const raw = randomT5HfConfig(size);
  const cfg = t5ConfigFromHf(raw);
  const rng = Rng.fromSeed(seed);
  const tensors: TensorToWrite[] = [];
  let params = 0;
  for (const e of t5WeightTable(cfg)) {
    const n = e.hfShape.reduce((a, b) => a * b, 1);
    params += n;
    let data: Float32Array;
    if (e.hf.endsWith('layer_norm.weight')) {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = 0.6 + 0.8 * rng.uniform();
    } else {
      // A larger relative bias than HF's (0.5), as the shared fixtures do, so outputs are not degenerate.
      data = scaledNormals(rng, n, t5InitStd(e.hf, cfg, 0.5));
    }
    tensors.push({ name: e.hf, dtype: 'F32', shape: e.hfShape, data });
  }
  makeDir(outDir);
  writeSafetensors(`${outDir}/model.safetensors`, tensors, { format: 'pt' });
  writeFileAtomic(`${outDir}/config.json`, `${JSON.stringify({ ...raw, lorahub_random_seed: seed }, null, 2)}\n`);
  writeFileAtomic(
    `${outDir}/generation_config.json`,
    `${JSON.stringify({ decoder_start_token_id: 0, eos_token_id: 1, pad_token_id: 0 }, null, 2)}\n`,
  );
  writeByT5TokenizerFiles(outDir, 125);
  return params;
}

/** special_tokens_map.json + tokenizer_config.json of a ByT5Tokenizer (so AutoTokenizer loads it). */
export function byT5TokenizerFiles(extraIds: number): FileToWrite[] {
  const special = { eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>' };
  return [
    { name: 'special_tokens_map.json', data: `${JSON.stringify(special, null, 2)}\n` },
    { name: 'tokenizer_config.json', data: `${JSON.stringify({ ...special, extra_ids: extraIds, model_max_length: 1024, tokenizer_class: 'ByT5Tokenizer' }, null, 2)}\n` },
  ];
}

export function writeByT5TokenizerFiles(outDir: string, extraIds: number): void {
  for (const f of byT5TokenizerFiles(extraIds)) writeFileAtomic(`${outDir}/${f.name}`, f.data);
}
