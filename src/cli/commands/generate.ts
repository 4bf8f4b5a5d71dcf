import type { Command } from 'commander';
import { LorahubError } from '../../errors.ts';
import { generateExamples } from '../../eval/score.ts';
import { loadDataFile, type Example } from '../../tasks/index.ts';
import { intArg, out } from '../shared/common.ts';
import { withModel } from '../shared/options.ts';

interface Opts {
  model?: string;
  adapter?: string;
  input?: string;
  data?: string;
  maxNewTokens: number;
  maxLength?: number;
  json?: boolean;
  library?: string;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('greedy generation (encoder once, decoder key/value cache)')
    .option('--model <dir>', 'HF T5 folder; default: the library base model')
    .option('--adapter <dir|name>', 'PEFT LoRA adapter folder or library module name')
    .option('--input <text>', 'one input text')
    .option('--data <file>', 'jsonl lines (or BBH json examples) {"input"} or {"input_ids"}')
    .option('--max-new-tokens <n>', 'maximum generated tokens', intArg('--max-new-tokens', 'positive'), 64)
    .option('--max-length <n>', "longest input in tokens (default: the tokenizer's model_max_length, else 4096)", intArg('--max-length', 'positive'))
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--json', 'one JSON line {"output_ids","text","engine","device"} per example ("text" only when the model has a tokenizer)')
    .action(async (opts: Opts, cmd: Command) => {
      if ((opts.input === undefined) === (opts.data === undefined)) {
        throw new LorahubError('BAD_ARGUMENT', 'give exactly one of --input TEXT or --data FILE');
      }
      if (opts.input === '') throw new LorahubError('BAD_ARGUMENT', '--input is empty');
      const data: Example[] = opts.data ? loadDataFile(opts.data, { targets: false }) : [{ input: opts.input, source: '--input' }];
      await withModel(cmd, opts, async (m) => {
        const results = await generateExamples(m.model, m.tokenizer, data, { maxNewTokens: opts.maxNewTokens, adapter: m.adapter, limit: m.limit });
        const { engine: name, device } = m.model.info;
        // Without a tokenizer (token-id input) there is no text: the ids are the result.
        for (const r of results) out(opts.json ? JSON.stringify({ output_ids: r.outputIds, text: r.text, engine: name, device }) : (r.text ?? r.outputIds.join(' ')));
      });
    });
}
