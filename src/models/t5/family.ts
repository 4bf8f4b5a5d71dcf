/**
 * T5 on the family seam (../family.ts): an adapter over the existing config.ts and checkpoint.ts,
 * which stay as they are (their behaviour, messages included, is T5's behaviour on every path).
 */
import type { Arch, Family } from '../shared/family.ts';
import { resolveT5Checkpoint, T5_LINEAR_NAMES, t5LinearShape, t5WeightTable } from './checkpoint.ts';
import { t5ConfigFromHf, type T5Config } from './config.ts';

export type T5Arch = Arch<'t5', T5Config>;

export function t5Arch(config: T5Config): T5Arch {
  return {
    family: 't5',
    modelType: 't5',
    layout: 'seq2seq',
    config,
    targetNames: T5_LINEAR_NAMES,
    weightTable: () => t5WeightTable(config),
    resolveCheckpoint: (st) => resolveT5Checkpoint(config, st),
    linearShape: (path) => t5LinearShape(config, path),
    // Every T5 projection is a torch Linear ([out, in]).
    fanInFanOut: () => false,
  };
}

export const t5Family: Family<T5Arch> = {
  name: 't5',
  modelTypes: ['t5'],
  layout: 'seq2seq',
  fromHfConfig: (raw, file) => t5Arch(t5ConfigFromHf(raw, file)),
};
