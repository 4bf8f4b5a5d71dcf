/**
 * The model-family seam: what a family of Hugging Face checkpoints (T5; Llama with Mistral and
 * Qwen2; GPT-2) tells the rest of lorahub, as data and pure functions over plain arrays (no
 * tensor library, so an ort-only process, merge and the library can all read it):
 *
 *   - the `model_type`s it serves and its typed config, parsed from config.json with
 *     transformers' defaults for every field a file may omit;
 *   - one explicit HF → ours weight table with every shape asserted, resolved against a
 *     model.safetensors;
 *   - the shapes [out, in] of the Linears a LoRA may target, by PEFT module path, so that
 *     fitting a module to a model needs no family knowledge;
 *   - its batch layout: seq2seq (T5: encoder ids, shifted decoder ids) or causal (prompt and
 *     target read as one sequence; the helpers at the end of this file).
 *
 * models/index.ts picks the family from config.json's `model_type`.
 */
import { readFileSync } from 'node:fs';
import { LorahubError } from '../../errors.ts';
import type { SafetensorsFile } from '../../io/safetensors.ts';
import type { LoraConfig, LoraTarget } from '../../lora/module.ts';
import { IGNORE_INDEX as IGNORE } from './batch.ts';

export type FamilyName = 't5' | 'llama' | 'gpt2';

/** seq2seq: encoder input + decoder labels (T5). causal: prompt + target as one row (decoder-only). */
export type BatchLayout = 'seq2seq' | 'causal';

/** What every family's config holds: all that code above the engine seam reads. */
export interface ModelConfig {
  vocabSize: number;
  /** The id padding positions carry (never attended to, never scored). */
  padTokenId: number;
  /** The id that ends generation (the first one, where config.json lists several). */
  eosTokenId: number;
  /** The original JSON, kept for writing a merged checkpoint back out unchanged. */
  raw: Record<string, unknown>;
}

/** One row of a family's weight table. */
export interface WeightEntry {
  /** HF state-dict name (the canonical one, e.g. "model.layers.0.self_attn.q_proj.weight"). */
  hf: string;
  /** Our name: the key of the engines' weight maps. */
  ours: string;
  /** Shape as stored by HF. */
  hfShape: number[];
  /** True when the tfjs forward stores the transpose (torch Linear weights; the ort graphs use HF's layout). */
  transpose: boolean;
}

/** A table entry and the checkpoint tensor that holds it. */
export interface ResolvedWeight {
  entry: WeightEntry;
  name: string;
}

/**
 * A parsed model: its family, its typed config, and the family's functions bound to that config
 * (so callers holding any family's model need no casts).
 */
export interface Arch<F extends FamilyName, C extends ModelConfig> {
  readonly family: F;
  readonly modelType: string;
  readonly layout: BatchLayout;
  readonly config: C;
  /** PEFT `target_modules` names (a path's last component) of the Linears a LoRA may target. */
  readonly targetNames: readonly string[];
  weightTable(): WeightEntry[];
  /** The table resolved against a checkpoint, every shape asserted (see resolveByTable). */
  resolveCheckpoint(st: SafetensorsFile): ResolvedWeight[];
  /** [dOut, dIn] (PEFT's out_features, in_features) of the Linear at a PEFT module path, or undefined. */
  linearShape(path: string): [number, number] | undefined;
  /**
   * True where the base layer stores its weight [in, out] (GPT-2's Conv1D): PEFT needs
   * `fan_in_fan_out: true` for such a target, and merging adds (B·A)ᵀ there.
   */
  fanInFanOut(path: string): boolean;
}

export interface Family<A> {
  readonly name: FamilyName;
  /** config.json `model_type` values this family serves. */
  readonly modelTypes: readonly string[];
  readonly layout: BatchLayout;
  /** Parses config.json (already JSON-parsed); `file` names it in errors. */
  fromHfConfig(raw: Record<string, unknown>, file: string): A;
}

// ---------------------------------------------------------------------------------------------
// config.json fields, with a family's defaults

/** config.json of an HF model folder, as a JSON object (every family's loader reads it through this). */
export function readHfConfig(dir: string): { raw: Record<string, unknown>; file: string } {
  const file = `${dir}/config.json`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new LorahubError('NOT_FOUND', `${file}: cannot read model config`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new LorahubError('BAD_CONFIG', `${file}: invalid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LorahubError('BAD_CONFIG', `${file}: expected a JSON object`);
  return { raw: raw as Record<string, unknown>, file };
}

export function badConfig(file: string, message: string): LorahubError {
  return new LorahubError('BAD_CONFIG', `${file}: ${message}`);
}

/** A field's value, or its default when absent or null (how transformers' __init__ keyword defaults behave). */
export function field(raw: Record<string, unknown>, defaults: Readonly<Record<string, unknown>>, key: string): unknown {
  return raw[key] ?? defaults[key];
}

export function intField(raw: Record<string, unknown>, defaults: Readonly<Record<string, unknown>>, key: string, file: string, min = 1): number {
  const v = field(raw, defaults, key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw badConfig(file, `"${key}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function positiveField(raw: Record<string, unknown>, defaults: Readonly<Record<string, unknown>>, key: string, file: string): number {
  const v = field(raw, defaults, key);
  if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) throw badConfig(file, `"${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

export function boolField(raw: Record<string, unknown>, defaults: Readonly<Record<string, unknown>>, key: string, file: string): boolean {
  const v = field(raw, defaults, key);
  if (typeof v !== 'boolean') throw badConfig(file, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The special-token ids every family needs: eos (a list in e.g. Llama 3's config.json; any of
 * them ends generation), bos (may be null) and pad. A missing pad id falls back to the first eos,
 * as transformers' `generate` does; padding positions are masked out, so the id only has to be
 * in the vocabulary.
 */
export function specialTokens(raw: Record<string, unknown>, defaults: Readonly<Record<string, unknown>>, file: string, vocabSize: number): { bosTokenId: number | null; eosTokenIds: number[]; padTokenId: number; eosTokenId: number } {
  const id = (key: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= vocabSize) {
      throw badConfig(file, `"${key}" must be a token id in [0, ${vocabSize}), got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const eosRaw = field(raw, defaults, 'eos_token_id');
  if (eosRaw == null || (Array.isArray(eosRaw) && eosRaw.length === 0)) throw badConfig(file, '"eos_token_id" is not set: generation would never stop');
  const eosTokenIds = (Array.isArray(eosRaw) ? eosRaw : [eosRaw]).map((v) => id('eos_token_id', v));
  const bosRaw = field(raw, defaults, 'bos_token_id');
  const bosTokenId = bosRaw == null ? null : id('bos_token_id', Array.isArray(bosRaw) ? bosRaw[0] : bosRaw);
  const padRaw = field(raw, defaults, 'pad_token_id');
  const padTokenId = padRaw == null ? eosTokenIds[0] : id('pad_token_id', padRaw);
  return { bosTokenId, eosTokenIds, padTokenId, eosTokenId: eosTokenIds[0] };
}

// ---------------------------------------------------------------------------------------------
// checkpoints

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export interface ResolveOptions {
  /** The names a table entry may be stored under, most usual first (default: just `entry.hf`). */
  candidates?: (hf: string) => string[];
  /** Tensors transformers itself ignores on load (buffers, a tied head stored anyway). */
  ignored?: readonly RegExp[];
}

/**
 * Resolves a weight table against a checkpoint: for each entry the tensor that holds it, with its
 * shape asserted; a tensor the table does not explain is an error (a config/checkpoint mismatch)
 * unless it is one transformers ignores too.
 */
export function resolveByTable(table: readonly WeightEntry[], st: SafetensorsFile, opts: ResolveOptions = {}): ResolvedWeight[] {
  const file = st.path;
  const candidates = opts.candidates ?? ((hf: string) => [hf]);
  const used = new Set<string>();
  const out: ResolvedWeight[] = [];
  for (const entry of table) {
    const names = candidates(entry.hf);
    const name = names.find((n) => st.has(n));
    if (name === undefined) throw new LorahubError('BAD_FILE', `${file}: missing tensor "${names[0]}"`);
    const shape = st.info(name).shape;
    if (!sameShape(shape, entry.hfShape)) {
      throw new LorahubError('SHAPE_MISMATCH', `${file}: tensor "${name}" has shape [${shape.join(', ')}], config expects [${entry.hfShape.join(', ')}]`);
    }
    used.add(name);
    out.push({ entry, name });
  }
  const unknown = st.names().filter((n) => !used.has(n) && !(opts.ignored ?? []).some((re) => re.test(n)));
  if (unknown.length > 0) {
    throw new LorahubError('BAD_FILE', `${file}: unexpected tensor "${unknown[0]}" for this config (${unknown.length} unexpected)`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// LoRA modules against a model

// ---------------------------------------------------------------------------------------------
// Causal-LM batch layout (the fixtures' README, llama-gqa and gpt2)

/**
 * A causal-LM batch as transformers takes it: rows [B][S] of prompt + target, `labels` = the
 * target ids at target positions and −100 elsewhere (unshifted: HF shifts inside the loss, so the
 * logits at t predict labels[t + 1]).
 */
export interface CausalBatch {
  inputIds: number[][];
  attentionMask: number[][];
  positionIds: number[][];
  labels: number[][];
}

/**
 * The causal rows of an engine batch: each example's prompt (the `inputIds` under attention mask
 * 1, left or right padded) followed by its target (`labels` up to the last non-ignored id; an
 * ignored label inside the target is read as `padId` and not scored, as T5's decoder reads it),
 * right-padded with `padId`, positions 0..S−1 (HF's default, right for right padding). Nothing is
 * added: a bos or eos must already be in the ids.
 */
export function causalRows(batch: { inputIds: number[][]; attentionMask: number[][]; labels: number[][] }, padId: number): CausalBatch {
  const rows = batch.inputIds.map((ids, b) => {
    const prompt = ids.filter((_, j) => batch.attentionMask[b][j] === 1);
    const raw = batch.labels[b] ?? [];
    let end = raw.length;
    while (end > 0 && raw[end - 1] === IGNORE) end--;
    const target = raw.slice(0, end);
    return { ids: [...prompt, ...target.map((l) => (l === IGNORE ? padId : l))], labels: [...prompt.map(() => IGNORE), ...target] };
  });
  const S = Math.max(1, ...rows.map((r) => r.ids.length));
  const pad = <T>(x: T[], v: T) => [...x, ...new Array<T>(S - x.length).fill(v)];
  return {
    inputIds: rows.map((r) => pad(r.ids, padId)),
    attentionMask: rows.map((r) => pad(r.ids.map(() => 1), 0)),
    positionIds: rows.map(() => Array.from({ length: S }, (_, t) => t)),
    labels: rows.map((r) => pad(r.labels, IGNORE)),
  };
}

/**
 * Where the loss is taken, shifted as HF's causal-LM loss does: the logits at row position t
 * are scored against labels[t + 1]. `positions` are flat indexes b·S + t, `ids` the labels, and
 * `example` the row of each.
 */
export function shiftedLabels(labels: number[][]): { positions: number[]; ids: number[]; example: number[] } {
  const positions: number[] = [];
  const ids: number[] = [];
  const example: number[] = [];
  labels.forEach((row, b) => {
    for (let t = 0; t + 1 < row.length; t++) {
      if (row[t + 1] === IGNORE) continue;
      positions.push(b * row.length + t);
      ids.push(row[t + 1]);
      example.push(b);
    }
  });
  return { positions, ids, example };
}

/**
 * Prompts left-padded for generation, with transformers' position ids: the prompt of each row is
 * its ids under attention mask 1; positions are cumsum(mask) − 1, padding set to 1
 * (GenerationMixin / prepare_inputs_for_generation).
 */
export function leftPaddedPrompts(input: { inputIds: number[][]; attentionMask: number[][] }, padId: number): { inputIds: number[][]; attentionMask: number[][]; positionIds: number[][]; lengths: number[] } {
  const prompts = input.inputIds.map((ids, b) => ids.filter((_, j) => input.attentionMask[b][j] === 1));
  const P = Math.max(1, ...prompts.map((p) => p.length));
  return {
    inputIds: prompts.map((p) => [...new Array<number>(P - p.length).fill(padId), ...p]),
    attentionMask: prompts.map((p) => [...new Array<number>(P - p.length).fill(0), ...p.map(() => 1)]),
    positionIds: prompts.map((p) => [...new Array<number>(P - p.length).fill(1), ...p.map((_, t) => t)]),
    lengths: prompts.map((p) => p.length),
  };
}
