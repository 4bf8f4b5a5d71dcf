/**
 * Model families: config.json's `model_type` picks one (models/family.ts says what a family
 * provides). Supported: T5 (seq2seq); Llama, Mistral, Qwen2 and GPT-2 (causal LMs).
 */
import { readFileSync } from 'node:fs';
import { LorahubError } from '../errors.ts';
import type { Family } from './shared/family.ts';
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

/** config.json of an HF model folder, as a JSON object (the errors T5's loadT5Config gives). */
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

/** Reads `<dir>/config.json` and parses it with its family. */
export function loadArch(dir: string): AnyArch {
  const { raw, file } = readHfConfig(dir);
  return archFromHfConfig(raw, file);
}

export type { Arch, BatchLayout, Family, FamilyName, ModelConfig } from './shared/family.ts';
