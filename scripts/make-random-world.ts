/**
 * Writes a random benchmark world: an HF base checkpoint, N PEFT modules (q, v) and a
 * 5-example BBH-style task file — files the Python reference can run as they are.
 *   npx tsx scripts/make-random-world.ts --size small --modules 20 --rank 16 --seed 0 --out /tmp/world
 */
import { Command } from 'commander';
import type { RandomT5Size } from '../src/models/t5/random.ts';
import { writeWorld } from './lib/world.ts';

const o = new Command()
  .option('--size <size>', 'tiny | small | base | large', 'small')
  .option('--modules <n>', 'number of modules', '20')
  .option('--rank <r>', 'LoRA rank', '16')
  .option('--seed <n>', 'seed', '0')
  .requiredOption('--out <dir>', 'output folder')
  .parse()
  .opts<{ size: string; modules: string; rank: string; seed: string; out: string }>();
if (!['tiny', 'small', 'base', 'large'].includes(o.size)) {
  console.error(`make-random-world: unknown --size "${o.size}" (tiny, small, base, large)`);
  process.exit(2);
}
const w = await writeWorld({ size: o.size as RandomT5Size, modules: Number(o.modules), rank: Number(o.rank), seed: Number(o.seed), out: o.out });
console.log(`wrote ${o.out}: base/, ${w.modules.length} modules (rank ${o.rank}), task.json (teacher weights in world.json)`);
