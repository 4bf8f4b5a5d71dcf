/**
 * `lorahub train-base --out DIR`: pretrains and instruction-tunes lorahub's small base model on the
 * upstream tasks (src/train/base.ts) and writes it as a Hugging Face checkpoint folder.
 */
import type { Command } from 'commander';
import { LorahubError } from '../../errors.ts';
import { DEFAULT_LIBRARY_DIR, openLibrary, writableLibraryDir } from '../../library/index.ts';
import { BASE_PRESETS, BASE_TOKENIZERS, DEFAULT_BASE_TOKENIZER, DEFAULT_BASE_WEIGHT_DECAY, type BaseSize, type BaseTokenizerKind } from '../../train/presets.ts';
import type { LrDecay, LrSchedule } from '../../train/loop.ts';
import { choiceArg, intArg, listArg, numberArg, out } from '../shared/common.ts';
import { setupBackend, setupTrainEngine } from '../shared/options.ts';
import { dtypeArg, interruptSignal, REGISTER_LOCK_WAIT_MS, scheduleArg, trainingProgress } from '../shared/training.ts';

interface Opts {
  out: string;
  size: BaseSize;
  steps: number;
  pretrainSteps?: number;
  mix: string;
  tasks?: string[];
  maxPerTask?: number;
  batchSize: number;
  lr: number;
  warmup?: number;
  schedule: LrDecay;
  weightDecay: number;
  tokenizer: BaseTokenizerKind;
  seed: number;
  microBatchTokens?: number;
  name?: string;
  dtype: 'f32' | 'f16';
  checkpointDir?: string;
  checkpointEvery: number;
  resume?: boolean;
  evalPerTask: number;
  setBase?: boolean;
  library?: string;
  logEvery?: number;
  json?: boolean;
}

const SIZES = Object.keys(BASE_PRESETS) as BaseSize[];

export function register(program: Command): void {
  program
    .command('train-base')
    .description('pretrain + instruction-tune the small T5 base model on the upstream tasks; writes an HF folder')
    .requiredOption('--out <dir>', 'output model folder (config.json, model.safetensors, tokenizer files)')
    .option('--size <s>', `model shape: ${SIZES.join(' | ')}`, choiceArg('--size', SIZES), 'default')
    .option('--steps <n>', 'optimisation steps in total', intArg('--steps', 'positive'), 4000)
    .option('--pretrain-steps <n>', 'leading span-corruption steps (default: 10% of --steps; with --resume, the checkpoint\'s)', intArg('--pretrain-steps', 'non-negative'))
    .option('--mix <name>', 'training mixture (only "upstream": every upstream task, never a target)', 'upstream')
    .option('--tasks <names>', 'only these upstream tasks, comma-separated (default: all of them)', listArg('--tasks'))
    .option('--max-per-task <n>', 'train examples per upstream task (default: all)', intArg('--max-per-task', 'positive'))
    .option('--batch-size <n>', 'examples per step (batched by similar length)', intArg('--batch-size', 'positive'), 32)
    .option('--lr <x>', 'peak learning rate', numberArg('--lr', 'positive'), 2e-3)
    .option('--warmup <n>', 'linear warm-up steps (default: 2% of --steps)', intArg('--warmup', 'non-negative'))
    .option('--schedule <s>', 'constant | linear | cosine decay after warm-up (to 10% of the peak)', scheduleArg, 'cosine')
    .option('--weight-decay <x>', 'decoupled weight decay (AdamW)', numberArg('--weight-decay', 'non-negative'), DEFAULT_BASE_WEIGHT_DECAY)
    .option('--tokenizer <kind>', 'vocabulary: words (counted from the upstream tasks) | bytes (ByT5)', choiceArg('--tokenizer', BASE_TOKENIZERS), DEFAULT_BASE_TOKENIZER)
    .option('--micro-batch-tokens <n>', 'gradient accumulation: padded tokens per forward/backward pass (default 512; less for models larger than the default preset)', intArg('--micro-batch-tokens', 'positive'))
    .option('--seed <s>', 'seed (init, data order, corruption)', intArg('--seed', 'any'), 0)
    .option('--name <name>', 'the model\'s _name_or_path (recorded by its modules; default lorahub/t5-<word|byte>-<size>)')
    .option('--dtype <d>', 'stored weight type: f16 | f32', dtypeArg, 'f16')
    .option('--checkpoint-dir <dir>', 'run folder for checkpoints (default <out>.ckpt)')
    .option('--checkpoint-every <n>', 'save a checkpoint every N steps (0: only at the end and on Ctrl-C)', intArg('--checkpoint-every', 'non-negative'), 200)
    .option('--resume', 'continue from the checkpoint in the run folder (--steps may grow)')
    .option('--eval-per-task <n>', 'exact match of the saved model on N test examples per upstream task (0: skip)', intArg('--eval-per-task', 'non-negative'), 20)
    .option('--set-base', 'record the result as the default base of the library')
    .option('--library <dir>', `library for --set-base (default ${DEFAULT_LIBRARY_DIR}, or LORAHUB_LIBRARY)`)
    .option('--log-every <n>', 'print a progress line every N steps', intArg('--log-every', 'positive'))
    .option('--json', 'print the result as one JSON object; no progress bar')
    .action(async (opts: Opts, cmd: Command) => {
      await setupBackend(cmd);
      // The trainers hold their parameters in tfjs: loaded here, so that the CLI's other verbs never load tfjs.
      const { buildBaseModel } = await import('../../train/base.ts');
      const { readCheckpoint } = await import('../../train/checkpoint.ts');
      const engine = await setupTrainEngine(cmd);
      if (opts.mix !== 'upstream') throw new LorahubError('BAD_ARGUMENT', `--mix must be "upstream" (target tasks stay held out), got "${opts.mix}"`);
      const { size, steps } = opts;
      // Resolved before training, so that a refused library fails now, not after the run.
      const libDir = opts.setBase ? writableLibraryDir(opts.library) : undefined;
      const checkpointDir = opts.checkpointDir ?? `${opts.out}.ckpt`;
      // Its default depends on --steps, which a resume may change: then keep the checkpoint's.
      const saved = opts.resume && opts.pretrainSteps === undefined ? readCheckpoint(checkpointDir)?.state.run.pretrainSteps : undefined;
      const pretrainSteps = opts.pretrainSteps ?? (typeof saved === 'number' ? saved : Math.floor(steps / 10));
      const lr: LrSchedule = { peak: opts.lr, warmupSteps: opts.warmup ?? Math.ceil(steps / 50), decay: opts.schedule, finalFraction: 0.1 };
      const progress = trainingProgress(`train-base ${size}`, { json: opts.json, logEvery: opts.logEvery });
      const interrupt = interruptSignal();
      try {
        const r = await buildBaseModel({
          out: opts.out,
          size,
          steps,
          pretrainSteps,
          batchSize: opts.batchSize,
          microBatchTokens: opts.microBatchTokens,
          lr,
          weightDecay: opts.weightDecay,
          seed: opts.seed,
          name: opts.name ?? `lorahub/t5-${opts.tokenizer === 'bytes' ? 'byte' : 'word'}-${size}`,
          tokenizer: opts.tokenizer,
          tasks: opts.tasks,
          maxPerTask: opts.maxPerTask,
          dtype: opts.dtype === 'f16' ? 'F16' : 'F32',
          checkpoint: { dir: checkpointDir, every: opts.checkpointEvery },
          resume: opts.resume,
          evalPerTask: opts.evalPerTask,
          engine,
          signal: interrupt.signal,
          onProgress: progress.onProgress,
          onPhase: (phase, detail) => {
            progress.stop();
            if (!opts.json) process.stderr.write(`${phase === 'evaluate' ? 'evaluating exact match on' : 'saving to'} ${detail}…\n`);
          },
        });
        progress.stop();
        let base: string | null = null;
        if (libDir !== undefined) {
          const lib = await openLibrary(libDir, {
            create: true,
            lockWaitMs: REGISTER_LOCK_WAIT_MS,
          });
          await lib.setDefaultBase(opts.out);
          base = lib.dir;
        }
        const accs = Object.values(r.evaluation);
        const mean = accs.length ? accs.reduce((s, x) => s + x, 0) / accs.length : null;
        if (opts.json) {
          out(JSON.stringify({ out: r.out, parameters: r.parameters, steps: r.loop.steps, resumedFrom: r.loop.resumedFrom, finalLoss: r.loop.losses.at(-1) ?? null, tokensPerSecond: r.loop.tokensPerSecond, stepsPerSecond: r.loop.stepsPerSecond, meanExactMatch: mean, exactMatch: r.evaluation, defaultBaseOf: base }));
        } else {
          out(`trained ${size} base (${(r.parameters / 1e6).toFixed(2)} M parameters): ${r.loop.steps} steps, final loss ${(r.loop.losses.at(-1) ?? NaN).toFixed(4)}, ${r.loop.stepsPerSecond.toFixed(2)} steps/s, ${r.loop.tokensPerSecond.toFixed(0)} tok/s`);
          out(`written to ${r.out}`);
          for (const [t, a] of Object.entries(r.evaluation)) out(`  ${t.padEnd(28)} exact match ${a.toFixed(3)}`);
          if (mean !== null) out(`mean upstream exact match ${mean.toFixed(3)}`);
          if (base) out(`default base of ${base}`);
        }
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });
}
