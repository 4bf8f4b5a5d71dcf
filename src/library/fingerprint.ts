/**
 * Base-model identity and LoRA/base compatibility.
 *
 * A LoRA delta only means something on the exact weights it was trained against, and PEFT records
 * nothing stronger than `base_model_name_or_path` (a hub name or a local path). So the library
 * identifies a base by the SHA-256 of its weights file(s), and, separately, checks architecture:
 * every target Linear must exist in the base with the module's [dOut, dIn].
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { LorahubError } from '../errors.ts';
import type { LoraModule } from '../lora/module.ts';
import { fitProblems, type LinearLayout } from '../lora/fit.ts';
import { loadArch, type AnyArch } from '../models/index.ts';
import { sha256File } from './hash.ts';

/**
 * Safetensors metadata key under which lorahub writes the fingerprint of the base an adapter was
 * made for (LoraModule.metadata is written to `__metadata__`); `add` compares it with the base.
 */
export const BASE_FINGERPRINT_METADATA_KEY = 'lorahub.base_fingerprint';

export interface WeightsStat {
  /** Weight files, relative to the model folder, in hashing order. */
  files: string[];
  bytes: number;
  /** Latest modification time over the files: a cheap "has it changed?" signal. */
  mtimeMs: number;
}

/** The weight file names transformers looks for, in its order of preference (modeling_utils.py). */
const SINGLE = ['model.safetensors', 'pytorch_model.bin'];
const INDEXES = ['model.safetensors.index.json', 'pytorch_model.bin.index.json'];

/** Which files hold the weights of the model in `modelDir`. */
export function weightsStat(modelDir: string): WeightsStat {
  let files: string[] | undefined;
  for (const f of SINGLE) {
    if (existsSync(join(modelDir, f))) {
      files = [f];
      break;
    }
  }
  if (!files) {
    for (const f of INDEXES) {
      const index = join(modelDir, f);
      if (!existsSync(index)) continue;
      let weightMap: unknown;
      try {
        weightMap = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: unknown }).weight_map;
      } catch (cause) {
        throw new LorahubError('BAD_FILE', `${index}: invalid JSON (${(cause as Error).message})`, { cause });
      }
      if (typeof weightMap !== 'object' || weightMap === null) {
        throw new LorahubError('BAD_FILE', `${index}: missing "weight_map"`);
      }
      files = [...new Set(Object.values(weightMap as Record<string, unknown>).map(String))].sort();
      break;
    }
  }
  if (!files) {
    throw new LorahubError(
      'NOT_FOUND',
      `${modelDir}: no model weights (expected ${[...SINGLE, ...INDEXES].join(', ')})`,
    );
  }
  let bytes = 0;
  let mtimeMs = 0;
  for (const f of files) {
    const st = statSync(join(modelDir, f), { throwIfNoEntry: false });
    if (!st) throw new LorahubError('NOT_FOUND', `${join(modelDir, f)}: weight file missing`);
    bytes += st.size;
    mtimeMs = Math.max(mtimeMs, st.mtimeMs);
  }
  return { files, bytes, mtimeMs };
}

/** In-process cache, keyed by folder + size + mtime, so one command hashes a base at most once. */
const cache = new Map<string, string>();

/**
 * `sha256:<hex>` of the weights file content, streamed. For a sharded checkpoint it is the SHA-256
 * of the lines "<shard file> <shard sha256>\n" in sorted shard order, so that it still changes
 * with any byte of any shard.
 */
export async function modelFingerprint(modelDir: string): Promise<string> {
  const st = weightsStat(modelDir);
  const key = `${resolve(modelDir)}\0${st.bytes}\0${st.mtimeMs}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let fp: string;
  if (st.files.length === 1) {
    fp = `sha256:${(await sha256File(join(modelDir, st.files[0]))).sha256}`;
  } else {
    const outer = createHash('sha256');
    for (const f of st.files) outer.update(`${f} ${(await sha256File(join(modelDir, f))).sha256}\n`);
    fp = `sha256:${outer.digest('hex')}`;
  }
  cache.set(key, fp);
  return fp;
}

/** First 12 hex digits, for tables. */
export function shortFingerprint(fp: string | null): string {
  if (!fp) return '-';
  return fp.startsWith('sha256:') ? fp.slice(7, 19) : fp.slice(0, 12);
}

/**
 * Architecture problems of `module` on a base (lora/fit.ts): one message per offending target,
 * naming the key and the expected vs actual shape or layout. Empty when compatible.
 */
export function shapeProblems(module: LoraModule, arch: LinearLayout): string[] {
  return fitProblems(module, arch);
}

export interface BaseModel {
  dir: string;
  fingerprint: string;
  /** The base's family and typed config (models/index.ts), any family. */
  arch: AnyArch;
}

/** Loads what the compatibility checks need from a base model folder. */
export async function loadBaseModel(dir: string): Promise<BaseModel> {
  const arch = loadArch(dir);
  return { dir, fingerprint: await modelFingerprint(dir), arch };
}

/**
 * Every reason `module` cannot be used on `base`: a declared base fingerprint (safetensors
 * metadata) that differs, and shape mismatches.
 */
export function compatibilityProblems(module: LoraModule, base: BaseModel): string[] {
  const problems: string[] = [];
  const declared = module.metadata?.[BASE_FINGERPRINT_METADATA_KEY];
  if (declared !== undefined && declared !== base.fingerprint) {
    problems.push(`made for base ${declared}, but the base is ${base.fingerprint} (${base.dir})`);
  }
  problems.push(...shapeProblems(module, base.arch));
  return problems;
}
