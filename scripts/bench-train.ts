/**
 * Training throughput per engine: base-model steps of the shipped recipe (upstream mixture,
 * 32 examples per step, Adam) and LoRA module steps (r 8 on q and v of the shipped base, 16
 * examples per step) on the tfjs tape (wasm) and on onnxruntime (engine/ort/train-step.ts).
 * Each row runs in a process of its own, so one engine's memory or threads never slow another's.
 *
 *   npm run bench:train [-- --sizes tiny,compact --engines ort,tfjs --threads 1,2 --steps 60 --json]
 *
 * Reports steps/s and real (non-pad) tokens/s of the training loop, first steps excluded.
 */
import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { listArg } from '../src/cli/shared/common.ts';

const REPO = new URL('..', import.meta.url).pathname;

const o = new Command()
  .option('--sizes <list>', 'base presets (and "lora": a module on the shipped base)', listArg('--sizes'), ['tiny', 'compact', 'lora'])
  .option('--engines <list>', 'ort, tfjs', listArg('--engines'), ['ort', 'tfjs'])
  .option('--threads <list>', 'ort intra-op threads', listArg('--threads'), ['1', '2'])
  .option('--steps <n>', 'steps measured per row (after 5 warm-up steps)', '60')
  .option('--json', 'one JSON line per row')
  .parse()
  .opts<{ sizes: string[]; engines: string[]; threads: string[]; steps: string; json?: boolean }>();

interface Row {
  bench: 'train';
  what: string;
  engine: string;
  threads: number;
  steps_per_s: number;
  tokens_per_s: number;
}

/** One measurement in a child process: the CLI trainer with --json, throughput of its session. */
function measure(what: string, engine: string, threads: number): Row | undefined {
  const steps = Number(o.steps) + 5;
  const tmp = join(REPO, 'runs', `bench-train-${process.pid}-${what}-${engine}-${threads}`);
  const args =
    what === 'lora'
      ? ['train', '--task', 'bool_and', '--library', join(REPO, 'modules'), '--no-add', '--out', tmp, '--rank', '8', '--alpha', '16', '--steps', String(steps), '--eval-test', '1', '--eval-train', '0', '--json']
      : ['train-base', '--out', tmp, '--size', what, '--steps', String(steps), '--pretrain-steps', '0', '--eval-per-task', '0', '--checkpoint-every', '0', '--json'];
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'lorahub.mjs'), '--engine', engine, '--threads', String(threads), ...args], { encoding: 'utf8' });
  spawnSync('rm', ['-rf', tmp, `${tmp}.ckpt`]);
  if (r.status !== 0) {
    process.stderr.write(`bench-train: ${what} on ${engine}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 300)}\n`);
    return undefined;
  }
  const res = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { stepsPerSecond: number; tokensPerSecond: number };
  return { bench: 'train', what, engine, threads, steps_per_s: res.stepsPerSecond, tokens_per_s: res.tokensPerSecond };
}

const rows: Row[] = [];
for (const what of o.sizes) {
  for (const engine of o.engines) {
    for (const t of engine === 'ort' ? o.threads.map(Number) : [1]) {
      const row = measure(what, engine, t);
      if (!row) continue;
      rows.push(row);
      if (o.json) console.log(JSON.stringify(row));
    }
  }
}
if (!o.json) {
  console.log('| model | engine | threads | steps/s | tokens/s | vs tfjs |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    const base = rows.find((x) => x.what === r.what && x.engine === 'tfjs');
    const vs = base ? `${(r.tokens_per_s / base.tokens_per_s).toFixed(1)}×` : '—';
    console.log(`| ${r.what === 'lora' ? 'LoRA r8 q,v (shipped base)' : `base ${r.what}`} | ${r.engine} | ${r.threads} | ${r.steps_per_s.toFixed(2)} | ${Math.round(r.tokens_per_s).toLocaleString('en')} | ${vs} |`);
  }
}
