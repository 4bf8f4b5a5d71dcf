import { readFileSync } from 'node:fs';
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
