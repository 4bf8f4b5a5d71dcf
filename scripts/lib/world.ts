/**
 * A random "world" for benchmarks and side-by-side runs with the Python reference: an HF base
 * checkpoint, N PEFT LoRA modules and a 5-example task whose targets a teacher composition
 * produced, so the optimum is not at w = 0.
 *   - t5 (the default): FLAN-T5-small/base/large shapes, byte vocabulary, modules on q, v (like
 *     the real lorahub modules), a BBH-style text task (greedy over printable ASCII), task.json.
 *   - llama, qwen2, gpt2: decoder-only checkpoints (models/causal/random.ts: tiny, small, and
 *     the shapes of Llama-3.2-1B, Qwen2.5-0.5B, GPT-2 small), modules on q_proj, v_proj (Llama,
 *     Qwen2) or the fused c_attn with fan_in_fan_out (GPT-2, as PEFT requires for Conv1D), and a
 *     tokenizer-free task: task.jsonl of {"input_ids", "labels"} lines (prompt, then the teacher's
 *     greedy continuation ending in eos), read by lorahub as given.
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
import { RANDOM_T5_SIZES, scaledNormals, writeRandomT5, type RandomT5Size } from '../../src/models/t5/random.ts';
import { ByteTokenizer } from '../../src/tokenizers/bytes.ts';
import { loadModel } from '../../src/engine/index.ts';
import { padBatch } from '../../src/models/shared/batch.ts';
import { loadArch, type CausalArch } from '../../src/models/index.ts';
import { RANDOM_CAUSAL_ARCHS, randomCausalSizes, writeRandomCausal, type RandomCausalArch } from '../../src/models/causal/random.ts';

export type WorldArch = 't5' | RandomCausalArch;
export const WORLD_ARCHS: readonly WorldArch[] = ['t5', ...RANDOM_CAUSAL_ARCHS];

/** A T5 world's options. */
export interface WorldOptions {
  size: RandomT5Size;
  modules: number;
  rank: number;
  seed: number;
  out: string;
}

/** A world of any architecture; `size` is one of `worldSizes(arch)`. */
export interface AnyWorldOptions {
  arch?: WorldArch;
  size: string;
  modules: number;
  rank: number;
  seed: number;
  out: string;
  /** Engine that runs a decoder-only world's teacher (default: as lorahub picks). */
  engine?: string;
}

/** The sizes `arch` accepts. */
export function worldSizes(arch: WorldArch): string[] {
  return arch === 't5' ? Object.keys(RANDOM_T5_SIZES) : randomCausalSizes(arch);
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

/**
 * Writes base/, modules/mNN/, the task (task.json, or task.jsonl for decoder-only worlds) and
 * world.json under `o.out`. A T5 world is the one this function always wrote, byte for byte.
 */
/** The world's modules as PEFT adapter folders under `<out>/modules/`, in order. */
async function writeModules(out: string, modules: readonly LoraModule[]): Promise<string[]> {
  mkdirSync(join(out, 'modules'), { recursive: true });
  const dirs: string[] = [];
  for (const m of modules) {
    const dir = join(out, 'modules', m.name);
    await writeAdapter(dir, m);
    dirs.push(dir);
  }
  return dirs;
}

export async function writeWorld(o: AnyWorldOptions): Promise<World> {
  const { arch = 't5', engine, ...rest } = o;
  if (!worldSizes(arch).includes(o.size)) throw new Error(`unknown size "${o.size}" for ${arch} (${worldSizes(arch).join(', ')})`);
  if (arch === 't5') return writeT5World({ ...rest, size: rest.size as RandomT5Size });
  return writeCausalWorld(arch, { ...rest, engine });
}

async function writeT5World(o: WorldOptions): Promise<World> {
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
  const dirs = await writeModules(o.out, modules);
  const task = join(o.out, 'task.json');
  writeFileAtomic(task, `${JSON.stringify({ examples: INPUTS.map((input, i) => ({ input, target: targets[i] })) }, null, 2)}\n`);
  writeFileAtomic(join(o.out, 'world.json'), `${JSON.stringify({ ...o, teacher_weights: o.size === 'large' ? null : teacher, modules: modules.map((m) => `modules/${m.name}`) }, null, 2)}\n`);
  return { base, modules: dirs, task, teacher };
}

// ---------------------------------------------------------------------------------------------
// decoder-only worlds

/** Prompt lengths (special tokens excluded) and target lengths (eos excluded) of the 5 examples. */
const PROMPT_LENGTHS = [12, 9, 15, 7, 11];
const TARGET_LENGTHS = [3, 5, 2, 6, 4];

/** The PEFT targets of a decoder-only world's modules: q_proj, v_proj (Llama, Qwen2) or GPT-2's fused c_attn. */
function causalTargetPaths(arch: CausalArch): string[] {
  if (arch.family === 'gpt2') return Array.from({ length: arch.config.nLayer }, (_, i) => `transformer.h.${i}.attn.c_attn`);
  return Array.from({ length: arch.config.numLayers }, (_, i) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.v_proj`]).flat();
}

/** A random module on the world's targets, drawn as `randomModule` draws T5's (alpha = 2r). */
export function randomCausalModule(name: string, arch: CausalArch, rank: number, rng: Rng, baseName: string): LoraModule {
  const alpha = 2 * rank;
  const targets = new Map<string, LoraTarget>();
  const paths = causalTargetPaths(arch).sort();
  for (const path of paths) {
    const [dOut, dIn] = arch.linearShape(path) as [number, number];
    targets.set(path, {
      path,
      r: rank,
      dIn,
      dOut,
      a: scaledNormals(rng, rank * dIn, dIn ** -0.5),
      b: scaledNormals(rng, dOut * rank, 0.1 / ((alpha / rank) * Math.sqrt(rank))),
      scaling: alpha / rank,
    });
  }
  const names = arch.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
  // PEFT's config for these layers: a causal LM; Conv1D targets need fan_in_fan_out.
  const config = { ...peftConfigFor({ rank, alpha, targets: names }, baseName), task_type: 'CAUSAL_LM', fan_in_fan_out: arch.fanInFanOut(paths[0]) };
  return { name, config, targets };
}

/**
 * Prompts of content ids (3 up to the vocabulary or 32000, below every special id of the presets),
 * after bos where the model's tokenizer adds one (Llama, Mistral; GPT-2's and Qwen2's do not).
 */
function randomPrompts(arch: CausalArch, rng: Rng): number[][] {
  const top = Math.min(arch.config.vocabSize, 32000) - 1;
  const bos = arch.modelType === 'llama' || arch.modelType === 'mistral' ? arch.config.bosTokenId : null;
  return PROMPT_LENGTHS.map((n) => [...(bos === null ? [] : [bos]), ...Array.from({ length: n }, () => rng.int(3, top))]);
}

async function writeCausalWorld(archName: RandomCausalArch, o: Omit<AnyWorldOptions, 'arch'>): Promise<World> {
  const base = join(o.out, 'base');
  writeRandomCausal(archName, o.size, o.seed, base);
  const arch = loadArch(base) as CausalArch;
  const rng = Rng.fromSeed(o.seed + 1);
  const modules = Array.from({ length: o.modules }, (_, i) => randomCausalModule(`m${String(i).padStart(2, '0')}`, arch, o.rank, rng, '../base'));
  const teacher = modules.map((_, i) => (i % 7 === 0 ? 0.9 : i % 7 === 3 ? -0.6 : 0));
  const prompts = randomPrompts(arch, rng);
  // The teacher's greedy continuation through the engine seam (any size runs on ort), cut to each
  // example's length; a target always ends in eos, as the fixtures' do.
  const model = await loadModel(base, { engine: o.engine });
  let generated: number[][];
  try {
    const padded = padBatch(prompts, [], arch.config.padTokenId);
    generated = await model.generate(padded, { maxNewTokens: Math.max(...TARGET_LENGTHS), adapter: compose(modules, teacher) });
  } finally {
    await model.dispose();
  }
  const eos = arch.config.eosTokenId;
  const labels = generated.map((row, i) => {
    const ids = row.slice(1, 1 + TARGET_LENGTHS[i]);
    const end = ids.indexOf(eos);
    return end >= 0 ? ids.slice(0, end + 1) : [...ids, eos];
  });
  const dirs = await writeModules(o.out, modules);
  const task = join(o.out, 'task.jsonl');
  writeFileAtomic(task, prompts.map((p, i) => `${JSON.stringify({ input_ids: p, labels: labels[i] })}\n`).join(''));
  const recorded = { size: o.size, modules: o.modules, rank: o.rank, seed: o.seed, out: o.out };
  writeFileAtomic(join(o.out, 'world.json'), `${JSON.stringify({ arch: archName, ...recorded, teacher_weights: teacher, modules: modules.map((m) => `modules/${m.name}`) }, null, 2)}\n`);
  return { base, modules: dirs, task, teacher };
}
