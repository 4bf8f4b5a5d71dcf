/**
 * What `train` and `train-base` share on the command line: the flags both trainers parse the same
 * way, the progress display, Ctrl-C handling and how long they wait for the library lock. Loads no
 * tensor library (the trainers import theirs in their actions).
 */
import cliProgress from 'cli-progress';
import type { LrDecay, Progress } from '../../train/loop.ts';
import { choiceArg } from './common.ts';

/**
 * How long `train` and `train-base` wait for another writer's library lock before registering
 * what they trained (interactive `modules` commands fail fast instead): a registration holds the
 * lock for about a second, so parallel trainings sharing a library (build-default --parallel)
 * queue up rather than fail at the end of a long run.
 */
export const REGISTER_LOCK_WAIT_MS = 60_000;

/** `--schedule`: the learning-rate decay after warm-up (src/train/loop.ts LrDecay). */
export const scheduleArg: (v: string) => LrDecay = choiceArg('--schedule', ['constant', 'linear', 'cosine']);

/** `--dtype`: the stored weight type, any case ("F16" too). */
export const dtypeArg = choiceArg('--dtype', ['f32', 'f16'], { ignoreCase: true });

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** One progress line (for logs). */
function progressLine(label: string, p: Progress): string {
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
