/**
 * Forward-pass throughput per engine: tokens/s of a teacher-forced forward (token losses, the
 * ADAPT objective's pass) at batch 5 × 128 input tokens (+ 32 target tokens), next to the
 * engine's own measured 2D matmul rate and the matmul FLOPs the forward needs — the fraction of
 * the engine's matmul rate the forward achieves. Each (engine, model) runs in its own process,
 * so peak RSS is that configuration's.
 *
 *   npm run bench [-- --engines ort,tfjs --models fixture,small,base,large --reps 3 --json]
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { openEngine } from '../src/engine/index.ts';
import { t5ForwardFlops } from '../src/models/t5/flops.ts';
import { loadT5Config } from '../src/models/t5/config.ts';
import type { RandomT5Size } from '../src/models/t5/random.ts';
import { FIXTURE, median, peakRssMb, randomCheckpoint, runChild, type BenchRow } from './lib/bench.ts';

const o = new Command()
  .option('--engines <list>', 'engines to run', 'ort,tfjs')
  .option('--models <list>', 'fixture | small | base | large (FLAN-T5-shaped random checkpoints)', 'fixture,small')
  .option('--threads <n>', 'threads per forward (ort; default all cores)')
  .option('--reps <n>', 'timed repetitions (median reported)', '5')
  .option('--batch <n>', 'examples per forward', '5')
  .option('--enc-len <n>', 'input tokens per example', '128')
  .option('--dec-len <n>', 'target tokens per example', '32')
  .option('--json', 'one JSON line per (engine, model)')
  .option('--child <engine:model>', '(internal) measure one configuration in this process')
  .parse()
  .opts<{ engines: string; models: string; threads?: string; reps: string; batch: string; encLen: string; decLen: string; json?: boolean; child?: string }>();

const reps = Number(o.reps);
const [batch, encLen, decLen] = [Number(o.batch), Number(o.encLen), Number(o.decLen)];

function modelDir(name: string): string {
  return name === 'fixture' ? join(FIXTURE, 'model') : randomCheckpoint(name as RandomT5Size);
}

function idsOf(vocab: number, rows: number, len: number, seed: number): number[][] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648), s);
  return Array.from({ length: rows }, () => Array.from({ length: len }, (_, i) => (i === len - 1 ? 1 : 3 + (next() % (Math.min(vocab, 259) - 3)))));
}

/**
 * The engine's 2D matmul rate: its best GFLOP/s over the products a small-model forward does
 * (rows 640 × linear layers) and a 1024³ one, weights reused as in a forward.
 */
async function matmulRate(mm: (m: number, k: number, n: number, reps: number) => Promise<number>): Promise<{ gflops: number; shape: string }> {
  let best = { gflops: 0, shape: '' };
  for (const [m, k, n] of [
    [640, 512, 384],
    [640, 512, 1024],
    [640, 1024, 512],
    [1024, 1024, 1024],
  ]) {
    const g = await mm(m, k, n, reps);
    if (g > best.gflops) best = { gflops: g, shape: `${m}×${k}×${n}` };
  }
  return best;
}

async function child(engineName: string, name: string): Promise<void> {
  const engine = await openEngine({ engine: engineName, threads: o.threads ? Number(o.threads) : undefined });
  const model = await engine.load(modelDir(name));
  const labels = idsOf(model.config.vocabSize, batch, decLen, 2);
  const b = { inputIds: idsOf(model.config.vocabSize, batch, encLen, 1), attentionMask: Array.from({ length: batch }, () => new Array<number>(encLen).fill(1)), labels };
  const t0 = performance.now();
  await model.tokenLosses(b); // warm-up: graph build / weight packing
  const firstS = (performance.now() - t0) / 1000;
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await model.tokenLosses(b);
    times.push((performance.now() - t) / 1000);
  }
  const sec = median(times);
  await model.dispose();
  // The forward's own peak, before the matmul-rate products allocate theirs.
  const peak = peakRssMb();
  const rate = await matmulRate((m, k, n, r) => engine.matmulGflops(m, k, n, r));
  // The forward benchmark is T5's (encoder + decoder FLOPs); its checkpoints are T5 folders.
  const flops = t5ForwardFlops(loadT5Config(model.dir), batch, encLen, decLen);
  const row: BenchRow = {
    bench: 'forward',
    setup: name,
    engine: model.info.engine,
    device: model.info.device,
    threads: model.info.threads,
    mode: `${batch}x${encLen}+${decLen}`,
    seconds: Number(sec.toFixed(4)),
    tokens_per_s: Math.round((batch * (encLen + decLen)) / sec),
    gflops: Number((flops / sec / 1e9).toFixed(2)),
    forward_gflop: Number((flops / 1e9).toFixed(3)),
    matmul_gflops: Number(rate.gflops.toFixed(1)),
    matmul_shape: rate.shape,
    fraction: Number((flops / sec / 1e9 / rate.gflops).toFixed(3)),
    load_and_first_s: Number(firstS.toFixed(2)),
    provider: model.info.provider,
    peak_rss_mb: peak,
  };
  console.log(JSON.stringify(row));
}

if (o.child) {
  const [engineName, name] = o.child.split(':');
  await child(engineName, name);
} else {
  const rows: BenchRow[] = [];
  for (const name of o.models.split(',')) {
    modelDir(name); // write random checkpoints once, before any timing
    for (const engine of o.engines.split(',')) {
      if (engine === 'tfjs' && name === 'large') {
        rows.push({ bench: 'forward', setup: name, engine, skipped: 'tfjs-wasm cannot hold 2.9 GB of weights (4 GB wasm32 heap)' });
        continue;
      }
      const args = ['--child', `${engine}:${name}`, '--reps', o.reps, '--batch', o.batch, '--enc-len', o.encLen, '--dec-len', o.decLen];
      if (o.threads) args.push('--threads', o.threads);
      for (const r of runChild('scripts/bench-forward.ts', args, { bench: 'forward', setup: name, engine })) {
        rows.push(r);
        if (o.json) console.log(JSON.stringify(r));
      }
    }
  }
  if (!o.json) {
    console.log('| engine | model | threads | s/forward | tokens/s | forward GFLOP | forward GFLOP/s | engine 2D matmul GFLOP/s | fraction | peak RSS |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      if (r.skipped || r.error) {
        console.log(`| ${r.engine} | ${r.setup} | | ${String(r.skipped ?? r.error)} |||||||`);
        continue;
      }
      console.log(
        `| ${r.engine} (${r.device}) | ${r.setup} | ${r.threads} | ${r.seconds} | ${r.tokens_per_s} | ${r.forward_gflop} | ${r.gflops} | ${r.matmul_gflops} (${r.matmul_shape}) | ${Math.round((r.fraction as number) * 100)}% | ${r.peak_rss_mb} MB |`,
      );
    }
  }
}
