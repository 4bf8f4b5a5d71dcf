/**
 * T5 checkpoints: one explicit table from Hugging Face checkpoint names to ours, with every shape
 * asserted and every transpose listed (STYLE.md §4), and its resolution against a
 * model.safetensors. Pure (no tensor library): both engines, merge and the trainers read it, and
 * an ort-only process must not load tfjs for it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LorahubError } from '../../errors.ts';
import type { SafetensorsFile } from '../../io/safetensors.ts';
import type { T5Config } from './config.ts';

export interface WeightEntry {
  /** HF state-dict name, e.g. "encoder.block.0.layer.0.SelfAttention.q.weight". */
  hf: string;
  /** Our name (the key in the tfjs T5Weights.tensors and the ort engine's weight map). */
  ours: string;
  /** Shape as stored by HF. */
  hfShape: number[];
  /** True when the tfjs forward stores the transpose (Linear weights; the ort graphs use HF's layout). */
  transpose: boolean;
}

/** Our layout's shape for a table entry (Linear weights transposed to [dIn, dOut]). */
export function oursShape(e: WeightEntry): number[] {
  return e.transpose ? [e.hfShape[1], e.hfShape[0]] : e.hfShape;
}

export type T5Stack = 'enc' | 'dec';
export type T5SublayerKind = 'self' | 'cross' | 'ffn';

/** A sublayer's names: ours (weight-map prefix) and HF's module path, with its pre-norm's. */
export interface T5Sublayer {
  ours: string;
  hf: string;
  norm: { ours: string; hf: string };
}

/**
 * Where each sublayer of T5 lives — the one statement of T5's layer layout, which the weight
 * table, the LoRA targets (PEFT module paths) and both forwards (models/t5/model.ts,
 * engine/ort/t5-graph.ts) read. Encoder blocks: layer 0 self-attention, layer 1 FFN; decoder
 * blocks: 0 self, 1 cross, 2 FFN (HF T5Block).
 */
export function t5Sublayer(stack: T5Stack, block: number, kind: T5SublayerKind): T5Sublayer {
  const layer = kind === 'self' ? 0 : kind === 'cross' ? 1 : stack === 'enc' ? 1 : 2;
  const module = kind === 'self' ? 'SelfAttention' : kind === 'cross' ? 'EncDecAttention' : 'DenseReluDense';
  const hfBlock = `${stack === 'enc' ? 'encoder' : 'decoder'}.block.${block}.layer.${layer}`;
  return {
    ours: `${stack}.${block}.${kind}`,
    hf: `${hfBlock}.${module}`,
    norm: { ours: `${stack}.${block}.${kind}Norm`, hf: `${hfBlock}.layer_norm` },
  };
}

/** The full table for a config. Order: embeddings, encoder blocks, decoder blocks, heads. */
export function t5WeightTable(cfg: T5Config): WeightEntry[] {
  const d = cfg.dModel;
  const inner = cfg.numHeads * cfg.dKv;
  const rows: WeightEntry[] = [];
  const lin = (hf: string, ours: string, dOut: number, dIn: number) =>
    rows.push({ hf: `${hf}.weight`, ours, hfShape: [dOut, dIn], transpose: true });
  const vec = (hf: string, ours: string, n: number) => rows.push({ hf: `${hf}.weight`, ours, hfShape: [n], transpose: false });

  rows.push({ hf: 'shared.weight', ours: 'embed', hfShape: [cfg.vocabSize, d], transpose: false });
  const attention = ({ hf, ours, norm }: T5Sublayer, withBias: boolean) => {
    lin(`${hf}.q`, `${ours}.q`, inner, d);
    lin(`${hf}.k`, `${ours}.k`, inner, d);
    lin(`${hf}.v`, `${ours}.v`, inner, d);
    lin(`${hf}.o`, `${ours}.o`, d, inner);
    if (withBias) {
      // Only block 0 of each stack owns the relative position bias; later blocks reuse it.
      rows.push({
        hf: `${hf}.relative_attention_bias.weight`,
        ours: `${ours}.relBias`,
        hfShape: [cfg.relativeAttentionNumBuckets, cfg.numHeads],
        transpose: false,
      });
    }
    vec(norm.hf, norm.ours, d);
  };
  const ffn = ({ hf, ours, norm }: T5Sublayer) => {
    if (cfg.isGatedAct) {
      lin(`${hf}.wi_0`, `${ours}.wi0`, cfg.dFf, d);
      lin(`${hf}.wi_1`, `${ours}.wi1`, cfg.dFf, d);
    } else {
      lin(`${hf}.wi`, `${ours}.wi`, cfg.dFf, d);
    }
    lin(`${hf}.wo`, `${ours}.wo`, d, cfg.dFf);
    vec(norm.hf, norm.ours, d);
  };
  for (let i = 0; i < cfg.numLayers; i++) {
    attention(t5Sublayer('enc', i, 'self'), i === 0);
    ffn(t5Sublayer('enc', i, 'ffn'));
  }
  vec('encoder.final_layer_norm', 'enc.finalNorm', d);
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    attention(t5Sublayer('dec', i, 'self'), i === 0);
    attention(t5Sublayer('dec', i, 'cross'), false);
    ffn(t5Sublayer('dec', i, 'ffn'));
  }
  vec('decoder.final_layer_norm', 'dec.finalNorm', d);
  if (!cfg.tieWordEmbeddings) {
    rows.push({ hf: 'lm_head.weight', ours: 'lmHead', hfShape: [cfg.vocabSize, d], transpose: true });
  }
  return rows;
}

/** The Linear module names a LoRA may target (PEFT `target_modules`). */
export const T5_LINEAR_NAMES = ['q', 'k', 'v', 'o', 'wi', 'wi_0', 'wi_1', 'wo'] as const;

const linearCache = new WeakMap<T5Config, Map<string, [number, number]>>();

/**
 * Every Linear a LoRA may target: PEFT module path → [dOut, dIn], read off the weight table (its
 * transposed entries, the torch Linears; lm_head is no target), in table order.
 */
export function t5Linears(cfg: T5Config): Map<string, [number, number]> {
  let m = linearCache.get(cfg);
  if (!m) {
    m = new Map();
    for (const e of t5WeightTable(cfg)) {
      if (e.transpose && e.hf !== 'lm_head.weight') m.set(e.hf.slice(0, -'.weight'.length), [e.hfShape[0], e.hfShape[1]]);
    }
    linearCache.set(cfg, m);
  }
  return m;
}

/**
 * [dOut, dIn] of the HF Linear at `path` (e.g. "decoder.block.1.layer.1.EncDecAttention.v"),
 * or undefined when the path is not a Linear of this model.
 */
export function t5LinearShape(cfg: T5Config, path: string): [number, number] | undefined {
  return t5Linears(cfg).get(path);
}

/** Names a checkpoint may carry that alias `shared.weight` (HF ties them; safetensors stores one). */
const EMBEDDING_ALIASES = ['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'];

/**
 * Tensors transformers ignores on load (T5ForConditionalGeneration
 * `_keys_to_ignore_on_load_unexpected`): original T5 v1.0 checkpoints carry an unused
 * cross-attention position bias. A tied model may also store lm_head.weight (= shared.weight).
 */
const IGNORED = [/^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$/, /^lm_head\.weight$/];

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Which file holds the weights of an HF model folder. */
export function weightsFile(dir: string): string {
  const st = join(dir, 'model.safetensors');
  if (existsSync(st)) return st;
  if (existsSync(join(dir, 'model.safetensors.index.json'))) {
    throw new LorahubError('UNSUPPORTED', `${dir}: sharded checkpoints (model.safetensors.index.json) are not supported yet`);
  }
  if (existsSync(join(dir, 'pytorch_model.bin'))) {
    throw new LorahubError('UNSUPPORTED', `${dir}: pytorch_model.bin checkpoints are not supported; convert to model.safetensors`);
  }
  throw new LorahubError('NOT_FOUND', `${dir}: no model.safetensors`);
}

/**
 * Resolves the table against a checkpoint: for each of our names, the tensor of `st` that holds
 * it, with every shape asserted. A checkpoint that stores only `shared.weight` gets its
 * embeddings tied, one that stores only an embed_tokens alias too; a tensor the config does not
 * explain is an error (a config/checkpoint mismatch), except those transformers itself ignores.
 * Engine-independent: both engines load through it.
 */
export function resolveT5Checkpoint(cfg: T5Config, st: SafetensorsFile): { entry: WeightEntry; name: string }[] {
  const file = st.path;
  const table = t5WeightTable(cfg);
  const expected = new Set(table.map((e) => e.hf));
  const out: { entry: WeightEntry; name: string }[] = [];
  for (const entry of table) {
    let name = entry.hf;
    if (name === 'shared.weight' && !st.has(name)) {
      const alias = EMBEDDING_ALIASES.find((a) => st.has(a));
      if (!alias) throw new LorahubError('BAD_FILE', `${file}: missing tensor "shared.weight" (nor any embed_tokens alias)`);
      name = alias;
    }
    if (!st.has(name)) throw new LorahubError('BAD_FILE', `${file}: missing tensor "${name}"`);
    const shape = st.info(name).shape;
    if (!sameShape(shape, entry.hfShape)) {
      throw new LorahubError(
        'SHAPE_MISMATCH',
        `${file}: tensor "${name}" has shape [${shape.join(', ')}], config expects [${entry.hfShape.join(', ')}]`,
      );
    }
    out.push({ entry, name });
  }
  for (const alias of EMBEDDING_ALIASES) {
    if (st.has(alias) && !sameShape(st.info(alias).shape, [cfg.vocabSize, cfg.dModel])) {
      throw new LorahubError('SHAPE_MISMATCH', `${file}: tensor "${alias}" has shape [${st.info(alias).shape.join(', ')}]`);
    }
  }
  const unknown = st.names().filter((n) => !expected.has(n) && !EMBEDDING_ALIASES.includes(n) && !IGNORED.some((re) => re.test(n)));
  if (unknown.length > 0) {
    throw new LorahubError('BAD_FILE', `${file}: unexpected tensor "${unknown[0]}" for this config (${unknown.length} unexpected)`);
  }
  return out;
}
