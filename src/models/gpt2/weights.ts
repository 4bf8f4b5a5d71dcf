/**
 * GPT-2 checkpoints (GPT2LMHeadModel): one explicit table from Hugging Face names to ours, every
 * shape asserted (STYLE.md §4), and the layers a LoRA may target.
 *
 * GPT-2's projections are `Conv1D` layers (transformers pytorch_utils.py): y = x·W + b with W
 * stored [in, out], the transpose of a torch Linear, so they need no transpose for a tfjs forward
 * and the ort graphs multiply without transB. PEFT's LoRA factors on them keep Linear's layouts
 * (lora_A [r, in], lora_B [out, r]); only merging transposes (fan_in_fan_out).
 *
 * Our names are HF's canonical ones ("transformer.h.0.attn.c_attn.weight", the PEFT module path
 * + ".weight"). Checkpoints saved from a bare GPT2Model — OpenAI's `gpt2` on the Hub among them —
 * store the same tensors without the "transformer." prefix; both are read.
 */
import type { SafetensorsFile } from '../../io/safetensors.ts';
import { resolveByTable, type ResolvedWeight, type WeightEntry } from '../shared/family.ts';
import type { Gpt2Config } from './config.ts';

/** PEFT target_modules names of GPT-2's Conv1D layers. */
export const GPT2_LINEAR_NAMES = ['c_attn', 'c_proj', 'c_fc'] as const;

const LINEAR_RE = /^transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$/;

/** [dOut, dIn] (PEFT's out_features, in_features) of each Conv1D of a block. */
function blockLinears(cfg: Gpt2Config): Record<string, [number, number]> {
  const d = cfg.nEmbd;
  return {
    // q, k and v fused: out = 3·d, split in that order.
    'attn.c_attn': [3 * d, d],
    'attn.c_proj': [d, d],
    'mlp.c_fc': [cfg.nInner, d],
    'mlp.c_proj': [d, cfg.nInner],
  };
}

/** [dOut, dIn] of the Conv1D at a PEFT module path ("transformer.h.0.attn.c_attn"), or undefined. */
export function gpt2LinearShape(cfg: Gpt2Config, path: string): [number, number] | undefined {
  const m = LINEAR_RE.exec(path);
  if (!m || Number(m[1]) >= cfg.nLayer) return undefined;
  return blockLinears(cfg)[m[2]];
}

/** The full table. Order: embeddings, blocks, final norm, head. */
export function gpt2WeightTable(cfg: Gpt2Config): WeightEntry[] {
  const d = cfg.nEmbd;
  const rows: WeightEntry[] = [];
  const vec = (hf: string, n: number) => rows.push({ hf, ours: hf, hfShape: [n], transpose: false });
  const norm = (p: string) => {
    vec(`${p}.weight`, d);
    vec(`${p}.bias`, d);
  };
  rows.push({ hf: 'transformer.wte.weight', ours: 'transformer.wte.weight', hfShape: [cfg.vocabSize, d], transpose: false });
  rows.push({ hf: 'transformer.wpe.weight', ours: 'transformer.wpe.weight', hfShape: [cfg.nPositions, d], transpose: false });
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = `transformer.h.${i}`;
    norm(`${p}.ln_1`);
    for (const [name, [dOut, dIn]] of Object.entries(blockLinears(cfg))) {
      // Conv1D: weight [in, out] as stored, already the layout y = x·W needs.
      rows.push({ hf: `${p}.${name}.weight`, ours: `${p}.${name}.weight`, hfShape: [dIn, dOut], transpose: false });
      vec(`${p}.${name}.bias`, dOut);
      if (name === 'attn.c_proj') norm(`${p}.ln_2`);
    }
  }
  norm('transformer.ln_f');
  if (!cfg.tieWordEmbeddings) rows.push({ hf: 'lm_head.weight', ours: 'lm_head.weight', hfShape: [cfg.vocabSize, d], transpose: true });
  return rows;
}

/**
 * Tensors transformers ignores on load (GPT2LMHeadModel `_keys_to_ignore_on_load_unexpected` and
 * friends): the causal-mask buffers older checkpoints saved (`attn.bias`, `attn.masked_bias`), and
 * a tied model's stored copy of the head.
 */
function ignored(cfg: Gpt2Config): RegExp[] {
  return [/^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/, ...(cfg.tieWordEmbeddings ? [/^lm_head\.weight$/] : [])];
}

export function resolveGpt2Checkpoint(cfg: Gpt2Config, st: SafetensorsFile): ResolvedWeight[] {
  // One prefix for the whole file, as transformers decides it (base_model_prefix "transformer").
  const bare = !st.has('transformer.wte.weight') && st.has('wte.weight');
  const candidates = (hf: string) => (bare && hf.startsWith('transformer.') ? [hf.slice('transformer.'.length)] : [hf]);
  return resolveByTable(gpt2WeightTable(cfg), st, { candidates, ignored: ignored(cfg) });
}
