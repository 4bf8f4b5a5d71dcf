/** GPT-2 on the family seam (../family.ts). */
import type { Arch, Family } from '../shared/family.ts';
import { gpt2ConfigFromHf, type Gpt2Config } from './config.ts';
import { GPT2_LINEAR_NAMES, gpt2LinearShape, gpt2WeightTable, resolveGpt2Checkpoint } from './weights.ts';

export type Gpt2Arch = Arch<'gpt2', Gpt2Config>;

export function gpt2Arch(config: Gpt2Config): Gpt2Arch {
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    layout: 'causal',
    config,
    targetNames: GPT2_LINEAR_NAMES,
    weightTable: () => gpt2WeightTable(config),
    resolveCheckpoint: (st) => resolveGpt2Checkpoint(config, st),
    linearShape: (path) => gpt2LinearShape(config, path),
    // Every LoRA-able GPT-2 layer is a Conv1D ([in, out] weight).
    fanInFanOut: () => true,
  };
}

export const gpt2Family: Family<Gpt2Arch> = {
  name: 'gpt2',
  modelTypes: ['gpt2'],
  layout: 'causal',
  fromHfConfig: (raw, file) => gpt2Arch(gpt2ConfigFromHf(raw, file)),
};
