/**
 * Argument helpers shared by the CLI verbs: models, adapters (folders or library names), input
 * length limits, and the parsers of flag values (numbers, choices, lists). Data files are read by
 * tasks/loaders.ts, the one reader. Library code throws LorahubError; nothing here prints.
 */
import type { Engine, EngineModel } from '../../engine/types.ts';
import { lengthLimit, type LengthLimit } from '../../eval/score.ts';
import { LorahubError } from '../../errors.ts';
import { DEFAULT_LIBRARY_DIR, openLibraryIfExists, type Library } from '../../library/index.ts';
import { RankConflictError, type Harmonize } from '../../lora/compose.ts';
import type { LoraModule } from '../../lora/module.ts';
import { LazyTokenizer } from '../../tokenizers/index.ts';

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
 * The longest input or target a run accepts: `--max-length N` (parsed by `intArg`), else the model
 * folder's (its tokenizer config's model_max_length, else lorahub's default for T5), which errors
 * say how to raise.
 */
export function lengthLimitFor(tokens: number | undefined, modelDir: string): LengthLimit {
  if (tokens !== undefined) return { tokens, from: '--max-length' };
  const limit = lengthLimit(modelDir);
  return { ...limit, from: `${limit.from}; --max-length N raises it` };
}

/** One adapter: a folder, or a library module name; checked against the shapes of the model in `modelDir`. */
export async function loadAdapterArg(arg: string, lib: Library | undefined, modelDir: string): Promise<LoraModule> {
  const { loadBaseModel, resolveModules } = await import('../../library/index.ts');
  const base = await loadBaseModel(modelDir);
  const [module] = await resolveModules([arg], { library: lib, base });
  return module;
}

/** Writes one line to stdout. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

// ---- flag values ---------------------------------------------------------------------------
//
// Each parser is a commander argParser, `(value) => parsed`, so that an option states its default
// once and the action receives the parsed value:
//
//   .option('--steps <n>', 'optimisation steps', intArg('--steps', 'positive'), 300)
//
// commander shows "(default: 300)" and passes a default through unparsed. A LorahubError thrown
// by a parser leaves parseAsync as it is (commander rewraps only its own InvalidArgumentError), so
// main.ts prints it as the one-line `lorahub: error: …` of a usage error, exit 2. A value that
// does not come from an option (a global flag read later) is parsed the same way: `intArg(…)(v)`.

/** Which numbers a numeric flag takes. */
export type Sign = 'positive' | 'non-negative' | 'any';

function signOk(n: number, sign: Sign): boolean {
  return sign === 'any' || n > 0 || (sign === 'non-negative' && n === 0);
}

function badValue(flag: string, what: string, v: string): LorahubError {
  return new LorahubError('BAD_ARGUMENT', `${flag} must be ${what}, got "${v}"`);
}

/** A safe integer of the given sign, written as JS numbers are ("300", "1e3"; not ""). */
export function intArg(flag: string, sign: Sign): (v: string) => number {
  const what = sign === 'any' ? 'an integer' : `a ${sign} integer`;
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || !signOk(n, sign)) throw badValue(flag, what, v);
    return n;
  };
}

/** A finite number of the given sign. */
export function numberArg(flag: string, sign: Sign): (v: string) => number {
  const what = sign === 'any' ? 'a number' : `a ${sign} number`;
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || !signOk(n, sign)) throw badValue(flag, what, v);
    return n;
  };
}

/** "a", "a or b", "a, b or c". */
function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** One of `allowed` (returned as spelt there; `ignoreCase` matches "F16" to "f16"). */
export function choiceArg<const T extends string>(flag: string, allowed: readonly T[], opts: { ignoreCase?: boolean } = {}): (v: string) => T {
  const norm = (s: string): string => (opts.ignoreCase ? s.toLowerCase() : s);
  return (v) => {
    const hit = allowed.find((a) => norm(a) === norm(v));
    if (hit === undefined) throw badValue(flag, orList(allowed), v);
    return hit;
  };
}

/** A comma-separated list (items trimmed, empty items dropped; none left is an error), each item parsed by `item`. */
export function listArg(flag: string): (v: string) => string[];
export function listArg<T>(flag: string, item: (s: string) => T): (v: string) => T[];
export function listArg<T>(flag: string, item?: (s: string) => T): (v: string) => Array<T | string> {
  return (v) => {
    const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (items.length === 0) throw new LorahubError('BAD_ARGUMENT', `${flag} is empty`);
    return item ? items.map(item) : items;
  };
}

/** `--weights w1,w2,…`: one finite number per module (of any sign: LoRAHub weights may be negative). */
export const weightsArg = listArg('--weights', (s) => {
  const w = Number(s);
  if (!Number.isFinite(w)) throw new LorahubError('BAD_ARGUMENT', `--weights: "${s}" is not a finite number`);
  return w;
});

/** `--harmonize`: how modules of different ranks compose (src/lora/compose.ts). */
export const harmonizeArg: (v: string) => Harmonize = choiceArg('--harmonize', ['truncate', 'pad', 'none']);

/** `--harmonize` read in an action (not given: none). */
export function parseHarmonize(v: string | undefined): Harmonize {
  return v === undefined ? 'none' : harmonizeArg(v);
}

/**
 * Modules of different ranks or scalings: the error names the flag that composes them (the
 * library's error only says that a harmonisation would). Anything else passes unchanged.
 */
export function withHarmonizeHint(err: unknown): unknown {
  if (!(err instanceof RankConflictError)) return err;
  return new LorahubError(err.code, `${err.message}; pass --harmonize truncate|pad to compose modules of different ranks`, { cause: err });
}
