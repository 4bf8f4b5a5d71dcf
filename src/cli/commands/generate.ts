import type { Command } from 'commander';
import { LorahubError } from '../../errors.ts';
import { generateExamples } from '../../eval/score.ts';
import { loadAdapterArg, loadModel, maybeLibrary, out, positiveInt, readDataJsonl, resolveModelDir, type DataLine } from '../common.ts';
import { setupEngine } from '../options.ts';

interface Opts {
  model?: string;
  adapter?: string;
  input?: string;
  data?: string;
  maxNewTokens?: string;
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
    .option('--data <file.jsonl>', 'lines {"input"} or {"input_ids"}')
    .option('--max-new-tokens <n>', 'maximum generated tokens (default 64)')
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--json', 'one JSON line {"output_ids","text","engine","device"} per example')
    .action(async (opts: Opts, cmd: Command) => {
      if ((opts.input === undefined) === (opts.data === undefined)) {
        throw new LorahubError('BAD_ARGUMENT', 'give exactly one of --input TEXT or --data FILE.jsonl');
      }
      const maxNewTokens = positiveInt('--max-new-tokens', opts.maxNewTokens, 64);
      const engine = await setupEngine(cmd);
      const lib = await maybeLibrary(opts.library);
      const m = await loadModel(engine, resolveModelDir(opts.model, lib));
      try {
        const data: DataLine[] = opts.data ? readDataJsonl(opts.data, false) : [{ input: opts.input }];
        const adapter = opts.adapter ? await loadAdapterArg(opts.adapter, lib, m.dir) : undefined;
        const results = await generateExamples(m.model, m.tokenizer, data, { maxNewTokens, adapter });
        const { engine: name, device } = m.model.info;
        for (const r of results) out(opts.json ? JSON.stringify({ output_ids: r.outputIds, text: r.text, engine: name, device }) : r.text);
      } finally {
        await m.model.dispose();
      }
    });
}
