import type { Command } from 'commander';
import { LorahubError } from '../../errors.ts';
import { writeAdapter } from '../../io/peft.ts';
import { loadBaseModel, resolveModules } from '../../library/index.ts';
import { compose, type Harmonize } from '../../lora/compose.ts';
import { harmonizeArg, listArg, maybeLibrary, out, resolveModelDir, weightsArg, withHarmonizeHint } from '../shared/common.ts';

interface Opts {
  model?: string;
  modules: string[];
  weights: number[];
  out: string;
  harmonize: Harmonize;
  library?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('compose-weights')
    .description('compose modules with given weights (LoRAHub rule: A=Σw·A, B=Σw·B) into a PEFT adapter')
    .option('--model <dir>', 'base model the modules must fit; default: the library base model')
    .requiredOption('--modules <a,b,c>', 'library names or adapter folders', listArg('--modules'))
    .requiredOption('--weights <w1,w2,w3>', 'one weight per module', weightsArg)
    .requiredOption('--out <dir>', 'output adapter folder')
    .option('--harmonize <how>', 'modules of different ranks: truncate (to the smallest; DyLoRA) or pad (zeros to the largest)', harmonizeArg, 'none')
    .option('--library <dir>', 'module library (default ./modules)')
    .option('--json', 'print {"out","modules","weights","rank","targets"} as JSON')
    .action(async (opts: Opts) => {
      const { modules: names, weights } = opts;
      if (weights.length !== names.length) {
        throw new LorahubError('BAD_ARGUMENT', `${weights.length} weights for ${names.length} modules`);
      }
      const lib = await maybeLibrary(opts.library);
      const modelDir = opts.model ?? lib?.defaultBaseDir();
      const base = modelDir ? await loadBaseModel(resolveModelDir(modelDir, lib)) : undefined;
      const modules = await resolveModules(names, { library: lib, base });
      let composed;
      try {
        composed = compose(modules, weights, { harmonize: opts.harmonize, name: opts.out });
      } catch (err) {
        throw withHarmonizeHint(err);
      }
      await writeAdapter(opts.out, composed);
      const rank = composed.config.r;
      if (opts.json) {
        out(JSON.stringify({ out: opts.out, modules: modules.map((m) => m.name), weights, rank, targets: composed.targets.size }));
      } else {
        out(`wrote ${opts.out}: ${composed.targets.size} targets, rank ${rank}, weights ${modules.map((m, i) => `${m.name}=${weights[i]}`).join(' ')}`);
      }
    });
}
