import type { Command } from 'commander';
import { scoreExamples } from '../../eval/score.ts';
import { loadDataFile } from '../../tasks/index.ts';
import { intArg, out } from '../shared/common.ts';
import { withModel } from '../shared/options.ts';

interface Opts {
  model?: string;
  adapter?: string;
  data: string;
  json?: boolean;
  library?: string;
  maxLength?: number;
}

export function register(program: Command): void {
  program
    .command('score')
    .description('mean token cross-entropy of each example (teacher-forced) under a model (+ adapter)')
    .option('--model <dir>', 'HF T5 folder (config.json + model.safetensors); default: the library base model')
    .option('--adapter <dir|name>', 'PEFT LoRA adapter folder or library module name')
    .requiredOption('--data <file>', 'jsonl lines (or BBH json examples) {"input","target"} or {"input_ids","labels"}')
    .option('--max-length <n>', "longest input or target in tokens (default: the tokenizer's model_max_length, else 4096)", intArg('--max-length', 'positive'))
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--json', 'one JSON line {"loss","tokens","engine","device"} per example')
    .action(async (opts: Opts, cmd: Command) => {
      const data = loadDataFile(opts.data, { targets: true });
      await withModel(cmd, opts, async (m) => {
        const results = await scoreExamples(m.model, m.tokenizer, data, { adapter: m.adapter, limit: m.limit });
        const { engine: name, device } = m.model.info;
        for (const r of results) out(opts.json ? JSON.stringify({ loss: r.loss, tokens: r.tokens, engine: name, device }) : `${r.loss.toFixed(6)}\t${r.tokens}`);
      });
    });
}
