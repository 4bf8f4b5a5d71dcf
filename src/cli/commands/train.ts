/**
 * `lorahub train --task NAME`: trains one LoRA (or DyLoRA) module on a task's train split, on the
 * frozen base, evaluates it and adds it to the module library (src/train/task.ts).
 */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { LorahubError } from '../../errors.ts';
import { DEFAULT_LIBRARY_DIR, defaultReadLibraryDir, openLibrary, writableLibraryDir } from '../../library/index.ts';
import type { LrDecay, LrSchedule, Progress } from '../../train/loop.ts';
import { countOption, numberOption, out, parseList, positiveInt, REGISTER_LOCK_WAIT_MS, seedOption } from '../common.ts';
import { setupBackend } from '../options.ts';

interface Opts {
  task: string;
  rank: string;
  alpha: string;
  targets: string;
  dylora?: string;
  steps: string;
  lr: string;
  warmup: string;
  schedule: string;
  batchSize: string;
  seed: string;
  microBatchTokens?: string;
  library?: string;
  model?: string;
  name?: string;
  out?: string;
  add: boolean;
  force?: boolean;
  checkpointDir?: string;
  checkpointEvery: string;
  resume?: boolean;
  keepCheckpoint?: boolean;
  evalTest?: string;
  evalTrain: string;
  logEvery?: string;
  dtype: string;
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

export function parseDecay(v: string): LrDecay {
  if (v === 'constant' || v === 'linear' || v === 'cosine') return v;
  throw new LorahubError('BAD_ARGUMENT', `--schedule must be constant, linear or cosine, got "${v}"`);
}

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** One progress line (for logs). */
export function progressLine(label: string, p: Progress): string {
  return `${label}: step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} |g| ${p.gradNorm.toFixed(3)} ${p.tokensPerSecond.toFixed(0)} tok/s ${p.stepsPerSecond.toFixed(2)} steps/s ETA ${fmtSeconds(p.etaSeconds)}`;
}

/**
 * Progress on stderr: a bar on a terminal (not with --json), and/or a plain line every `logEvery`
 * steps (for logs of long runs).
 */
export function trainingProgress(label: string, opts: { json?: boolean; logEvery?: number }): { onProgress: (p: Progress) => void; stop: () => void } {
  const tty = process.stderr.isTTY === true && !opts.json;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: `${label} |{bar}| step {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_h}`,
          stream: process.stderr,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  return {
    onProgress: (p) => {
      if (bar) {
        const payload = { loss: p.loss.toFixed(4), tps: p.tokensPerSecond.toFixed(0), eta_h: fmtSeconds(p.etaSeconds) };
        if (!started) {
          bar.start(p.steps, p.step, payload);
          started = true;
        } else bar.update(p.step, payload);
      }
      if (opts.logEvery && p.step % opts.logEvery === 0) {
        if (bar) bar.stop();
        process.stderr.write(`${progressLine(label, p)}\n`);
        started = false;
      }
    },
    stop: () => {
      if (bar && started) bar.stop();
      started = false;
    },
  };
}

/** Ctrl-C once: stop after the current step, save a checkpoint, exit; twice: Node's default (kill). */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nlorahub: interrupted: saving a checkpoint after this step (Ctrl-C again to kill)\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  return { signal: ac.signal, dispose: () => process.off('SIGINT', onSigint) };
}

function dtypeOption(v: string): 'F32' | 'F16' {
  const d = v.toUpperCase();
  if (d === 'F32' || d === 'F16') return d;
  throw new LorahubError('BAD_ARGUMENT', `--dtype must be f32 or f16, got "${v}"`);
}

export function register(program: Command): void {
  program
    .command('train')
    .description("train a LoRA module on a task's train split (frozen base), evaluate it, add it to the library")
    .requiredOption('--task <name>', 'task of the registry (tasks/)')
    .option('--rank <r>', 'LoRA rank', '16')
    .option('--alpha <a>', 'lora_alpha (scaling alpha/r)', '32')
    .option('--targets <list>', 'Linear names: q,k,v,o,wi,wi_0,wi_1,wo (all blocks, encoder+decoder)', 'q,v')
    .option('--dylora <rmin:rmax>', 'DyLoRA: train every rank in [rmin, rmax] (rank := rmax)')
    .option('--steps <n>', 'optimisation steps', '300')
    .option('--lr <x>', 'peak learning rate (Adam)', '1e-3')
    .option('--warmup <n>', 'linear warm-up steps', '0')
    .option('--schedule <s>', 'constant | linear | cosine decay after warm-up', 'linear')
    .option('--batch-size <n>', 'examples per step (batched by similar length)', '16')
    .option('--micro-batch-tokens <n>', 'gradient accumulation: padded tokens per forward/backward pass (default 512; less for models larger than the default preset)')
    .option('--seed <s>', 'seed (init, data order, DyLoRA ranks)', '0')
    .option('--library <dir>', `module library (default ${DEFAULT_LIBRARY_DIR}, or LORAHUB_LIBRARY)`)
    .option('--model <dir>', 'base model folder (default: the library base model)')
    .option('--name <name>', 'module name (default: the task name)')
    .option('--out <dir>', 'also keep the PEFT adapter folder here')
    .option('--no-add', 'do not add the module to the library (needs --out)')
    .option('--dtype <d>', 'stored adapter weights: f32 | f16 (half the size; loading converts)', 'f32')
    .option('--force', "replace a module of the same name in the library; add one whose ranks, scalings or targets differ from the library's modules (compose then never samples it)")
    .option('--checkpoint-dir <dir>', 'run folder for checkpoints (default <out>.ckpt, or .lorahub/checkpoints/train-<name>)')
    .option('--checkpoint-every <n>', 'save a checkpoint every N steps (0: only on Ctrl-C)', '100')
    .option('--resume', 'continue from the checkpoint in the run folder')
    .option('--keep-checkpoint', 'keep the checkpoint after success (default: deleted)')
    .option('--eval-test <n>', 'test examples to evaluate (default: all)')
    .option('--eval-train <n>', 'train examples to evaluate', '100')
    .option('--log-every <n>', 'print a progress line every N steps')
    .option('--json', 'print the result as one JSON object; no progress bar')
    .action(async (opts: Opts, cmd: Command) => {
      await setupBackend(cmd);
      // The trainer is tfjs (autodiff): loaded here, so that the CLI's other verbs never load tfjs.
      const { parseDyLoraRange } = await import('../../train/dylora.ts');
      const { trainTaskModule } = await import('../../train/task.ts');
      const rank = positiveInt('--rank', opts.rank, 16);
      const dylora = opts.dylora ? parseDyLoraRange(opts.dylora) : undefined;
      if (dylora && cmd.getOptionValueSource('rank') === 'cli' && rank !== dylora.max) {
        throw new LorahubError('BAD_ARGUMENT', `--rank ${rank} contradicts --dylora ${opts.dylora} (the rank is rmax)`);
      }
      const lr: LrSchedule = {
        peak: numberOption('--lr', opts.lr),
        warmupSteps: countOption('--warmup', opts.warmup),
        decay: parseDecay(opts.schedule),
        finalFraction: 0,
      };
      if (!opts.add && !opts.out) throw new LorahubError('BAD_ARGUMENT', '--no-add needs --out DIR (the module has to go somewhere)');
      // With --no-add the library is only read (for its base model), so the shipped one serves too.
      const libDir = opts.add ? writableLibraryDir(opts.library) : opts.library ?? defaultReadLibraryDir();
      const lib = opts.add || !opts.model ? await openLibrary(libDir, { create: opts.add, lockWaitMs: REGISTER_LOCK_WAIT_MS }) : undefined;
      const modelDir = opts.model ?? lib?.defaultBaseDir();
      if (!modelDir) throw new LorahubError('BAD_ARGUMENT', `no --model given and no default base model in ${libDir} (see \`lorahub modules set-base\`)`);
      const name = opts.name ?? (dylora ? `${opts.task}-dylora` : opts.task);
      const checkpointDir = opts.checkpointDir ?? (opts.out ? `${opts.out}.ckpt` : join(DEFAULT_RUNS_DIR, 'checkpoints', `train-${name}`));
      const progress = trainingProgress(`train ${name}`, { json: opts.json, logEvery: opts.logEvery ? positiveInt('--log-every', opts.logEvery, 1) : undefined });
      const interrupt = interruptSignal();
      try {
        const r = await trainTaskModule({
          task: opts.task,
          modelDir,
          library: opts.add ? lib : undefined,
          name,
          out: opts.out,
          dtype: dtypeOption(opts.dtype),
          spec: {
            rank: dylora ? dylora.max : rank,
            alpha: numberOption('--alpha', opts.alpha),
            targets: parseList('--targets', opts.targets),
            dylora,
          },
          steps: positiveInt('--steps', opts.steps, 300),
          batchSize: positiveInt('--batch-size', opts.batchSize, 16),
          microBatchTokens: opts.microBatchTokens ? positiveInt('--micro-batch-tokens', opts.microBatchTokens, 1024) : undefined,
          lr,
          seed: seedOption(opts.seed),
          checkpoint: { dir: checkpointDir, every: countOption('--checkpoint-every', opts.checkpointEvery) },
          resume: opts.resume,
          evalTest: opts.evalTest ? positiveInt('--eval-test', opts.evalTest, 1) : undefined,
          evalTrain: countOption('--eval-train', opts.evalTrain),
          force: opts.force,
          keepCheckpoint: opts.keepCheckpoint,
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
