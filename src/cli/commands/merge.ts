import type { Command } from 'commander';
import { mergeIntoCheckpoint } from '../../models/merge.ts';
import { loadAdapterArg, maybeLibrary, out, resolveModelDir } from '../shared/common.ts';

interface Opts {
  model?: string;
  adapter: string;
  out: string;
  library?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('merge')
    .description('write an HF checkpoint with the adapter folded in (W + scaling·BA)')
    .option('--model <dir>', 'HF T5 folder; default: the library base model')
    .requiredOption('--adapter <dir|name>', 'PEFT LoRA adapter folder or library module name')
    .requiredOption('--out <dir>', 'output folder (must not exist)')
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--json', 'print {"out","merged"} as JSON')
    .action(async (opts: Opts) => {
      // File to file (merge.ts reads and writes the safetensors itself): no forward engine.
      const lib = await maybeLibrary(opts.library);
      const modelDir = resolveModelDir(opts.model, lib);
      const adapter = await loadAdapterArg(opts.adapter, lib, modelDir);
      const { merged } = mergeIntoCheckpoint(modelDir, adapter, opts.out);
      out(opts.json ? JSON.stringify({ out: opts.out, merged }) : `merged ${merged.length} weights into ${opts.out}`);
    });
}
