/** The Llama family (llama, mistral, qwen2) on the family seam (../family.ts). */
import type { Arch, Family } from '../shared/family.ts';
import { LLAMA_MODEL_TYPES, llamaConfigFromHf, type LlamaConfig } from './config.ts';
import { LLAMA_LINEAR_NAMES, llamaLinearShape, llamaWeightTable, resolveLlamaCheckpoint } from './weights.ts';

export type LlamaArch = Arch<'llama', LlamaConfig>;

export function llamaArch(config: LlamaConfig): LlamaArch {
  return {
    family: 'llama',
    modelType: config.modelType,
    layout: 'causal',
    config,
    targetNames: LLAMA_LINEAR_NAMES,
    weightTable: () => llamaWeightTable(config),
    resolveCheckpoint: (st) => resolveLlamaCheckpoint(config, st),
    linearShape: (path) => llamaLinearShape(config, path),
    fanInFanOut: () => false,
  };
}

export const llamaFamily: Family<LlamaArch> = {
  name: 'llama',
  modelTypes: LLAMA_MODEL_TYPES,
  layout: 'causal',
  fromHfConfig: (raw, file) => llamaArch(llamaConfigFromHf(raw, file)),
};
