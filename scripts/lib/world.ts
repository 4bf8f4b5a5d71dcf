/**
 * A random "world" for benchmarks and side-by-side runs with the Python reference: an HF base
 * checkpoint (FLAN-T5-small/base/large shapes, byte vocabulary), N PEFT LoRA modules (targets q, v,
 * like the real lorahub modules) and a 5-example BBH-style task whose targets a teacher
 * composition produced (greedy over printable ASCII), so the optimum is not at w = 0.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { writeAdapter } from '../../src/io/peft.ts';
import { moduleDeltas, disposeDeltas } from '../../src/models/t5/deltas.ts';
import { compose } from '../../src/lora/compose.ts';
import type { LoraModule, LoraTarget } from '../../src/lora/module.ts';
import { peftConfigFor } from '../../src/train/lora.ts';
import { loadT5Config } from '../../src/models/t5/config.ts';
import { T5Model } from '../../src/models/t5/model.ts';
import { Rng } from '../../src/rng.ts';
import { scaledNormals, writeRandomT5, type RandomT5Size } from '../../src/models/t5/random.ts';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';

export interface WorldOptions {
  size: RandomT5Size;
  modules: number;
  rank: number;
  seed: number;
  out: string;
}

/** BBH-style inputs (boolean_expressions-like lengths). */
const INPUTS = [
  'not ( True ) and ( True ) is',
  'True and not not ( not False ) is',
  'not True or ( False and True ) is',
  'False or ( not True ) or True is',
  '( True and False ) or not True is',
];

/** The truth value of each input (the large world's targets). */
const INPUT_TRUTH = ['False', 'True', 'False', 'True', 'False'];

export function randomModule(name: string, cfg: { dModel: number; inner: number; layers: number; decLayers: number }, rank: number, rng: Rng, baseName: string): LoraModule {
  const targets = new Map<string, LoraTarget>();
  const paths: string[] = [];
  for (let i = 0; i < cfg.layers; i++) for (const p of ['q', 'v']) paths.push(`encoder.block.${i}.layer.0.SelfAttention.${p}`);
  for (let i = 0; i < cfg.decLayers; i++) {
    for (const p of ['q', 'v']) paths.push(`decoder.block.${i}.layer.0.SelfAttention.${p}`);
    for (const p of ['q', 'v']) paths.push(`decoder.block.${i}.layer.1.EncDecAttention.${p}`);
  }
  const alpha = 2 * rank; // as the real lorahub modules: r=16, alpha=32
  for (const path of paths.sort()) {
    targets.set(path, {
      path,
      r: rank,
      dIn: cfg.dModel,
      dOut: cfg.inner,
      // A at PEFT's init scale (rows of norm ~1); B as after training, non-zero, with
      // std 0.1/(s·√r) so that s·BA has entries of std ~0.1/√d — about a tenth of W's.
      a: scaledNormals(rng, rank * cfg.dModel, cfg.dModel ** -0.5),
      b: scaledNormals(rng, cfg.inner * rank, 0.1 / ((alpha / rank) * Math.sqrt(rank))),
      scaling: alpha / rank,
    });
  }
  const config = peftConfigFor({ rank, alpha, targets: ['q', 'v'] }, baseName);
  return { name, config, targets };
}

/**
 * Greedy targets of a model + module, restricted to printable ASCII bytes (33..126). On tfjs
 * directly, not through the engine seam: the restriction needs the logits, which the seam does
 * not expose (it returns losses and unrestricted greedy ids).
 */
function teacherTargets(model: T5Model, module: LoraModule, inputs: string[], lengths: number[]): string[] {
  const tok = new ByteTokenizer();
  const deltas = moduleDeltas(module);
  const out: string[] = [];
  try {
    inputs.forEach((input, i) => {
      const ids = tok.encode(input);
      const dec = [model.config.decoderStartTokenId];
      for (let t = 0; t < lengths[i]; t++) {
        const logits = tf.tidy(() => model.forward({ inputIds: [ids] }, [dec], deltas).logits);
        const row = logits.arraySync()[dec.length - 1];
        logits.dispose();
        let best = 36; // '!' + 3
        for (let id = 33 + 3; id <= 126 + 3; id++) if (row[id] > row[best]) best = id;
        dec.push(best);
      }
      out.push(tok.decode(dec.slice(1)));
    });
  } finally {
    disposeDeltas(deltas);
  }
  return out;
}

export interface World {
  base: string;
  modules: string[];
  task: string;
  teacher: number[];
}

/** Writes base/, modules/mNN/, task.json and world.json under `o.out`. */
export async function writeWorld(o: WorldOptions): Promise<World> {
  const base = join(o.out, 'base');
  writeRandomT5(o.size, o.seed, base);
  const c = loadT5Config(base);
  const rng = Rng.fromSeed(o.seed + 1);
  const dims = { dModel: c.dModel, inner: c.numHeads * c.dKv, layers: c.numLayers, decLayers: c.numDecoderLayers };
  const modules = Array.from({ length: o.modules }, (_, i) => randomModule(`m${String(i).padStart(2, '0')}`, dims, o.rank, rng, '../base'));
  // The teacher: a sparse composition of a few modules (a task close to some upstream skills).
  const teacher = modules.map((_, i) => (i % 7 === 0 ? 0.9 : i % 7 === 3 ? -0.6 : 0));
  let targets: string[];
  if (o.size === 'large') {
    // tfjs (wasm) cannot hold this model, and the teacher needs its logits; the large world
    // measures speed and memory, so its targets are the expressions' truth values instead.
    targets = INPUT_TRUTH;
  } else {
    await initBackend();
    const model = T5Model.load(base);
    targets = teacherTargets(model, compose(modules, teacher), INPUTS, [3, 5, 2, 6, 4]);
    model.dispose();
  }
  const dirs: string[] = [];
  mkdirSync(join(o.out, 'modules'), { recursive: true });
  for (const m of modules) {
    const dir = join(o.out, 'modules', m.name);
    await writeAdapter(dir, m);
    dirs.push(dir);
  }
  const task = join(o.out, 'task.json');
  writeFileAtomic(task, `${JSON.stringify({ examples: INPUTS.map((input, i) => ({ input, target: targets[i] })) }, null, 2)}\n`);
  writeFileAtomic(join(o.out, 'world.json'), `${JSON.stringify({ ...o, teacher_weights: o.size === 'large' ? null : teacher, modules: modules.map((m) => `modules/${m.name}`) }, null, 2)}\n`);
  return { base, modules: dirs, task, teacher };
}
