/**
 * Rebuilds the shipped default from nothing: the base model (train-base on the upstream
 * mixture), then one LoRA module per upstream task, into a module library (default ./modules).
 * Reproducible: every step is seeded from --seed and logged (build-log.jsonl: command, seed,
 * seconds, result). Resumable: finished steps are skipped, interrupted ones resume from their
 * checkpoints. Gradients are computed on --engine (default ort: onnxruntime, train/engine.ts; tfjs
 * is the wasm tape), the base with --threads intra-op threads; modules train --parallel at a time
 * in separate processes, one thread each.
 *
 *   npx tsx scripts/build-default.ts [--out modules] [--size tiny] [--base-steps 14000]
 *     [--module-steps 300] [--rank 8] [--parallel 2] [--seed 1] [--engine ort] [--threads 2] [--tasks a,b]
 *     [--weight-decay 0.1] [--tokenizer words]
 *
 * The defaults are the shipped fourth edition's recipe (README, "The shipped default").
 */
import { Command } from 'commander';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openLibrary, shippedBytes } from '../src/library/index.ts';
import { choiceArg, intArg, listArg, numberArg } from '../src/cli/shared/common.ts';
import { LorahubError } from '../src/errors.ts';
import { getTasks } from '../src/tasks/index.ts';
import { upstreamTasks } from '../src/train/base.ts';
import { BASE_PRESETS, BASE_TOKENIZERS } from '../src/train/presets.ts';

const o = new Command()
  .option('--out <dir>', 'library folder to build', 'modules')
  .option('--size <s>', 'base preset: tiny | compact | default', 'tiny')
  .option('--base-steps <n>', 'train-base steps', '14000')
  .option('--module-steps <n>', 'train steps per module', '300')
  .option('--rank <r>', 'module rank (alpha = 2·rank, as the real lorahub modules)', '8')
  .option('--parallel <n>', 'modules trained at once', '2')
  .option('--seed <n>', 'base seed; module i uses seed + 1 + i', '1')
  .option('--engine <e>', 'what computes the gradients: ort | tfjs', 'ort')
  .option('--threads <n>', 'ort intra-op threads of the base training', '2')
  .option('--tasks <list>', 'only these upstream tasks (default: all)')
  .option('--weight-decay <x>', "train-base's decoupled weight decay (AdamW)", '0.1')
  .option('--tokenizer <kind>', "the base's vocabulary: bytes | words", 'words')
  .parse()
  .opts<{ out: string; size: string; baseSteps: string; moduleSteps: string; rank: string; parallel: string; seed: string; engine: string; threads: string; tasks?: string; weightDecay: string; tokenizer: string }>();

const REPO = new URL('..', import.meta.url).pathname;
const out = resolve(o.out);
const log = join(out, 'build-log.jsonl');
const seed = Number(o.seed);

function record(entry: Record<string, unknown>): void {
  appendFileSync(log, `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
}

/** Runs `lorahub ARGS` and resolves with its last stdout line (the --json result). */
function lorahub(args: string[], label: string, threads: string): Promise<{ code: number; last: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolveRun) => {
    const global = ['--engine', o.engine, ...(o.engine === 'ort' ? ['--threads', threads] : [])];
    const child = spawn(process.execPath, [join(REPO, 'bin', 'lorahub.mjs'), ...global, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const line = d.toString().trim().split('\n').pop();
      if (line) process.stderr.write(`[${label}] ${line}\n`);
    });
    child.on('close', (code) => resolveRun({ code: code ?? 1, last: stdout.trim().split('\n').pop() ?? '', seconds: (performance.now() - t0) / 1000 }));
  });
}

/**
 * The modules to build, with their seeds. A module's seed is its task's index among ALL upstream
 * tasks, so a --tasks build trains the very modules a full build would (e.g. when a build is split
 * across machines). --tasks refuses unknown names (listing the available ones) and target tasks.
 */
function plannedModules(): { task: string; seed: number }[] {
  const named = o.tasks ? getTasks(listArg('--tasks')(o.tasks)) : undefined;
  const targets = (named ?? []).filter((t) => t.kind !== 'upstream');
  if (targets.length > 0) {
    throw new LorahubError('BAD_ARGUMENT', `--tasks: ${targets.map((t) => t.name).join(', ')}: not an upstream task (modules train on upstream tasks only)`);
  }
  const wanted = named && new Set(named.map((t) => t.name));
  return upstreamTasks()
    .map((t, i) => ({ task: t.name, seed: seed + 1 + i }))
    .filter((t) => !wanted || wanted.has(t.task));
}

// Checked before anything is built: a typo must not surface after an hour of train-base.
let tasks: { task: string; seed: number }[];
try {
  // Passed on to the CLI as written (and logged so), but validated here, not when a module starts.
  for (const [flag, v] of [['--base-steps', o.baseSteps], ['--module-steps', o.moduleSteps], ['--rank', o.rank], ['--parallel', o.parallel], ['--threads', o.threads]] as const) intArg(flag, 'positive')(v);
  intArg('--seed', 'non-negative')(o.seed);
  numberArg('--weight-decay', 'non-negative')(o.weightDecay);
  choiceArg('--size', Object.keys(BASE_PRESETS))(o.size);
  choiceArg('--engine', ['ort', 'tfjs'])(o.engine);
  choiceArg('--tokenizer', BASE_TOKENIZERS)(o.tokenizer);
  tasks = plannedModules();
} catch (err) {
  if (!(err instanceof LorahubError)) throw err;
  process.stderr.write(`build-default: error: ${err.message}\n`);
  process.exit(2);
}

mkdirSync(out, { recursive: true });
const t0 = performance.now();
record({ step: 'start', options: o });

// 1. The base model.
const baseDir = join(out, 'base');
if (existsSync(join(baseDir, 'model.safetensors'))) {
  process.stderr.write(`base model exists in ${baseDir}; skipping train-base\n`);
} else {
  const args = ['train-base', '--out', baseDir, '--size', o.size, '--steps', o.baseSteps, '--seed', String(seed), '--dtype', 'f16', '--weight-decay', o.weightDecay, '--tokenizer', o.tokenizer, '--set-base', '--library', out, '--json'];
  if (existsSync(`${baseDir}.ckpt`)) args.push('--resume');
  const r = await lorahub(args, 'base', o.threads);
  record({ step: 'train-base', args, code: r.code, seconds: r.seconds, result: r.last });
  if (r.code !== 0) throw new Error(`train-base failed (exit ${r.code}); see ${log}`);
}

// 2. One module per upstream task, --parallel at a time.
const lib = await openLibrary(out, { create: true });
const todo = tasks.filter((t) => !lib.hasModule(t.task));
process.stderr.write(`${tasks.length - todo.length} of ${tasks.length} modules already built; training ${todo.length}\n`);
const rank = Number(o.rank);
let next = 0;
const failures: string[] = [];
async function worker(): Promise<void> {
  while (next < todo.length) {
    const { task, seed: s } = todo[next++];
    const ckpt = join(out, '.build', `train-${task}`);
    const args = [
      'train', '--task', task, '--library', out, '--name', task, '--rank', String(rank), '--alpha', String(2 * rank), '--targets', 'q,v',
      '--steps', o.moduleSteps, '--seed', String(s), '--dtype', 'f16', '--checkpoint-dir', ckpt, '--json',
    ];
    if (existsSync(ckpt)) args.push('--resume');
    const r = await lorahub(args, task, '1');
    record({ step: 'train', task, args, code: r.code, seconds: r.seconds, result: r.last });
    if (r.code !== 0) failures.push(task);
  }
}
await Promise.all(Array.from({ length: Math.max(1, Number(o.parallel)) }, () => worker()));

// 3. Verify and summarise.
lib.refresh();
const verify = await lorahub(['modules', 'verify', '--library', out, '--json'], 'verify', '1');
const size = shippedBytes(out) - (existsSync(log) ? statSync(log).size : 0);
record({ step: 'done', seconds: (performance.now() - t0) / 1000, failures, verify_code: verify.code, bytes: size });
process.stderr.write(`built ${out}: ${lib.listModules().length} modules, ${(size / 2 ** 20).toFixed(1)} MB, ${((performance.now() - t0) / 60000).toFixed(1)} min; verify ${verify.code === 0 ? 'ok' : 'FAILED'}${failures.length ? `; failed: ${failures.join(', ')}` : ''}\n`);
if (failures.length > 0 || verify.code !== 0) process.exitCode = 1;
