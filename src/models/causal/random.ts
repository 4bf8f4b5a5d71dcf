/**
 * Seeded random decoder-only checkpoints in Hugging Face's format (config.json with model_type,
 * generation_config.json, model.safetensors written through the family's weight table), for
 * benchmarks and for side-by-side runs through Python transformers. No tokenizer: worlds built on
 * them use token-id data.
 *
 * Initialisation follows the shared fixtures (../shared/fixtures/{llama-gqa,gpt2}/README.md)
 * rather than HF's (std 0.02, norms exactly 1), which on a random model gives near-uniform
 * attention and near-zero logits: norms U(0.6, 1.4), Linear weights N(0, 1/in), biases
 * N(0, 0.02²); an untied head N(0, (2.5/√d)²) so that logits have std ~2.5. A tied head is the
 * embedding, and a large embedding then makes every position predict its own token, so tied
 * models get the GPT-2 fixture's recipe: embedding (and GPT-2's position table) N(0, 0.1²) and a
 * final-norm gain of 2.5/(0.1·√d); GPT-2's output projections are N(0, 9/in) as in its fixture.
 */
import { makeDir, writeFileAtomic } from '../../io/atomic.ts';
import { writeSafetensors, type TensorToWrite } from '../../io/safetensors.ts';
import { LorahubError } from '../../errors.ts';
import { Rng } from '../../rng.ts';
import { scaledNormals } from '../t5/random.ts';
import type { WeightEntry } from '../shared/family.ts';
import { archFromHfConfig, type CausalArch } from '../index.ts';

export type RandomCausalArch = 'llama' | 'qwen2' | 'gpt2';
export const RANDOM_CAUSAL_ARCHS: readonly RandomCausalArch[] = ['llama', 'qwen2', 'gpt2'];

/** Special ids of the small random vocabularies (as the fixtures: pad 0, bos 1, eos 2; content 3..). */
const SMALL_SPECIALS = { pad_token_id: 0, bos_token_id: 1, eos_token_id: 2 };

/**
 * config.json fields per architecture and size. `tiny` has the fixtures' sizes; llama and qwen2
 * `small` are quick benchmark models (28 M and 26 M parameters, 0.1 GB); the others have the
 * shapes (and vocabularies, special ids, rope settings) of released checkpoints, from their
 * config.json on the Hugging Face Hub:
 *   qwen2 0.5b  — Qwen/Qwen2.5-0.5B: 494 M parameters, 2.0 GB as F32 (tied; q/k/v biases)
 *   llama 1b    — meta-llama/Llama-3.2-1B: 1.24 B parameters, 4.9 GB as F32 (tied; llama3 rope)
 *   gpt2 small  — openai-community/gpt2 (GPT-2 small): 124 M parameters, 0.5 GB as F32
 */
export const RANDOM_CAUSAL_SIZES: Record<RandomCausalArch, Record<string, Record<string, unknown>>> = {
  llama: {
    tiny: { hidden_size: 64, intermediate_size: 160, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 256, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000.0, tie_word_embeddings: false, ...SMALL_SPECIALS },
    small: { hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 4096, max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 500000.0, tie_word_embeddings: false, ...SMALL_SPECIALS },
    '1b': {
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      rope_theta: 500000.0,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      tie_word_embeddings: true,
      bos_token_id: 128000,
      eos_token_id: 128001,
    },
  },
  qwen2: {
    tiny: { hidden_size: 64, intermediate_size: 160, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 256, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, use_sliding_window: false, ...SMALL_SPECIALS },
    small: { hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 4096, max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, use_sliding_window: false, ...SMALL_SPECIALS },
    '0.5b': {
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 32768,
      max_window_layers: 24,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      sliding_window: 32768,
      use_sliding_window: false,
      tie_word_embeddings: true,
      bos_token_id: 151643,
      eos_token_id: 151643,
    },
  },
  gpt2: {
    tiny: { n_embd: 64, n_head: 4, n_layer: 3, n_positions: 128, vocab_size: 256, ...SMALL_SPECIALS },
    small: { n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257, bos_token_id: 50256, eos_token_id: 50256 },
  },
};

const ARCHITECTURES: Record<RandomCausalArch, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', gpt2: 'GPT2LMHeadModel' };

export function randomCausalSizes(arch: RandomCausalArch): string[] {
  return Object.keys(RANDOM_CAUSAL_SIZES[arch]);
}

/** A full HF config.json object for `arch` at `size`. */
export function randomCausalHfConfig(arch: RandomCausalArch, size: string): Record<string, unknown> {
  const fields = RANDOM_CAUSAL_SIZES[arch][size];
  if (!fields) throw new LorahubError('BAD_ARGUMENT', `unknown size "${size}" for ${arch} (${randomCausalSizes(arch).join(', ')})`);
  const common = arch === 'gpt2' ? { activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, n_inner: null } : { hidden_act: 'silu', attention_dropout: 0.0, ...(arch === 'llama' ? { attention_bias: false, mlp_bias: false } : {}) };
  return { architectures: [ARCHITECTURES[arch]], model_type: arch, ...common, ...fields, torch_dtype: 'float32', use_cache: true };
}

type Init = { normal: number } | { uniform: [number, number] };

/** How each weight of the table is drawn (see the file comment). */
function initOf(arch: CausalArch, e: WeightEntry): Init {
  const c = arch.config;
  const d = e.hfShape[e.hfShape.length - 1];
  const tied = c.tieWordEmbeddings;
  const width = arch.family === 'llama' ? arch.config.hiddenSize : arch.config.nEmbd;
  const gain = tied ? 2.5 / (0.1 * Math.sqrt(width)) : 1;
  if (e.hf === 'model.norm.weight' || e.hf === 'transformer.ln_f.weight') return { uniform: [0.6 * gain, 1.4 * gain] };
  if (/(layernorm|ln_\d)\.weight$/.test(e.hf)) return { uniform: [0.6, 1.4] };
  if (e.hf.endsWith('.bias')) return { normal: 0.02 };
  if (e.hf === 'model.embed_tokens.weight' || e.hf === 'transformer.wte.weight') return { normal: tied ? 0.1 : 1.0 };
  if (e.hf === 'transformer.wpe.weight') return { normal: 0.1 };
  if (e.hf === 'lm_head.weight') return { normal: 2.5 / Math.sqrt(width) };
  // Linear [out, in] (in = the last axis); GPT-2's Conv1D [in, out].
  const fanIn = arch.family === 'gpt2' ? e.hfShape[0] : d;
  const outProj = arch.family === 'gpt2' && /\.c_proj\.weight$/.test(e.hf);
  return { normal: (outProj ? 3 : 1) / Math.sqrt(fanIn) };
}

/** Writes a random checkpoint folder (config.json, generation_config.json, model.safetensors); returns the parameter count. */
export function writeRandomCausal(archName: RandomCausalArch, size: string, seed: number, outDir: string): number {
  const raw = randomCausalHfConfig(archName, size);
  const arch = archFromHfConfig(raw) as CausalArch;
  const rng = Rng.fromSeed(seed);
  const tensors: TensorToWrite[] = [];
  let params = 0;
  for (const e of arch.weightTable()) {
    const n = e.hfShape.reduce((a, b) => a * b, 1);
    params += n;
    const init = initOf(arch, e);
    let data: Float32Array;
    if ('uniform' in init) {
      const [lo, hi] = init.uniform;
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * rng.uniform();
    } else {
      data = scaledNormals(rng, n, init.normal);
    }
    tensors.push({ name: e.hf, dtype: 'F32', shape: e.hfShape, data });
  }
  makeDir(outDir);
  writeSafetensors(`${outDir}/model.safetensors`, tensors, { format: 'pt' });
  writeFileAtomic(`${outDir}/config.json`, `${JSON.stringify({ ...raw, lorahub_random_seed: seed }, null, 2)}\n`);
  const c = arch.config;
  writeFileAtomic(`${outDir}/generation_config.json`, `${JSON.stringify({ bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId, pad_token_id: c.padTokenId }, null, 2)}\n`);
  return params;
}
