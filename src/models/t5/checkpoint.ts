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

/** The full table for a config. Order: embeddings, encoder blocks, decoder blocks, heads. */
export function t5WeightTable(cfg: T5Config): WeightEntry[] {
  const d = cfg.dModel;
  const inner = cfg.numHeads * cfg.dKv;
  const rows: WeightEntry[] = [];
  const lin = (hf: string, ours: string, dOut: number, dIn: number) =>
    rows.push({ hf: `${hf}.weight`, ours, hfShape: [dOut, dIn], transpose: true });
  const vec = (hf: string, ours: string, n: number) => rows.push({ hf: `${hf}.weight`, ours, hfShape: [n], transpose: false });

  rows.push({ hf: 'shared.weight', ours: 'embed', hfShape: [cfg.vocabSize, d], transpose: false });
  const attention = (hfPrefix: string, ours: string, withBias: boolean) => {
    lin(`${hfPrefix}.q`, `${ours}.q`, inner, d);
    lin(`${hfPrefix}.k`, `${ours}.k`, inner, d);
    lin(`${hfPrefix}.v`, `${ours}.v`, inner, d);
    lin(`${hfPrefix}.o`, `${ours}.o`, d, inner);
    if (withBias) {
      // Only block 0 of each stack owns the relative position bias; later blocks reuse it.
      rows.push({
        hf: `${hfPrefix}.relative_attention_bias.weight`,
        ours: `${ours}.relBias`,
        hfShape: [cfg.relativeAttentionNumBuckets, cfg.numHeads],
        transpose: false,
      });
    }
  };
  const ffn = (hfPrefix: string, ours: string) => {
    if (cfg.isGatedAct) {
      lin(`${hfPrefix}.wi_0`, `${ours}.wi0`, cfg.dFf, d);
      lin(`${hfPrefix}.wi_1`, `${ours}.wi1`, cfg.dFf, d);
    } else {
      lin(`${hfPrefix}.wi`, `${ours}.wi`, cfg.dFf, d);
    }
    lin(`${hfPrefix}.wo`, `${ours}.wo`, d, cfg.dFf);
  };
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `encoder.block.${i}`;
    attention(`${p}.layer.0.SelfAttention`, `enc.${i}.self`, i === 0);
    vec(`${p}.layer.0.layer_norm`, `enc.${i}.selfNorm`, d);
    ffn(`${p}.layer.1.DenseReluDense`, `enc.${i}.ffn`);
    vec(`${p}.layer.1.layer_norm`, `enc.${i}.ffnNorm`, d);
  }
  vec('encoder.final_layer_norm', 'enc.finalNorm', d);
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    const p = `decoder.block.${i}`;
    attention(`${p}.layer.0.SelfAttention`, `dec.${i}.self`, i === 0);
    vec(`${p}.layer.0.layer_norm`, `dec.${i}.selfNorm`, d);
    attention(`${p}.layer.1.EncDecAttention`, `dec.${i}.cross`, false);
    vec(`${p}.layer.1.layer_norm`, `dec.${i}.crossNorm`, d);
    ffn(`${p}.layer.2.DenseReluDense`, `dec.${i}.ffn`);
    vec(`${p}.layer.2.layer_norm`, `dec.${i}.ffnNorm`, d);
  }
  vec('decoder.final_layer_norm', 'dec.finalNorm', d);
  if (!cfg.tieWordEmbeddings) {
    rows.push({ hf: 'lm_head.weight', ours: 'lmHead', hfShape: [cfg.vocabSize, d], transpose: true });
  }
  return rows;
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
