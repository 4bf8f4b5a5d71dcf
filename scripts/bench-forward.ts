/**
 * Forward-pass throughput per backend: tokens/s at batch 5 × 128 input tokens (decoder 32),
 * for the fixture model and a FLAN-T5-small-shaped random model, next to the backend's own 2D
 * matmul rate and the matmul FLOPs the forward needed — the fraction of the machine's matmul
 * rate the forward achieves.
 *
 *   npm run bench [-- --backends wasm,cpu --reps 3 --json]
 */
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { availableBackends, initBackend } from '../src/backend.ts';
import { t5ForwardFlops } from '../src/models/t5/flops.ts';
import { T5Model } from '../src/models/t5/model.ts';
import { writeRandomT5 } from '../src/models/t5/random.ts';

const o = new Command()
  .option('--backends <list>', 'backends to run (default: every available one)')
  .option('--reps <n>', 'timed repetitions (median reported)', '3')
  .option('--batch <n>', 'examples per forward', '5')
  .option('--enc-len <n>', 'input tokens per example', '128')
  .option('--dec-len <n>', 'target tokens per example', '32')
  .option('--models <list>', 'fixture,small', 'fixture,small')
  .option('--json', 'one JSON line per (backend, model)')
  .parse()
  .opts<{ backends?: string; reps: string; batch: string; encLen: string; decLen: string; models: string; json?: boolean }>();

const REPO = new URL('..', import.meta.url).pathname;
const FIXTURE = join(REPO, '..', 'shared', 'fixtures', 't5-gated', 'model');
const SMALL = join(REPO, '.bench', 't5-small-seed0');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * The backend's 2D matmul rate: the best GFLOP/s over plain untransposed products at the shapes
 * a small-model forward multiplies (rows 640 × linear layers) and a large square one, weights
 * reused as in a forward. The best, so that "fraction" is against the machine's peak.
 */
function matmulRate(reps: number): { gflops: number; shape: string } {
  const shapes: [number, number, number][] = [
    [640, 512, 384],
    [640, 512, 1024],
    [640, 1024, 512],
    [1024, 1024, 1024],
  ];
  let best = { gflops: 0, shape: '' };
  for (const [m, k, n] of shapes) {
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    const times: number[] = [];
    for (let i = 0; i < reps + 2; i++) {
      const t0 = performance.now();
      // Not inside tf.tidy: tidy would walk a returned TypedArray element by element.
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
      if (i >= 2) times.push(performance.now() - t0);
    }
    tf.dispose([a, b]);
    const g = (2 * m * k * n) / (median(times) / 1000) / 1e9;
    if (g > best.gflops) best = { gflops: g, shape: `${m}×${k}×${n}` };
  }
  return best;
}

function batchOf(vocab: number, batch: number, len: number, seed: number): number[][] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648), s);
  return Array.from({ length: batch }, () => Array.from({ length: len }, (_, i) => (i === len - 1 ? 1 : 3 + (next() % (Math.min(vocab, 259) - 3)))));
}

async function main(): Promise<void> {
  const backends = o.backends ? o.backends.split(',') : await availableBackends();
  const reps = Number(o.reps);
  const [batch, encLen, decLen] = [Number(o.batch), Number(o.encLen), Number(o.decLen)];
  const models = o.models.split(',');
  if (models.includes('small') && !existsSync(join(SMALL, 'model.safetensors'))) {
    writeRandomT5('small', 0, SMALL);
  }
  const rows: Record<string, unknown>[] = [];
  for (const be of backends) {
    const info = await initBackend(be);
    const { gflops: rate, shape: rateShape } = matmulRate(reps);
    for (const name of models) {
      const dir = name === 'fixture' ? FIXTURE : SMALL;
      if (be === 'cpu' && name === 'small') {
        rows.push({ backend: info.name, model: name, skipped: 'pure-JS cpu backend: minutes per forward' });
        continue;
      }
      const model = T5Model.load(dir);
      const ids = batchOf(model.config.vocabSize, batch, encLen, 1);
      const dec = batchOf(model.config.vocabSize, batch, decLen, 2).map((r) => [0, ...r.slice(0, -1)]);
      const run = () => {
        const r = model.forward({ inputIds: ids }, dec);
        r.logits.dataSync();
        tf.dispose([r.logits, r.encoder]);
      };
      run(); // warm-up (XNNPACK packs weights on first use)
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        run();
        times.push((performance.now() - t0) / 1000);
      }
      const sec = median(times);
      const flops = t5ForwardFlops(model.config, batch, encLen, decLen);
      const gflops = flops / sec / 1e9;
      rows.push({
        backend: info.name,
        model: name,
        batch,
        enc_len: encLen,
        dec_len: decLen,
        seconds: Number(sec.toFixed(4)),
        tokens_per_s: Math.round((batch * (encLen + decLen)) / sec),
        forward_gflop: Number((flops / 1e9).toFixed(3)),
        forward_gflops: Number(gflops.toFixed(2)),
        matmul_gflops: Number(rate.toFixed(2)),
        matmul_shape: rateShape,
        fraction_of_matmul: Number((gflops / rate).toFixed(3)),
      });
      model.dispose();
    }
  }
  if (o.json) {
    for (const r of rows) console.log(JSON.stringify(r));
    return;
  }
  console.log('| backend | model | batch×in (+out) | s/forward | tokens/s | forward GFLOP | forward GFLOP/s | 2D matmul GFLOP/s | fraction |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.skipped) {
      console.log(`| ${r.backend} | ${r.model} | skipped: ${r.skipped} ||||||| `);
      continue;
    }
    console.log(
      `| ${r.backend} | ${r.model} | ${r.batch}×${r.enc_len} (+${r.dec_len}) | ${r.seconds} | ${r.tokens_per_s} | ${r.forward_gflop} | ${r.forward_gflops} | ${r.matmul_gflops} (${r.matmul_shape}) | ${((r.fraction_of_matmul as number) * 100).toFixed(0)}% |`,
    );
  }
}

await main();
