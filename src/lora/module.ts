/**
 * The in-memory LoRA module: what PEFT stores, in plain typed arrays so that composition is a
 * pure, exact float32 computation that never touches a model or a tensor backend.
 *
 * Layouts follow PEFT (tuners/lora): for a target Linear W [dOut, dIn],
 *   y = x Wᵀ + scaling · (x Aᵀ) Bᵀ,   A = lora_A.weight [r, dIn],  B = lora_B.weight [dOut, r].
 */

/** The fields of PEFT's adapter_config.json that lorahub understands (normalised). */
export interface LoraConfig {
  peft_type: 'LORA';
  task_type: string | null;
  base_model_name_or_path: string | null;
  r: number;
  lora_alpha: number;
  /** A list of module-name suffixes, or a regex string matched against the full module name. */
  target_modules: string[] | string;
  lora_dropout: number;
  bias: 'none';
  fan_in_fan_out: boolean;
  use_rslora: boolean;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  /** Every other field of the original file, kept so a re-written config loses nothing. */
  extra: Record<string, unknown>;
}

export interface LoraTarget {
  /** HF module path without PEFT's prefix, e.g. "encoder.block.0.layer.0.SelfAttention.q". */
  path: string;
  r: number;
  dIn: number;
  dOut: number;
  /** lora_A.weight, [r, dIn] row-major. */
  a: Float32Array;
  /** lora_B.weight, [dOut, r] row-major. */
  b: Float32Array;
  /** lora_alpha / r, or lora_alpha / sqrt(r) with rslora (after rank/alpha patterns). */
  scaling: number;
}

export interface LoraModule {
  /** Display name (library name or folder name). */
  name: string;
  config: LoraConfig;
  /** Keyed by path, in sorted path order. */
  targets: Map<string, LoraTarget>;
  /** Free-form provenance (e.g. composition weights, harmonisation), written to safetensors metadata. */
  metadata?: Record<string, string>;
}

/**
 * The name of a target's trainable factor, `<path>.lora_A` or `<path>.lora_B`: the trainers'
 * parameter (and checkpoint) names, and the ort training graph's inputs.
 */
export function loraFactorName(path: string, which: 'A' | 'B'): string {
  return `${path}.lora_${which}`;
}
