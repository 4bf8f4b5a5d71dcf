import type { Command } from 'commander';
import { register as registerScore } from './score.ts';
import { register as registerGenerate } from './generate.ts';
import { register as registerMerge } from './merge.ts';
import { register as registerComposeWeights } from './compose-weights.ts';
import { register as registerCompose } from './compose.ts';
import { register as registerEval } from './eval.ts';

/** Every CLI verb. Each module exports `register(program)`; add one line per verb. */
export const COMMANDS: Array<(program: Command) => void> = [registerCompose, registerComposeWeights, registerScore, registerGenerate, registerEval, registerMerge];
import { register as registerModules } from './modules.ts'; COMMANDS.push(registerModules);
import { register as registerTasks } from './tasks.ts'; COMMANDS.push(registerTasks);
import { register as registerTrain } from './train.ts'; COMMANDS.push(registerTrain);
import { register as registerTrainBase } from './train-base.ts'; COMMANDS.push(registerTrainBase);
