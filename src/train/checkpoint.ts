/**
 * Resumable training checkpoints: ONE safetensors file per run folder holding every trainable
 * parameter, every optimizer moment (float32, exact) and, in its `__metadata__`, the JSON state
 * (step, RNG state, data cursors, loss history, the run's identity).
 *
 * One file makes the checkpoint atomic for free: it is written to a temporary name, fsync'ed and
 * renamed over the previous one (io/atomic.ts), so a kill at any moment leaves the old checkpoint
 * or the new one, never a mix of weights from one step and moments from another.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeDir } from '../io/atomic.ts';
import { LorahubError } from '../errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import type { RngState } from '../rng.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const METADATA_KEY = 'lorahub_checkpoint';
const FORMAT = 'lorahub-train-checkpoint';

export interface CheckpointState {
  format: typeof FORMAT;
  version: 1;
  /** Steps completed (the next step to run). */
  step: number;
  /** The run's random stream (Rng.state(), src/rng.ts; checkpoints written before RngState hold its bare words). */
  rng: RngState | number[];
  /** Data positions, as the trainer's data sources define them. */
  cursor: Record<string, unknown>;
  /** What fixes the trajectory (task, seed, ranks, lr …): a resume must match it. */
  run: Record<string, unknown>;
  /** Loss of every completed step, so a resumed run reports the whole curve. */
  losses: number[];
  /** Label + input tokens seen so far. */
  tokens: number;
  /** Training seconds so far (excluding checkpoint writes). */
  seconds: number;
}

export interface SavedTensor {
  shape: number[];
  data: Float32Array;
}

export function checkpointFile(dir: string): string {
  return join(dir, CHECKPOINT_FILE);
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(checkpointFile(dir));
}

/** Writes `tensors` (read back from the backend) and `state` atomically into `dir`. */
export function writeCheckpoint(dir: string, tensors: ReadonlyMap<string, tf.Tensor>, state: Omit<CheckpointState, 'format' | 'version'>): void {
  makeDir(dir);
  const out: TensorToWrite[] = [];
  for (const [name, t] of tensors) {
    out.push({ name, dtype: 'F32', shape: t.shape, data: Float32Array.from(t.dataSync() as Float32Array) });
  }
  const full: CheckpointState = { format: FORMAT, version: 1, ...state };
  writeSafetensors(checkpointFile(dir), out, { [METADATA_KEY]: JSON.stringify(full) });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a checkpoint; undefined when the folder has none. Anything malformed throws BAD_FILE. */
export function readCheckpoint(dir: string): { state: CheckpointState; tensors: Map<string, SavedTensor> } | undefined {
  const file = checkpointFile(dir);
  if (!existsSync(file)) return undefined;
  const { metadata, tensors } = readSafetensors(file);
  const text = metadata[METADATA_KEY];
  if (text === undefined) throw new LorahubError('BAD_FILE', `${file}: not a lorahub training checkpoint (no "${METADATA_KEY}" metadata)`);
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch (cause) {
    throw new LorahubError('BAD_FILE', `${file}: checkpoint state is not valid JSON`, { cause });
  }
  if (!isObject(state) || state.format !== FORMAT || state.version !== 1) {
    throw new LorahubError('BAD_FILE', `${file}: unknown checkpoint format ${JSON.stringify(isObject(state) ? state.format : state)}`);
  }
  const ok =
    Number.isInteger(state.step) &&
    (Array.isArray(state.rng) || isObject(state.rng)) &&
    isObject(state.cursor) &&
    isObject(state.run) &&
    Array.isArray(state.losses) &&
    typeof state.tokens === 'number' &&
    typeof state.seconds === 'number';
  if (!ok) throw new LorahubError('BAD_FILE', `${file}: checkpoint state is missing fields`);
  const out = new Map<string, SavedTensor>();
  for (const [name, t] of tensors) out.set(name, { shape: t.shape, data: t.data });
  return { state: state as unknown as CheckpointState, tensors: out };
}

/**
 * Throws unless `current` describes the same run as the checkpoint's `saved` (every key except
 * those in `mayDiffer`), naming the first difference.
 */
export function checkSameRun(saved: Record<string, unknown>, current: Record<string, unknown>, where: string, mayDiffer: readonly string[] = []): void {
  const keys = new Set([...Object.keys(saved), ...Object.keys(current)]);
  for (const k of [...keys].sort()) {
    if (mayDiffer.includes(k)) continue;
    const a = JSON.stringify(saved[k]);
    const b = JSON.stringify(current[k]);
    if (a !== b) {
      throw new LorahubError(
        'INCOMPATIBLE',
        `${where}: cannot resume: the checkpoint was made with ${k} = ${a ?? 'unset'}, this run has ${b ?? 'unset'} (use the same options, or another checkpoint folder)`,
      );
    }
  }
}
