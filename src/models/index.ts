/**
 * Model families: config.json's `model_type` picks one (models/family.ts says what a family
 * provides). Supported: T5 (seq2seq); Llama, Mistral, Qwen2 and GPT-2 (causal LMs).
 */
import { LorahubError } from '../errors.ts';
import { readHfConfig, type Family } from './shared/family.ts';
import { gpt2Family, type Gpt2Arch } from './gpt2/family.ts';
import { llamaFamily, type LlamaArch } from './llama/family.ts';
import { t5Family, type T5Arch } from './t5/family.ts';

/** A parsed model of any supported family (discriminated by `family`). */
export type AnyArch = T5Arch | LlamaArch | Gpt2Arch;
/** A decoder-only model. */
export type CausalArch = LlamaArch | Gpt2Arch;

export const FAMILIES: readonly (Family<T5Arch> | Family<LlamaArch> | Family<Gpt2Arch>)[] = [t5Family, llamaFamily, gpt2Family];

/** Every config.json `model_type` lorahub reads. */
export function supportedModelTypes(): string[] {
  return FAMILIES.flatMap((f) => f.modelTypes);
}

/**
 * The family serving a config's `model_type`. A config without one is read as T5: lorahub's
 * own T5 checkpoints were read that way before other families existed (transformers itself
 * always writes model_type).
 */
export function familyOf(raw: Record<string, unknown>, file = 'config.json'): Family<T5Arch> | Family<LlamaArch> | Family<Gpt2Arch> {
  const type = raw.model_type ?? 't5';
  const family = FAMILIES.find((f) => typeof type === 'string' && f.modelTypes.includes(type));
  if (!family) {
    throw new LorahubError('UNSUPPORTED', `${file}: model_type ${JSON.stringify(type)} is not supported (supported: ${supportedModelTypes().join(', ')})`);
  }
  return family;
}

/** Parses an HF config object into its family's model. */
export function archFromHfConfig(raw: Record<string, unknown>, file = 'config.json'): AnyArch {
  return familyOf(raw, file).fromHfConfig(raw, file);
}

/** Reads `<dir>/config.json` and parses it with its family. */
export function loadArch(dir: string): AnyArch {
  const { raw, file } = readHfConfig(dir);
  return archFromHfConfig(raw, file);
}

export type { Arch, BatchLayout, Family, FamilyName, ModelConfig } from './shared/family.ts';
