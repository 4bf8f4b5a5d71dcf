import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { LorahubError } from '../src/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.ts';
import { disposeDeltas, moduleDeltas } from '../src/lora/apply.ts';
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
