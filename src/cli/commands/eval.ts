import type { Command } from 'commander';
import { LorahubError } from '../../errors.ts';
import { evaluateExactMatch } from '../../eval/evaluate.ts';
import { getTask, loadDataFile, taskExamples, type Example, type Split } from '../../tasks/index.ts';
import { choiceArg, intArg, out } from '../shared/common.ts';
import { withModel } from '../shared/options.ts';

interface Opts {
  task?: string;
  data?: string;
  split: Split;
  model?: string;
  adapter?: string;
  library?: string;
  limit?: number;
  maxNewTokens?: number;
  maxLength?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description("exact-match accuracy (lorahub's normalisation) of the model (+ adapter) on a task's test split or a data file")
    .option('--task <name>', 'a task from tasks/')
    .option('--data <file>', 'examples instead: BBH json {"examples":[…]} or jsonl; {"input","target"} or {"input_ids","labels"}')
    .option('--split <split>', "the task's split: test | train", choiceArg('--split', ['test', 'train']), 'test')
    .option('--model <dir>', 'base model (default: the library base model)')
    .option('--adapter <dir|name>', 'PEFT adapter folder or library module name')
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--limit <n>', 'evaluate the first N examples only', intArg('--limit', 'positive'))
    .option('--max-new-tokens <n>', 'generation length (default: longest target + 2, at least 8)', intArg('--max-new-tokens', 'positive'))
    .option('--max-length <n>', "longest input in tokens (default: the tokenizer's model_max_length, else 4096)", intArg('--max-length', 'positive'))
    .option('--json', 'print {"accuracy","correct","total","engine","device"}')
    .action(async (opts: Opts, cmd: Command) => {
      if ((opts.task === undefined) === (opts.data === undefined)) throw new LorahubError('BAD_ARGUMENT', 'give exactly one of --task NAME or --data FILE');
      let examples: Example[] = opts.task ? taskExamples(getTask(opts.task), opts.split) : loadDataFile(opts.data as string, { targets: true });
      if (opts.limit !== undefined) examples = examples.slice(0, opts.limit);
      if (examples.length === 0) throw new LorahubError('BAD_ARGUMENT', `no ${opts.split} examples to evaluate`);
      await withModel(cmd, opts, async (m) => {
        const r = await evaluateExactMatch(m.model, m.tokenizer, examples, m.adapter, { maxNewTokens: opts.maxNewTokens, limit: m.limit });
        if (opts.json) out(JSON.stringify({ accuracy: r.accuracy, correct: r.correct, total: r.total, engine: m.model.info.engine, device: m.model.info.device }));
        else out(`exact match: ${(100 * r.accuracy).toFixed(1)}% (${r.correct}/${r.total})`);
      });
    });
}
