/**
 * Writes a random benchmark world: an HF base checkpoint, N PEFT modules and a 5-example task —
 * files the Python reference can run as they are (scripts/lib/world.ts says what each holds).
 *   npx tsx scripts/make-random-world.ts --size small --modules 20 --rank 16 --seed 0 --out /tmp/world
 *   npx tsx scripts/make-random-world.ts --arch qwen2 --size 0.5b --out /tmp/qwen-world
 *
 * Sizes (parameters, F32 checkpoint):
 *   t5     tiny | small (FLAN-T5-small shape) | base | large (718 M, 2.9 GB)
 *   llama  tiny (fixture-sized) | small (28 M, 0.1 GB) | 1b (Llama-3.2-1B shape: 1.24 B, 4.9 GB)
 *   qwen2  tiny | small (26 M, 0.1 GB) | 0.5b (Qwen2.5-0.5B shape: 494 M, 2.0 GB)
 *   gpt2   tiny | small (GPT-2 small shape: 124 M, 0.5 GB)
 */
import { Command } from 'commander';
import { WORLD_ARCHS, worldSizes, writeWorld, type WorldArch } from './lib/world.ts';

const o = new Command()
  .option('--arch <arch>', WORLD_ARCHS.join(' | '), 't5')
  .option('--size <size>', 'per --arch: t5 tiny | small | base | large; llama tiny | small | 1b; qwen2 tiny | small | 0.5b; gpt2 tiny | small', 'small')
  .option('--modules <n>', 'number of modules', '20')
  .option('--rank <r>', 'LoRA rank', '16')
  .option('--seed <n>', 'seed', '0')
  .option('--engine <name>', 'engine running a decoder-only world\'s teacher (ort | tfjs; default: as lorahub picks)')
  .requiredOption('--out <dir>', 'output folder')
  .parse()
  .opts<{ arch: string; size: string; modules: string; rank: string; seed: string; engine?: string; out: string }>();
if (!(WORLD_ARCHS as readonly string[]).includes(o.arch)) {
  console.error(`make-random-world: unknown --arch "${o.arch}" (${WORLD_ARCHS.join(', ')})`);
  process.exit(2);
}
const arch = o.arch as WorldArch;
if (!worldSizes(arch).includes(o.size)) {
  console.error(`make-random-world: unknown --size "${o.size}" (${worldSizes(arch).join(', ')})`);
  process.exit(2);
}
const w = await writeWorld({ arch, size: o.size, modules: Number(o.modules), rank: Number(o.rank), seed: Number(o.seed), out: o.out, engine: o.engine });
const task = arch === 't5' ? 'task.json' : 'task.jsonl';
console.log(`wrote ${o.out}: base/, ${w.modules.length} modules (rank ${o.rank}), ${task} (teacher weights in world.json)`);
