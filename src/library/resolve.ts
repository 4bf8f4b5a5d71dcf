/**
 * What every `--modules` flag goes through: a list of library names or adapter folders → modules,
 * checked against the base they will run on; and seeded sampling of N compatible modules (the
 * reference picks 20 at random from its hub: sail-sg/lorahub example.py, `random.sample`).
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { Rng } from '../rng.ts';
import { LorahubError, opt } from '../errors.ts';
import { readAdapter } from '../io/peft.ts';
import type { LoraModule } from '../lora/module.ts';
import { compatibilityProblems, type BaseModel } from './fingerprint.ts';
import type { LibraryReader } from './reader.ts';
import type { ModuleEntry } from './manifest.ts';

export interface ResolveOptions {
  /** Library to look names up in; without one, every item must be an adapter folder. */
  library?: LibraryReader;
  /** Base the modules will run on: each module must fit it. */
  base?: BaseModel;
  /** Load modules that do not fit `base` anyway (their problems are returned). */
  allowIncompatible?: boolean;
  /** Check library modules' file hashes before loading (default true; they are small). */
  verify?: boolean;
}

/** A path-looking item is always a folder; a bare word is a library name first, then a folder. */
function looksLikePath(s: string): boolean {
  return isAbsolute(s) || s.startsWith('.') || s.includes('/') || s.includes('\\');
}

function isAdapterDir(s: string): boolean {
  return statSync(s, { throwIfNoEntry: false })?.isDirectory() === true && existsSync(`${s}/adapter_config.json`);
}

/**
 * Loads `namesOrDirs` in the given order. Names must be unique. With `base`, a module that does
 * not fit it (declared fingerprint differs, or a target's shape) is refused, naming the module
 * and the first problem, unless `allowIncompatible`; `base_model_name_or_path` is not compared
 * then: the weights are the base's identity, the string only a hint (the same base is "t5-small"
 * in one adapter and "/home/me/t5-small" in another). Without a base the hint is all there is, so
 * modules that claim different bases are refused.
 */
export async function resolveModules(namesOrDirs: string[], opts: ResolveOptions = {}): Promise<LoraModule[]> {
  if (namesOrDirs.length === 0) throw new LorahubError('INTERNAL', 'resolveModules: no modules given');
  const modules: LoraModule[] = [];
  const seen = new Set<string>();
  for (const item of namesOrDirs) {
    const lib = opts.library;
    let module: LoraModule;
    let entry: ModuleEntry | undefined;
    if (!looksLikePath(item) && lib?.hasModule(item)) {
      entry = lib.getModule(item);
      module = await lib.loadModule(item, { verify: opts.verify ?? true });
    } else if (isAdapterDir(item)) {
      module = await readAdapter(item);
    } else {
      const where = lib ? `not in library ${lib.dir} and not` : 'not';
      throw new LorahubError('NOT_FOUND', `module "${item}": ${where} an adapter folder (a folder with adapter_config.json)`);
    }
    if (seen.has(module.name)) {
      throw new LorahubError('BAD_ARGUMENT', `module "${module.name}" is given twice (names must be unique: rename a folder or use the library)`);
    }
    seen.add(module.name);
    if (opts.base && !opts.allowIncompatible) {
      // A library module recorded as fitting this exact base needs no re-check.
      if (entry?.base.fingerprint !== opts.base.fingerprint) {
        const problems = compatibilityProblems(module, opts.base);
        if (entry?.base.fingerprint && entry.base.fingerprint !== opts.base.fingerprint && problems.length === 0) {
          problems.push(`library records it for base ${entry.base.fingerprint}, not ${opts.base.fingerprint}`);
        }
        if (problems.length > 0) {
          throw new LorahubError(
            'INCOMPATIBLE',
            `module "${module.name}" does not fit base ${opts.base.dir}: ${problems[0]}` +
              (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''),
          );
        }
      }
    }
    modules.push(module);
  }
  if (!opts.base && !opts.allowIncompatible) {
    const claims = modules.filter((m) => m.config.base_model_name_or_path !== null);
    const other = claims.find((m) => m.config.base_model_name_or_path !== claims[0].config.base_model_name_or_path);
    if (other) {
      throw new LorahubError(
        'INCOMPATIBLE',
        `module "${other.name}" was made for base "${other.config.base_model_name_or_path}", module "${claims[0].name}" for ` +
          `"${claims[0].config.base_model_name_or_path}"; name the base model (${opt('model')} DIR) to check them against its weights instead`,
      );
    }
  }
  return modules;
}

/**
 * The modules `compose` samples from for a base: those recorded as fitting `baseFingerprint`,
 * less those added with --force despite a composition conflict (library.ts addModule), in name
 * order. By construction any two of them compose without harmonisation.
 */
export function samplePool(lib: LibraryReader, baseFingerprint: string): ModuleEntry[] {
  return lib.listModules().filter((e) => e.base.fingerprint === baseFingerprint && !e.notSampled);
}

/**
 * `n` distinct library modules recorded as compatible with `baseFingerprint`, drawn without
 * replacement by a partial Fisher–Yates shuffle over the name-sorted candidates with
 * pure-rand's xoroshiro128+ seeding of `seed` (Rng.fromPureRandSeed): the same library, n and seed always give the same list.
 */
export function sampleCompatible(lib: LibraryReader, n: number, seed: number, baseFingerprint: string): ModuleEntry[] {
  if (!Number.isInteger(n) || n <= 0) throw new LorahubError('INTERNAL', `sampleCompatible: number of modules must be a positive integer, got ${n}`);
  if (!Number.isInteger(seed)) throw new LorahubError('INTERNAL', `sampleCompatible: seed must be an integer, got ${seed}`);
  const pool = samplePool(lib, baseFingerprint);
  if (pool.length < n) {
    throw new LorahubError(
      'BAD_ARGUMENT',
      `library ${lib.dir} has ${pool.length} module(s) compatible with base ${baseFingerprint}, ${n} requested`,
    );
  }
  const rng = Rng.fromPureRandSeed(seed);
  for (let i = 0; i < n; i++) {
    const j = rng.int(i, pool.length - 1);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, n);
}
