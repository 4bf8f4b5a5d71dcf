/**
 * Writes a seeded random T5 (v1.1, gated-gelu, byte vocabulary) as a normal HF checkpoint folder.
 *   npx tsx scripts/make-random-t5.ts --size small --seed 0 --out /tmp/t5-small
 */
import { Command } from 'commander';
import { writeRandomT5, RANDOM_T5_SIZES, type RandomT5Size } from '../src/models/t5/random.ts';

const program = new Command()
  .requiredOption('--size <size>', `one of ${Object.keys(RANDOM_T5_SIZES).join(', ')}`)
  .option('--seed <n>', 'seed', '0')
  .requiredOption('--out <dir>', 'output folder')
  .parse();
const o = program.opts<{ size: string; seed: string; out: string }>();
if (!(o.size in RANDOM_T5_SIZES)) {
  console.error(`make-random-t5: unknown --size "${o.size}" (${Object.keys(RANDOM_T5_SIZES).join(', ')})`);
  process.exit(2);
}
const params = writeRandomT5(o.size as RandomT5Size, Number(o.seed), o.out);
console.log(`wrote ${o.out}: ${(params / 1e6).toFixed(1)}M parameters (seed ${o.seed})`);
