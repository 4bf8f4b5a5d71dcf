import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { LorahubError } from '../src/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.ts';
import { disposeDeltas, moduleDeltas } from '../src/models/t5/deltas.ts';
import type { LoraModule } from '../src/lora/module.ts';
import type { T5Model } from '../src/models/t5/model.ts';
import type { Tokenizer } from '../src/tokenizers/types.ts';
import { meanTokenLoss } from '../src/train/evaluate.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repo root, from this file's location. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The shared golden fixtures live beside the repo: ../shared/fixtures. */
export const FIXTURES = resolve(REPO, '..', 'shared', 'fixtures');
export const T5_GATED = join(FIXTURES, 't5-gated');

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/**
 * A copy of the fixture model in `tmp`/`name` with an edited config.json and tensors (every
 * tensor handed to `editTensors` as F32; set `dtype` to store it otherwise). Returns the folder.
 */
export function variant(
  tmp: string,
  name: string,
  editConfig: (c: Record<string, unknown>) => void,
  editTensors: (t: TensorToWrite[]) => TensorToWrite[],
): string {
  const dir = join(tmp, name);
  cpSync(`${T5_GATED}/model`, dir, { recursive: true });
  const cfg = readJson<Record<string, unknown>>(join(dir, 'config.json'));
  editConfig(cfg);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const { tensors, metadata } = readSafetensors(join(dir, 'model.safetensors'));
  const list: TensorToWrite[] = [...tensors].map(([n, t]) => ({ name: n, dtype: 'F32', shape: t.shape, data: t.data }));
  writeSafetensors(join(dir, 'model.safetensors'), editTensors(list), metadata);
  return dir;
}

/** Max |a - b| over two nested numeric arrays of the same shape. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function flat(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flat) : [x as number];
}

/** Runs fn and returns the LorahubError it throws (fails the test if it throws anything else, or nothing). */
export function errorOf(fn: () => unknown): LorahubError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LorahubError);
    return err as LorahubError;
  }
  throw new Error('expected an error');
}

/** Mean token loss of model (+ module) on examples, disposing the module's deltas. */
export function moduleLoss(model: T5Model, tok: Tokenizer, examples: readonly { input: string; target: string }[], module?: LoraModule): number {
  const deltas = module ? moduleDeltas(module) : undefined;
  try {
    return meanTokenLoss(model, tok, examples, { lora: deltas });
  } finally {
    if (deltas) disposeDeltas(deltas);
  }
}

/** What transformers (+ PEFT) gave for one case of the t5-gated fixture (see its README.md). */
export interface T5CaseResult {
  name: string;
  logits: number[][][];
  loss: number;
  per_example_loss_sum: number[];
  per_example_loss_mean: number[];
  per_example_token_count: number[];
  encoder_last_hidden_state: number[][][];
  generate_max_new_tokens_8: number[][];
}

/** One forward case of t5-gated/cases.json. */
export interface T5Case {
  name: string;
  input_ids: number[][];
  attention_mask: number[][];
  labels: number[][];
  decoder_input_ids: number[][];
  expected: Omit<T5CaseResult, 'name'>;
}

/** t5-gated/adapter_cases.json (single adapters, the composition, merged, the objective). */
export interface T5AdapterCases {
  single_adapter: { adapter: string; cases: T5CaseResult[] }[];
  composition: {
    weights: number[];
    composed_state_dict: Record<string, { shape: number[]; values: unknown }>;
    cases: T5CaseResult[];
    merged: { cases: T5CaseResult[]; merged_state_dict_keys: string[] };
  };
  objective: {
    batch_size: number;
    examples: { input_ids: number[][]; attention_mask: number[][]; labels: number[][]; inputs: string[]; outputs: string[] };
    evaluations: { weights: number[]; objective: number; default_get_loss: number; l1_regularization: number }[];
  };
}

export const t5Cases = (): T5Case[] => readJson<{ cases: T5Case[] }>(join(T5_GATED, 'cases.json')).cases;
export const t5AdapterCases = (): T5AdapterCases => readJson<T5AdapterCases>(join(T5_GATED, 'adapter_cases.json'));

/** A fixture case as the engines' ScoreBatch. */
export const batchOf = (c: T5Case) => ({ inputIds: c.input_ids, attentionMask: c.attention_mask, labels: c.labels });

/** A case of the decoder-only fixtures' cases.json (llama-gqa, gpt2; their READMEs say what each field holds). */
export interface CausalCase {
  name: string;
  padding_side: string;
  prompt_ids: number[][];
  target_ids: number[][];
  input_ids: number[][];
  attention_mask: number[][];
  position_ids: number[][];
  labels: number[][];
  generate_input_ids: number[][];
  generate_attention_mask: number[][];
}
