/**
 * Argument helpers shared by the CLI verbs: models, adapters (folders or library names),
 * and jsonl data files. Library code throws LorahubError; nothing here prints.
 */
import { readFileSync } from 'node:fs';
import type { Engine, EngineModel } from '../engine/types.ts';
import { LorahubError } from '../errors.ts';
import { DEFAULT_LIBRARY_DIR, openLibraryIfExists, type Library } from '../library/index.ts';
import type { LoraModule } from '../lora/module.ts';
import { loadTokenizer } from '../tokenizers/index.ts';
import type { Tokenizer } from '../tokenizers/types.ts';

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
  tokenizer: Tokenizer;
}

/** A model folder on the engine, and its tokenizer. The caller disposes `model`. */
export async function loadModel(engine: Engine, dir: string): Promise<LoadedModel> {
  const model = await engine.load(dir);
  try {
    return { dir, model, tokenizer: loadTokenizer(dir) };
  } catch (err) {
    await model.dispose();
    throw err;
  }
}

/** One adapter: a folder, or a library module name; checked against the shapes of the model in `modelDir`. */
export async function loadAdapterArg(arg: string, lib: Library | undefined, modelDir: string): Promise<LoraModule> {
  const { loadBaseModel, resolveModules } = await import('../library/index.ts');
  const base = await loadBaseModel(modelDir);
  const [module] = await resolveModules([arg], { library: lib, base });
  return module;
}

/** A scoring/generation example: text, or pre-tokenised ids. */
export interface DataLine {
  input?: string;
  target?: string;
  inputIds?: number[];
  labels?: number[];
}

function intArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x));
}

/** Reads a jsonl file of `{"input","target"}` or `{"input_ids","labels"}` lines. */
export function readDataJsonl(file: string, needTarget: boolean): DataLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new LorahubError('NOT_FOUND', `${file}: cannot read data file`, { cause });
  }
  const out: DataLine[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (cause) {
      throw new LorahubError('BAD_FILE', `${file}:${i + 1}: invalid JSON (${(cause as Error).message})`, { cause });
    }
    if (typeof v !== 'object' || v === null) throw new LorahubError('BAD_FILE', `${file}:${i + 1}: expected a JSON object`);
    const o = v as Record<string, unknown>;
    if (intArray(o.input_ids)) {
      if (needTarget && !intArray(o.labels)) throw new LorahubError('BAD_FILE', `${file}:${i + 1}: "input_ids" without integer "labels"`);
      out.push({ inputIds: o.input_ids, labels: intArray(o.labels) ? o.labels : undefined });
    } else if (typeof o.input === 'string') {
      if (needTarget && typeof o.target !== 'string') throw new LorahubError('BAD_FILE', `${file}:${i + 1}: "input" without a string "target"`);
      out.push({ input: o.input, target: typeof o.target === 'string' ? o.target : undefined });
    } else {
      throw new LorahubError('BAD_FILE', `${file}:${i + 1}: expected {"input", "target"} or {"input_ids", "labels"}`);
    }
  });
  if (out.length === 0) throw new LorahubError('BAD_FILE', `${file}: no examples`);
  return out;
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
