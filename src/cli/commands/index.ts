import type { Command } from 'commander';
import { register as registerCompose } from './compose.ts';
import { register as registerComposeWeights } from './compose-weights.ts';
import { register as registerEval } from './eval.ts';
import { register as registerGenerate } from './generate.ts';
import { register as registerMerge } from './merge.ts';
import { register as registerModules } from './modules.ts';
import { register as registerScore } from './score.ts';
import { register as registerTasks } from './tasks.ts';
import { register as registerTrain } from './train.ts';
import { register as registerTrainBase } from './train-base.ts';

/**
 * Every CLI verb. Each module exports `register(program)`; add one line per verb. Registering
 * must not load a tensor library: a verb that needs tfjs (train, train-base) imports it in its
 * action, so that the forward verbs on the ort engine never load it (test/cli/no-tfjs.test.ts).
 */
export const COMMANDS: Array<(program: Command) => void> = [
  registerCompose,
  registerComposeWeights,
  registerScore,
  registerGenerate,
  registerEval,
  registerMerge,
  registerModules,
  registerTasks,
  registerTrain,
  registerTrainBase,
];
