/**
 * What the benchmarks share: each measurement runs in a child process of its own (so its peak RSS
 * is its own: engines, sessions and worker threads never add up across rows), JSON lines in the
 * schema the README documents, and the random checkpoints/worlds they measure on.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeRandomT5, type RandomT5Size } from '../../src/models/t5/random.ts';

export const REPO = new URL('../..', import.meta.url).pathname;
export const FIXTURE = join(REPO, '..', 'shared', 'fixtures', 't5-gated');

/** One benchmark result line. Fields that do not apply are omitted. */
export interface BenchRow {
  bench: 'forward' | 'adapt';
  setup: string;
  engine: string;
  device?: string;
  threads?: number;
  workers?: number;
  mode?: string;
  evals_per_s?: number;
  tokens_per_s?: number;
  gflops?: number;
  peak_rss_mb?: number;
  seconds?: number;
  objective?: number;
  [extra: string]: unknown;
}

/** This process's peak RSS so far (MiB), from the kernel's own high-water mark. */
export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/**
 * Runs `script` with `args` in a child process (tsx), which prints BenchRow JSON lines on stdout;
 * returns them. A child that fails yields one row naming the failure instead of ending the run.
 */
export function runChild(script: string, args: string[], fallback: BenchRow): BenchRow[] {
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(REPO, script), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
    return out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as BenchRow);
  } catch (err) {
    return [{ ...fallback, error: (err as Error).message.split('\n')[0] }];
  }
}

/** A random FLAN-T5-shaped checkpoint under .bench/ (written once, seeded). */
export function randomCheckpoint(size: RandomT5Size): string {
  const dir = join(REPO, '.bench', `t5-${size}-seed0`);
  if (!existsSync(join(dir, 'model.safetensors'))) writeRandomT5(size, 0, dir);
  return dir;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
