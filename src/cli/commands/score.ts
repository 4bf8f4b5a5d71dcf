import type { Command } from 'commander';
import { disposeDeltas, moduleDeltas } from '../../lora/apply.ts';
import { scoreExamples } from '../../eval/score.ts';
import { loadAdapterArg, loadModel, maybeLibrary, out, readDataJsonl, resolveModelDir } from '../common.ts';
import { setupBackend } from '../options.ts';

interface Opts {
  model?: string;
  adapter?: string;
  data: string;
  json?: boolean;
  library?: string;
  batchSize?: string;
}

export function register(program: Command): void {
  program
    .command('score')
    .description('mean token cross-entropy of each example (teacher-forced) under a model (+ adapter)')
    .option('--model <dir>', 'HF T5 folder (config.json + model.safetensors); default: the library base model')
    .option('--adapter <dir|name>', 'PEFT LoRA adapter folder or library module name')
    .requiredOption('--data <file.jsonl>', 'lines {"input","target"} or {"input_ids","labels"}')
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--json', 'one JSON line {"loss","tokens"} per example')
    .action(async (opts: Opts, cmd: Command) => {
      await setupBackend(cmd);
      const lib = await maybeLibrary(opts.library);
      const m = loadModel(resolveModelDir(opts.model, lib));
      const data = readDataJsonl(opts.data, true);
      const adapter = opts.adapter ? await loadAdapterArg(opts.adapter, lib, m) : undefined;
      const deltas = adapter ? moduleDeltas(adapter) : undefined;
      try {
        const results = scoreExamples(m.model, m.tokenizer, data, deltas);
        for (const r of results) out(opts.json ? JSON.stringify({ loss: r.loss, tokens: r.tokens }) : `${r.loss.toFixed(6)}\t${r.tokens}`);
      } finally {
        if (deltas) disposeDeltas(deltas);
      }
    });
}
