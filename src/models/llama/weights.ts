/**
 * Llama-family checkpoints (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM): one explicit
 * table from Hugging Face names to ours, every shape asserted (STYLE.md §4), and the Linears a
 * LoRA may target. Our names are HF's own (PEFT module path + ".weight" / ".bias"): nothing is
 * renamed, and the torch Linear weights [out, in] are the ones a tfjs forward would transpose.
 */
import type { SafetensorsFile } from '../../io/safetensors.ts';
import { resolveByTable, type ResolvedWeight, type WeightEntry } from '../shared/family.ts';
import type { LlamaConfig } from './config.ts';

/** PEFT target_modules names of the Llama family's Linears. */
export const LLAMA_LINEAR_NAMES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

const LINEAR_RE = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$/;

/** [dOut, dIn] of every Linear of a block, by kind and name. */
function blockLinears(cfg: LlamaConfig): Record<string, [number, number, boolean]> {
  const d = cfg.hiddenSize;
  const q = cfg.numHeads * cfg.headDim;
  const kv = cfg.numKvHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  // [dOut, dIn, has bias]
  return {
    'self_attn.q_proj': [q, d, cfg.qkvBias],
    'self_attn.k_proj': [kv, d, cfg.qkvBias],
    'self_attn.v_proj': [kv, d, cfg.qkvBias],
    'self_attn.o_proj': [d, q, cfg.oBias],
    'mlp.gate_proj': [I, d, cfg.mlpBias],
    'mlp.up_proj': [I, d, cfg.mlpBias],
    'mlp.down_proj': [d, I, cfg.mlpBias],
  };
}

/** [dOut, dIn] of the Linear at a PEFT module path ("model.layers.3.self_attn.v_proj"), or undefined. */
export function llamaLinearShape(cfg: LlamaConfig, path: string): [number, number] | undefined {
  const m = LINEAR_RE.exec(path);
  if (!m || Number(m[1]) >= cfg.numLayers) return undefined;
  const shape = blockLinears(cfg)[`${m[2]}.${m[3]}`];
  return shape ? [shape[0], shape[1]] : undefined;
}

/** Whether a Linear carries a bias in this config. */
export function llamaHasBias(cfg: LlamaConfig, path: string): boolean {
  const m = LINEAR_RE.exec(path);
  return m ? blockLinears(cfg)[`${m[2]}.${m[3]}`][2] : false;
}

/** The full table. Order: embeddings, blocks, final norm, head. */
export function llamaWeightTable(cfg: LlamaConfig): WeightEntry[] {
  const d = cfg.hiddenSize;
  const rows: WeightEntry[] = [];
  const vec = (hf: string, n: number) => rows.push({ hf, ours: hf, hfShape: [n], transpose: false });
  rows.push({ hf: 'model.embed_tokens.weight', ours: 'model.embed_tokens.weight', hfShape: [cfg.vocabSize, d], transpose: false });
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    vec(`${p}.input_layernorm.weight`, d);
    for (const [name, [dOut, dIn, bias]] of Object.entries(blockLinears(cfg))) {
      rows.push({ hf: `${p}.${name}.weight`, ours: `${p}.${name}.weight`, hfShape: [dOut, dIn], transpose: true });
      if (bias) vec(`${p}.${name}.bias`, dOut);
      if (name === 'self_attn.o_proj') vec(`${p}.post_attention_layernorm.weight`, d);
    }
  }
  vec('model.norm.weight', d);
  if (!cfg.tieWordEmbeddings) rows.push({ hf: 'lm_head.weight', ours: 'lm_head.weight', hfShape: [cfg.vocabSize, d], transpose: true });
  return rows;
}

/**
 * Tensors transformers ignores on load: the rotary inverse frequencies older checkpoints saved
 * as a buffer (recomputed from the config), and a tied model's stored copy of the head.
 */
function ignored(cfg: LlamaConfig): RegExp[] {
  return [/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/, ...(cfg.tieWordEmbeddings ? [/^lm_head\.weight$/] : [])];
}

export function resolveLlamaCheckpoint(cfg: LlamaConfig, st: SafetensorsFile): ResolvedWeight[] {
  return resolveByTable(llamaWeightTable(cfg), st, { ignored: ignored(cfg) });
}
