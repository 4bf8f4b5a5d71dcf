/**
 * `lorahub train --task NAME`: trains one LoRA (or DyLoRA) module on a task's train split, on the
 * frozen base, evaluates it and adds it to the module library (src/train/task.ts).
 */
import { Option, type Command } from 'commander';
import { rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { LorahubError } from '../../errors.ts';
import { DEFAULT_LIBRARY_DIR, defaultReadLibraryDir, openLibrary, writableLibraryDir } from '../../library/index.ts';
import type { LrDecay, LrSchedule } from '../../train/loop.ts';
import { intArg, listArg, numberArg, out } from '../shared/common.ts';
import { setupBackend, setupTrainEngine } from '../shared/options.ts';
import { dtypeArg, interruptSignal, REGISTER_LOCK_WAIT_MS, scheduleArg, trainingProgress } from '../shared/training.ts';

interface Opts {
  task: string;
  rank: number;
  alpha: number;
  targets: string[];
  dylora?: string;
  steps: number;
  lr: number;
  warmup: number;
  schedule: LrDecay;
  batchSize: number;
  seed: number;
  microBatchTokens?: number;
  library?: string;
  model?: string;
  name?: string;
  out?: string;
  add: boolean;
  force?: boolean;
  checkpointDir?: string;
  checkpointEvery: number;
  resume?: boolean;
  keepCheckpoint?: boolean;
  evalTest?: number;
  evalTrain: number;
  logEvery?: number;
  dtype: 'f32' | 'f16';
  json?: boolean;
}

/** Where `lorahub train` keeps run folders by default (relative to the working directory). */
const DEFAULT_RUNS_DIR = '.lorahub';

/** After a successful run, the default runs folder goes too if nothing else is in it. */
function removeEmptyRunsDir(): void {
  for (const d of [join(DEFAULT_RUNS_DIR, 'checkpoints'), DEFAULT_RUNS_DIR]) {
    try {
      rmdirSync(d);
    } catch {
      // Not empty (another run's checkpoint) or already gone: leave it.
      return;
    }
  }
}

export function register(program: Command): void {
  program
    .command('train')
    .description("train a LoRA module on a task's train split (frozen base), evaluate it, add it to the library")
    .requiredOption('--task <name>', 'task of the registry (tasks/)')
    .option('--rank <r>', 'LoRA rank', intArg('--rank', 'positive'), 16)
    .option('--alpha <a>', 'lora_alpha (scaling alpha/r)', numberArg('--alpha', 'positive'), 32)
    // An array default, shown as it is typed (commander would print ["q","v"]).
    .addOption(new Option('--targets <list>', 'Linear names: q,k,v,o,wi,wi_0,wi_1,wo (all blocks, encoder+decoder)').argParser(listArg('--targets')).default(['q', 'v'], 'q,v'))
    .option('--dylora <rmin:rmax>', 'DyLoRA: train every rank in [rmin, rmax] (rank := rmax)')
    .option('--steps <n>', 'optimisation steps', intArg('--steps', 'positive'), 300)
    .option('--lr <x>', 'peak learning rate (Adam)', numberArg('--lr', 'positive'), 1e-3)
    .option('--warmup <n>', 'linear warm-up steps', intArg('--warmup', 'non-negative'), 0)
    .option('--schedule <s>', 'constant | linear | cosine decay after warm-up', scheduleArg, 'linear')
    .option('--batch-size <n>', 'examples per step (batched by similar length)', intArg('--batch-size', 'positive'), 16)
    .option('--micro-batch-tokens <n>', 'gradient accumulation: padded tokens per forward/backward pass (default 512; less for models larger than the default preset)', intArg('--micro-batch-tokens', 'positive'))
    .option('--seed <s>', 'seed (init, data order, DyLoRA ranks)', intArg('--seed', 'any'), 0)
    .option('--library <dir>', `module library (default ${DEFAULT_LIBRARY_DIR}, or LORAHUB_LIBRARY)`)
    .option('--model <dir>', 'base model folder (default: the library base model)')
    .option('--name <name>', 'module name (default: the task name)')
    .option('--out <dir>', 'also keep the PEFT adapter folder here')
    .option('--no-add', 'do not add the module to the library (needs --out)')
    .option('--dtype <d>', 'stored adapter weights: f32 | f16 (half the size; loading converts)', dtypeArg, 'f32')
    .option('--force', "replace a module of the same name in the library; add one whose ranks, scalings or targets differ from the library's modules (compose then never samples it)")
    .option('--checkpoint-dir <dir>', 'run folder for checkpoints (default <out>.ckpt, or .lorahub/checkpoints/train-<name>)')
    .option('--checkpoint-every <n>', 'save a checkpoint every N steps (0: only on Ctrl-C)', intArg('--checkpoint-every', 'non-negative'), 100)
    .option('--resume', 'continue from the checkpoint in the run folder')
    .option('--keep-checkpoint', 'keep the checkpoint after success (default: deleted)')
    .option('--eval-test <n>', 'test examples to evaluate (default: all)', intArg('--eval-test', 'positive'))
    .option('--eval-train <n>', 'train examples to evaluate', intArg('--eval-train', 'non-negative'), 100)
    .option('--log-every <n>', 'print a progress line every N steps', intArg('--log-every', 'positive'))
    .option('--json', 'print the result as one JSON object; no progress bar')
    .action(async (opts: Opts, cmd: Command) => {
      await setupBackend(cmd);
      // The trainers hold their parameters in tfjs: loaded here, so that the CLI's other verbs never load tfjs.
      const { parseDyLoraRange } = await import('../../train/dylora.ts');
      const { trainTaskModule } = await import('../../train/task.ts');
      const dylora = opts.dylora ? parseDyLoraRange(opts.dylora) : undefined;
      const engine = await setupTrainEngine(cmd, { dylora: dylora !== undefined });
      if (dylora && cmd.getOptionValueSource('rank') === 'cli' && opts.rank !== dylora.max) {
        throw new LorahubError('BAD_ARGUMENT', `--rank ${opts.rank} contradicts --dylora ${opts.dylora} (the rank is rmax)`);
      }
      const lr: LrSchedule = { peak: opts.lr, warmupSteps: opts.warmup, decay: opts.schedule, finalFraction: 0 };
      if (!opts.add && !opts.out) throw new LorahubError('BAD_ARGUMENT', '--no-add needs --out DIR (the module has to go somewhere)');
      // With --no-add the library is only read (for its base model), so the shipped one serves too.
      const libDir = opts.add ? writableLibraryDir(opts.library) : opts.library ?? defaultReadLibraryDir();
      const lib = opts.add || !opts.model ? await openLibrary(libDir, { create: opts.add, lockWaitMs: REGISTER_LOCK_WAIT_MS }) : undefined;
      const modelDir = opts.model ?? lib?.defaultBaseDir();
      if (!modelDir) throw new LorahubError('BAD_ARGUMENT', `no --model given and no default base model in ${libDir} (see \`lorahub modules set-base\`)`);
      const name = opts.name ?? (dylora ? `${opts.task}-dylora` : opts.task);
      const checkpointDir = opts.checkpointDir ?? (opts.out ? `${opts.out}.ckpt` : join(DEFAULT_RUNS_DIR, 'checkpoints', `train-${name}`));
      const progress = trainingProgress(`train ${name}`, { json: opts.json, logEvery: opts.logEvery });
      const interrupt = interruptSignal();
      try {
        const r = await trainTaskModule({
          task: opts.task,
          modelDir,
          library: opts.add ? lib : undefined,
          name,
          out: opts.out,
          dtype: opts.dtype === 'f16' ? 'F16' : 'F32',
          spec: { rank: dylora ? dylora.max : opts.rank, alpha: opts.alpha, targets: opts.targets, dylora },
          steps: opts.steps,
          batchSize: opts.batchSize,
          microBatchTokens: opts.microBatchTokens,
          lr,
          seed: opts.seed,
          checkpoint: { dir: checkpointDir, every: opts.checkpointEvery },
          resume: opts.resume,
          evalTest: opts.evalTest,
          evalTrain: opts.evalTrain,
          force: opts.force,
          keepCheckpoint: opts.keepCheckpoint,
          engine,
          signal: interrupt.signal,
          onProgress: progress.onProgress,
          onPhase: (phase, detail) => {
            progress.stop();
            if (!opts.json) process.stderr.write(`${phase === 'evaluate' ? 'evaluating exact match on' : 'saving'} ${detail}…\n`);
          },
        });
        progress.stop();
        if (!opts.checkpointDir && !opts.out && !opts.keepCheckpoint) removeEmptyRunsDir();
        const summary = {
          name: r.name,
          task: r.task,
          out: r.out,
          library: r.added ? lib?.dir ?? null : null,
          metrics: r.metrics,
          steps: r.loop.steps,
          resumedFrom: r.loop.resumedFrom,
          tokensPerSecond: r.loop.tokensPerSecond,
          stepsPerSecond: r.loop.stepsPerSecond,
          warnings: r.added?.warnings ?? [],
        };
        if (opts.json) {
          out(JSON.stringify(summary));
        } else {
          const m = r.metrics;
          out(`trained ${r.name} on ${r.task}: ${r.loop.steps} steps, ${r.loop.stepsPerSecond.toFixed(2)} steps/s, ${r.loop.tokensPerSecond.toFixed(0)} tok/s`);
          out(`exact match: test ${Number(m.test_exact_match).toFixed(3)}, train ${Number(m.train_exact_match).toFixed(3)}; test loss ${Number(m.test_loss).toFixed(4)}`);
          if (r.added) out(`added to ${lib?.dir} as "${r.name}"`);
          if (r.out) out(`adapter written to ${r.out}`);
          for (const w of summary.warnings) out(`warning: ${w}`);
        }
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });
}
