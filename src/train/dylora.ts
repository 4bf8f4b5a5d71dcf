/**
 * DyLoRA (Valipour et al., "DyLoRA: Parameter-Efficient Tuning of Pre-trained Models using Dynamic
 * Search-Free Low-Rank Adaptation", EACL 2023), "frozen" variant:
 *  - each step draws b uniformly from [rmin, rmax];
 *  - the forward uses the leading components A[:b, :], B[:, :b] with scaling α/b (the paper's
 *    W₀x + (α/b)·B↓b·A↓b·x);
 *  - only component b−1 (row b−1 of A, column b−1 of B) is updated; components < b−1 stay frozen.
 * The result is one module that works truncated to any rank in [rmin, rmax].
 *
 * Freezing is done with Adam masks (adam.ts), not by zeroing gradients alone: a zero gradient
 * does not stop Adam, whose momentum would keep moving the "frozen" rows. The masked components'
 * moments and step counts are left as they were too, so each component is an Adam of its own.
 * (The authors' code detaches the frozen rows, which zeroes their gradient but leaves them to
 * the optimizer's momentum; we take the paper's "no update" literally.)
 *
 * Truncation semantics: a DyLoRA module truncated to rank b keeps lora_alpha, so its scaling
 * becomes α/b (PEFT's α/r for r = b) — exactly what it was trained with at rank b.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError, opt } from '../errors.ts';
import type { LoraModule, LoraTarget } from '../lora/module.ts';
import type { Rng } from '../rng.ts';

/** safetensors metadata key recording that (and how) a module was DyLoRA-trained. */
export const DYLORA_METADATA_KEY = 'lorahub_dylora';

export interface DyLoraRange {
  min: number;
  max: number;
}

/** Parses "rmin:rmax" (1 ≤ rmin ≤ rmax). */
export function parseDyLoraRange(text: string): DyLoraRange {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!m || min < 1 || max < min) throw new LorahubError('BAD_ARGUMENT', `${opt('dylora')} must be rmin:rmax with 1 ≤ rmin ≤ rmax, got "${text}"`);
  return { min, max };
}

/** The step's rank b, uniform in [min, max] (paper: b ~ p_B, uniform). */
export function sampleRank(rng: Rng, range: DyLoraRange): number {
  return rng.int(range.min, range.max);
}

/**
 * Adam masks selecting component b−1: [r, 1] for each A (rows are components), [1, r] for each B
 * (columns are components).
 */
export function dyloraMasks(
  params: readonly { path: string; a: tf.Variable }[],
  b: number,
  name: (path: string, which: 'A' | 'B') => string,
): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const p of params) {
    const r = p.a.shape[0];
    const onehot = new Float32Array(r);
    onehot[b - 1] = 1;
    out.set(name(p.path, 'A'), tf.tensor2d(onehot, [r, 1]));
    out.set(name(p.path, 'B'), tf.tensor2d(onehot, [1, r]));
  }
  return out;
}

/** The DyLoRA range recorded in a module's metadata, if it was DyLoRA-trained. */
export function dyloraRangeOf(module: LoraModule): DyLoraRange | undefined {
  const text = module.metadata?.[DYLORA_METADATA_KEY];
  if (text === undefined) return undefined;
  const v = JSON.parse(text) as { min?: unknown; max?: unknown };
  if (!Number.isInteger(v.min) || !Number.isInteger(v.max)) {
    throw new LorahubError('BAD_FILE', `module "${module.name}": metadata ${DYLORA_METADATA_KEY} is malformed: ${text}`);
  }
  return { min: v.min as number, max: v.max as number };
}

/**
 * The module at rank `rank` (its leading components), with lora_alpha kept so that the scaling
 * is α/rank as in training. Pure. The ranks outside the trained range are refused for DyLoRA
 * modules (they were never trained alone); a plain module can be truncated too, at the caller's risk.
 */
export function truncateDyLora(module: LoraModule, rank: number): LoraModule {
  const range = dyloraRangeOf(module);
  if (range && (rank < range.min || rank > range.max)) {
    throw new LorahubError('BAD_ARGUMENT', `module "${module.name}": DyLoRA-trained for ranks ${range.min}–${range.max}, asked for ${rank}`);
  }
  const { config } = module;
  if (config.use_rslora || Object.keys(config.rank_pattern).length > 0 || Object.keys(config.alpha_pattern).length > 0) {
    throw new LorahubError('UNSUPPORTED', `module "${module.name}": truncation of rslora / rank_pattern / alpha_pattern modules is not supported`);
  }
  const targets = new Map<string, LoraTarget>();
  for (const [path, t] of module.targets) {
    if (rank > t.r) throw new LorahubError('BAD_ARGUMENT', `module "${module.name}", key "${path}": rank ${t.r} < requested ${rank}`);
    const b = new Float32Array(t.dOut * rank);
    for (let i = 0; i < t.dOut; i++) b.set(t.b.subarray(i * t.r, i * t.r + rank), i * rank);
    targets.set(path, { ...t, r: rank, a: t.a.slice(0, rank * t.dIn), b, scaling: config.lora_alpha / rank });
  }
  return {
    name: `${module.name}@r${rank}`,
    config: { ...config, r: rank },
    targets,
    metadata: { ...module.metadata, lorahub_truncated_from: String(config.r) },
  };
}
