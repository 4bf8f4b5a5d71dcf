/**
 * Argument helpers shared by the CLI verbs: models, adapters (folders or library names), input
 * length limits and numbers (data files are read by tasks/loaders.ts, the one reader). Library
 * code throws LorahubError; nothing here prints.
 */
import type { Engine, EngineModel } from '../engine/types.ts';
import { lengthLimit, type LengthLimit } from '../eval/score.ts';
import { LorahubError } from '../errors.ts';
import { DEFAULT_LIBRARY_DIR, openLibraryIfExists, type Library } from '../library/index.ts';
import type { LoraModule } from '../lora/module.ts';
import { LazyTokenizer } from '../tokenizers/index.ts';

/** Opens the library if its folder exists (commands that only optionally use it). */
export const maybeLibrary = openLibraryIfExists;

/** `--model DIR`, or the library's default base model. */
export function resolveModelDir(model: string | undefined, lib: Library | undefined): string {
  if (model) return model;
  const base = lib?.defaultBaseDir();
  if (base) return base;
  throw new LorahubError('BAD_ARGUMENT', `no --model given and no default base model in ${lib?.dir ?? DEFAULT_LIBRARY_DIR}`);
}

export interface LoadedModel {
  dir: string;
  model: EngineModel;
  /** Loaded on first use: token-id input needs no tokenizer files. */
  tokenizer: LazyTokenizer;
}

/** A model folder on the engine, and its tokenizer (read only when a text is encoded or ids decoded). The caller disposes `model`. */
export async function loadModel(engine: Engine, dir: string): Promise<LoadedModel> {
  return { dir, model: await engine.load(dir), tokenizer: new LazyTokenizer(dir) };
}

/**
 * The longest input or target a run accepts: `--max-length N`, else the model folder's (its
 * tokenizer config's model_max_length, else lorahub's default for T5), which errors say how to raise.
 */
export function maxLengthArg(flag: string | undefined, modelDir: string): LengthLimit {
  if (flag !== undefined) return { tokens: positiveInt('--max-length', flag, 0), from: '--max-length' };
  const limit = lengthLimit(modelDir);
  return { ...limit, from: `${limit.from}; --max-length N raises it` };
}

/** One adapter: a folder, or a library module name; checked against the shapes of the model in `modelDir`. */
export async function loadAdapterArg(arg: string, lib: Library | undefined, modelDir: string): Promise<LoraModule> {
  const { loadBaseModel, resolveModules } = await import('../library/index.ts');
  const base = await loadBaseModel(modelDir);
  const [module] = await resolveModules([arg], { library: lib, base });
  return module;
}

/** Parses a positive integer option. */
export function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new LorahubError('BAD_ARGUMENT', `${name} must be a positive integer, got "${v}"`);
  return n;
}

/** Parses a comma-separated list option (items trimmed, empty items dropped); an empty list is an error. */
export function parseList(flag: string, v: string): string[] {
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new LorahubError('BAD_ARGUMENT', `${flag} is empty`);
  return items;
}

/**
 * How long `train` and `train-base` wait for another writer's library lock before registering
 * what they trained (interactive `modules` commands fail fast instead): a registration holds the
 * lock for about a second, so parallel trainings sharing a library (build-default --parallel)
 * queue up rather than fail at the end of a long run.
 */
export const REGISTER_LOCK_WAIT_MS = 60_000;

/** Writes one line to stdout. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A number option (finite, > 0 unless `allowZero`). */
export function numberOption(name: string, v: string, allowZero = false): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new LorahubError('BAD_ARGUMENT', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${v}"`);
  }
  return n;
}

/** A non-negative integer option. */
export function countOption(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new LorahubError('BAD_ARGUMENT', `${name} must be a non-negative integer, got "${v}"`);
  return n;
}

/** A seed: any integer (negative too). */
export function seedOption(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new LorahubError('BAD_ARGUMENT', `--seed must be an integer, got "${v}"`);
  return n;
}
