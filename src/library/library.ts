/**
 * The module library: a folder with `manifest.json`, one PEFT adapter folder per module and,
 * optionally, the default base model (`base/`, recorded in the manifest).
 *
 * Mutations follow one protocol, so a killed process never leaves a half-registered module:
 *   1. take the library lock (lock.ts), re-read the manifest under it (a broken manifest aborts),
 *      put back what killed runs left (recovery.ts);
 *   2. build the new module folder under a `.tmp-*` name inside the library (same file system),
 *      fsync every file, hash what is on disk, check it loads;
 *   3. leave a `.tmp-commit-<name>-…` marker, rename the folder into place (moving a replaced
 *      version aside first), replace the manifest atomically (the commit point), drop the marker.
 * While the marker exists, `<name>` may hold a folder the manifest does not describe (the new one
 * before the commit, a removed one after it); recovery deletes such a folder and puts a moved-aside
 * version back, so a killed write leaves the library as it was, or as the write left it.
 * Readers (list, info, verify, resolve) never wait for the lock: they read the manifest, which is
 * only ever replaced whole. Opening a library that holds temporary entries runs that recovery
 * first when no live process holds the lock (openLibrary), so what a killed writer left is gone
 * before anything is read.
 */
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LorahubError, opt } from '../errors.ts';
import { fileSystemError, isFileSystemError, makeDir, statIfAny } from '../io/atomic.ts';
import { readAdapter, writeAdapter } from '../io/peft.ts';
import { compositionConflict, RankConflictError, type ModuleLayout } from '../lora/compose.ts';
import type { LoraModule } from '../lora/module.ts';
import { loadArch } from '../models/index.ts';
import { copyFileDurable, fsyncPath, hashFolder, listFiles, tempName } from './files.ts';
import { compatibilityProblems, modelFingerprint, shapeProblems, weightsStat } from './fingerprint.ts';
import { acquireLibraryLock, LOCK_DIR, LOCK_OWNER_FILE, type LibraryLock } from './lock.ts';
import { resolveModules, sampleCompatible, samplePool, type ResolveOptions } from './resolve.ts';
import { verifyLibrary, type VerifyReport } from './verify.ts';
import { exportModule } from './export.ts';
import { abandonedTemps, markChange, recoverFolders } from './recovery.ts';
import { BASE_FOLDER, LibraryReader } from './reader.ts';
import {
  emptyManifest,
  MANIFEST_FILE,
  readManifest,
  writeManifest,
  type DefaultBase,
  type Manifest,
  type MetricValue,
  type ModuleEntry,
} from './manifest.ts';

export const DEFAULT_LIBRARY_DIR = './modules';
/** The library this package ships (its own modules/ folder: base model + upstream modules). */
export const SHIPPED_LIBRARY_DIR = fileURLToPath(new URL('../../modules', import.meta.url));
/** The environment variable that names the library when no --library is given. */
export const LIBRARY_ENV = 'LORAHUB_LIBRARY';
export { BASE_FOLDER };

/** LORAHUB_LIBRARY when set to something (an empty value counts as unset). */
function envLibraryDir(): string | undefined {
  return process.env[LIBRARY_ENV] || undefined;
}

/**
 * Where a command that only READS a library looks when none is named: LORAHUB_LIBRARY, else
 * ./modules when it holds a library, else the shipped default — so `lorahub compose --task …`
 * works from any folder, not only from a clone's root.
 */
export function defaultReadLibraryDir(): string {
  const env = envLibraryDir();
  if (env) return env;
  if (existsSync(join(DEFAULT_LIBRARY_DIR, MANIFEST_FILE))) return DEFAULT_LIBRARY_DIR;
  return existsSync(join(SHIPPED_LIBRARY_DIR, MANIFEST_FILE)) ? SHIPPED_LIBRARY_DIR : DEFAULT_LIBRARY_DIR;
}

function sameFolder(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false; // one of them does not exist: not the same folder
  }
}

/**
 * The library a command that WRITES (train, train-base --set-base, modules add|remove|set-base)
 * uses: `named` (its --library), else LORAHUB_LIBRARY, else ./modules — unless ./modules is the
 * package's own shipped library (a command run from a clone's root), which writers never change
 * by default: the shipped default is what `compose` runs on from anywhere, and tests pin it. Naming
 * it on purpose (scripts/build-default.ts passes `--library modules`) is allowed.
 */
export function writableLibraryDir(named?: string): string {
  const dir = named ?? envLibraryDir();
  if (dir !== undefined) return dir;
  if (sameFolder(DEFAULT_LIBRARY_DIR, SHIPPED_LIBRARY_DIR)) {
    throw new LorahubError(
      'BAD_ARGUMENT',
      `${SHIPPED_LIBRARY_DIR} is the library this package ships, which commands that write leave alone: ` +
        `pass ${opt('library')} DIR (or set ${LIBRARY_ENV}) for the library to change (naming this folder changes it on purpose)`,
    );
  }
  return DEFAULT_LIBRARY_DIR;
}

/** Library names are folder names: portable, no separators, no leading dot (temp entries). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const RESERVED = new Set([BASE_FOLDER, MANIFEST_FILE, LOCK_DIR, LOCK_OWNER_FILE]);

export function validateModuleName(name: string): void {
  if (!NAME_RE.test(name) || RESERVED.has(name)) {
    throw new LorahubError(
      'BAD_ARGUMENT',
      `invalid module name ${JSON.stringify(name)}: use letters, digits, ".", "_", "-", "+" (not starting with "." ; "${BASE_FOLDER}" is reserved); pass ${opt('name')}`,
    );
  }
}

/** Files of a PEFT adapter folder that the library stores. */
const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors', 'README.md'];

export interface AddOptions {
  /** Library name; default: the source folder's name. */
  name?: string;
  task?: string | null;
  /** Replace an existing module, and accept a module that does not fit the base. */
  force?: boolean;
  metrics?: Record<string, MetricValue>;
  /** Base model folder to check against; default: the library's default base. */
  base?: string;
}

export interface AddResult {
  entry: ModuleEntry;
  /** Things the user should know (no base known, problems accepted with --force, files skipped). */
  warnings: string[];
  replaced: boolean;
}

export class Library extends LibraryReader {
  /** How long a mutation waits for another writer's lock (0: fail fast; see lock.ts). */
  private readonly lockWaitMs: number;

  constructor(dir: string, manifest: Manifest, opts: { lockWaitMs?: number } = {}) {
    super(dir, manifest);
    this.lockWaitMs = opts.lockWaitMs ?? 0;
  }

  /** {@link resolveModules} with this library for names. */
  resolveModules(namesOrDirs: string[], opts: Omit<ResolveOptions, 'library'> = {}): Promise<LoraModule[]> {
    return resolveModules(namesOrDirs, { ...opts, library: this });
  }

  /** {@link sampleCompatible}: n modules recorded as fitting `baseFingerprint`, seeded. */
  sampleCompatible(n: number, seed: number, baseFingerprint: string): ModuleEntry[] {
    return sampleCompatible(this, n, seed, baseFingerprint);
  }

  /**
   * Why a module laid out as `module` would break the default `compose` on base `fingerprint`:
   * its first composition conflict (targets, ranks, scalings) with the modules compose samples
   * for that base, or undefined. Any two modules of that pool compose (add refuses the others), so
   * the first one that loads stands for all; `except` (a module being replaced) does not count.
   */
  async samplingConflict(module: ModuleLayout, fingerprint: string, except?: string): Promise<LorahubError | undefined> {
    for (const e of samplePool(this, fingerprint)) {
      if (e.name === except) continue;
      let reference: LoraModule;
      try {
        reference = await this.loadModule(e.name, { verify: false });
      } catch {
        // A module that no longer loads is `verify`'s to report; the next one stands for the pool.
        continue;
      }
      return compositionConflict(reference, module);
    }
    return undefined;
  }

  verifyLibrary(): Promise<VerifyReport> {
    return verifyLibrary(this);
  }

  // ---- mutations -------------------------------------------------------------------------------

  /**
   * Runs a mutation under the lock on a freshly read manifest. A manifest that cannot be parsed
   * aborts here, before anything is written. Stale temporary entries are removed first.
   */
  private async mutate<T>(fn: (lock: LibraryLock) => Promise<T>): Promise<T> {
    makeDir(this.dir);
    const lock = await acquireLibraryLock(this.dir, { waitMs: this.lockWaitMs });
    try {
      this.refresh();
      await recoverFolders(this);
      return await fn(lock);
    } catch (err) {
      // A rename or mkdir in the library folder that the file system refused (read-only, full, …).
      throw isFileSystemError(err) ? fileSystemError(this.dir, 'update the library', err) : err;
    } finally {
      await lock.release();
    }
  }

  /**
   * Puts the library back in a committed state after a killed writer (recovery.ts, under the
   * lock). openLibrary calls it when the folder holds a dead process's temporary entries, so that
   * `list`, `verify` or `compose` after a crash see the state before or after the killed command,
   * never one in between. It only ever changes folders, to match the manifest, never the manifest. Best effort:
   * temporary entries of live processes are their work in progress and stay (so does everything
   * while a live process holds the lock); a library this process cannot write is read as it is.
   */
  async recover(): Promise<void> {
    if (abandonedTemps(this.dir).length === 0) return;
    let lock: LibraryLock;
    try {
      lock = await acquireLibraryLock(this.dir);
    } catch (err) {
      if (err instanceof LorahubError && ['LOCKED', 'BAD_FILE', 'NOT_FOUND'].includes(err.code)) return;
      throw err;
    }
    try {
      this.refresh();
      await recoverFolders(this);
    } catch (err) {
      // The file system refused a repair (a read-only module folder, …): read what is there.
      if (!isFileSystemError(err)) throw err;
    } finally {
      await lock.release();
    }
  }

  private commit(lock: LibraryLock): void {
    lock.assertHeld();
    writeManifest(this.dir, this.manifest);
  }

  async addModule(srcDir: string, opts: AddOptions = {}): Promise<AddResult> {
    const src = resolve(srcDir);
    if (!existsSync(join(src, 'adapter_config.json'))) {
      throw new LorahubError('NOT_FOUND', `${srcDir}: not a PEFT adapter folder (no adapter_config.json)`);
    }
    const name = opts.name ?? basename(src);
    validateModuleName(name);
    return this.mutate(async (lock) => {
      const warnings: string[] = [];
      const dest = this.moduleDir(name);
      const registered = this.hasModule(name);
      const folderExists = existsSync(dest);
      if ((registered || folderExists) && !opts.force) {
        throw new LorahubError(
          'BAD_ARGUMENT',
          registered
            ? `module "${name}" already exists in ${this.dir} (use ${opt('force')} to replace it, or ${opt('name')})`
            : `${dest} exists but is not registered in the manifest (use ${opt('force')} to replace it, or ${opt('name')})`,
        );
      }
      const module = await readAdapter(src, { name });
      const srcFiles = listFiles(src);
      const hasSafetensors = srcFiles.includes('adapter_model.safetensors');
      // With both weight files present, PEFT >= 0.4 loads the safetensors one; so does the library.
      const skipped = srcFiles.filter((f) => !ADAPTER_FILES.includes(f) && f !== 'adapter_model.bin');
      if (skipped.length > 0) warnings.push(`not copied (not part of a PEFT adapter): ${skipped.join(', ')}`);

      const base = await this.loadBase(opts.base);
      const problems = base ? compatibilityProblems(module, base) : [];
      if (problems.length > 0 && !opts.force) {
        throw new LorahubError(
          base && shapeProblems(module, base.arch).length > 0 ? 'SHAPE_MISMATCH' : 'INCOMPATIBLE',
          `module "${name}" (${srcDir}) does not fit base ${base?.dir} (${base?.fingerprint}): ${problems[0]}` +
            (problems.length > 1 ? ` (and ${problems.length - 1} more)` : '') +
            `; use ${opt('force')} to add it anyway`,
        );
      }
      if (problems.length > 0) warnings.push(`added despite: ${problems.join('; ')}`);
      const conflict = base && problems.length === 0 ? await this.samplingConflict(module, base.fingerprint, name) : undefined;
      if (conflict && !opts.force) throw samplingConflictError(name, srcDir, conflict);
      if (conflict) warnings.push(`added despite: ${conflict.message}; compose will not sample it`);
      if (!base) {
        warnings.push(
          `no base model known (no base given, no default base in the manifest): recorded base_model_name_or_path ` +
            `${JSON.stringify(module.config.base_model_name_or_path)} only; compatibility not checked`,
        );
      }

      const tmp = join(this.dir, tempName('add', name));
      let trash: string | undefined;
      let committed = false;
      try {
        if (hasSafetensors) {
          mkdirSync(tmp);
          for (const f of ADAPTER_FILES) if (srcFiles.includes(f)) copyFileDurable(join(src, f), join(tmp, f), join(dest, f));
        } else {
          // Old PEFT (0.3, the real LoRAHub modules) saved only adapter_model.bin: store safetensors.
          await writeAdapter(tmp, module).catch((err: unknown) => {
            // io/atomic.ts names the file in our temporary folder; the user knows the module's.
            const cause = err instanceof LorahubError ? err.cause : err;
            throw isFileSystemError(cause) ? fileSystemError(dest, 'write', cause) : err;
          });
          if (srcFiles.includes('README.md')) copyFileDurable(join(src, 'README.md'), join(tmp, 'README.md'), join(dest, 'README.md'));
        }
        fsyncPath(tmp, true);
        const files = await hashFolder(tmp);
        // What is stored must load (catches a conversion or copy that went wrong).
        await readAdapter(tmp, { name });

        const entry: ModuleEntry = {
          name,
          task: opts.task ?? null,
          addedAt: new Date().toISOString(),
          source: src,
          convertedFrom: hasSafetensors ? null : 'adapter_model.bin',
          peft: {
            r: module.config.r,
            alpha: module.config.lora_alpha,
            targetModules: module.config.target_modules,
            useRslora: module.config.use_rslora,
            targetCount: module.targets.size,
            baseModelNameOrPath: module.config.base_model_name_or_path,
          },
          base: {
            fingerprint: base && problems.length === 0 ? base.fingerprint : null,
            checkedAgainst: base?.fingerprint ?? null,
            problems,
          },
          files,
          metrics: { ...(opts.metrics ?? {}) },
          notSampled: conflict ? conflict.message : null,
        };
        lock.assertHeld();
        const marker = markChange(this.dir, name);
        const previous = this.manifest.modules[name];
        try {
          if (folderExists) {
            const aside = join(this.dir, tempName('old', name));
            renameSync(dest, aside);
            trash = aside;
          }
          renameSync(tmp, dest);
          fsyncPath(this.dir, true);
          this.manifest.modules[name] = entry;
          this.commit(lock);
          committed = true;
        } catch (err) {
          // Not committed: put the library back as it was.
          if (previous) this.manifest.modules[name] = previous;
          else delete this.manifest.modules[name];
          try {
            if (existsSync(dest) && !existsSync(tmp)) rmSync(dest, { recursive: true, force: true });
            if (trash) renameSync(trash, dest);
            trash = undefined;
            rmSync(marker, { force: true });
          } catch {
            // The marker and the moved-aside version stay: the next command that opens the library
            // finishes this (recovery.ts). The error to report is the one that stopped the add.
          }
          throw err;
        }
        rmSync(marker, { force: true });
        return { entry, warnings, replaced: folderExists || registered };
      } finally {
        rmSync(tmp, { recursive: true, force: true });
        // Only a committed replacement's old version goes; an uncommitted one is what recovery restores.
        if (trash && committed) rmSync(trash, { recursive: true, force: true });
      }
    });
  }

  /**
   * Unregisters first (the commit point), then deletes the folder, under a commit marker: a crash
   * after the commit leaves a folder the manifest no longer names, which recovery deletes.
   */
  async removeModule(name: string): Promise<ModuleEntry> {
    return this.mutate(async (lock) => {
      const entry = this.getModule(name);
      const marker = markChange(this.dir, name);
      delete this.manifest.modules[name];
      try {
        this.commit(lock);
      } catch (err) {
        this.manifest.modules[name] = entry;
        rmSync(marker, { force: true });
        throw err;
      }
      const dest = this.moduleDir(name);
      if (existsSync(dest)) {
        const trash = join(this.dir, tempName('rm', name));
        renameSync(dest, trash);
        rmSync(trash, { recursive: true, force: true });
      }
      rmSync(marker, { force: true });
      return entry;
    });
  }

  /** Merges `metrics` into the module's record (e.g. an evaluation score). */
  async recordMetrics(name: string, metrics: Record<string, MetricValue>): Promise<ModuleEntry> {
    return this.mutate(async (lock) => {
      const entry = this.getModule(name);
      entry.metrics = { ...entry.metrics, ...metrics };
      this.commit(lock);
      return entry;
    });
  }

  /** Records `modelDir` (a T5 folder with config.json + weights) as the library's default base. */
  async setDefaultBase(modelDir: string): Promise<DefaultBase> {
    const abs = resolve(modelDir);
    loadArch(abs);
    return this.mutate(async (lock) => {
      const st = weightsStat(abs);
      const rel = relative(this.dir, abs);
      const inside = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
      const rec: DefaultBase = {
        path: inside ? rel.split('\\').join('/') : abs,
        fingerprint: await modelFingerprint(abs),
        bytes: st.bytes,
        mtimeMs: st.mtimeMs,
      };
      this.manifest.defaultBase = rec;
      this.commit(lock);
      return rec;
    });
  }

  /** Copies a module out as a PEFT folder, bit for bit (see export.ts). */
  exportModule(name: string, destDir: string): Promise<string> {
    return exportModule(this, name, destDir);
  }
}

/**
 * The refusal of a module that fits the base but would break the default `compose` (the library
 * must not hold modules its own default command refuses): names the conflict, the force option,
 * and for ranks or scalings the option that composes them anyway.
 */
export function samplingConflictError(name: string, source: string, conflict: LorahubError): LorahubError {
  const how = conflict instanceof RankConflictError ? `; give it to compose by name with ${opt('harmonize')} truncate|pad` : '';
  return new LorahubError(
    'INCOMPATIBLE',
    `module "${name}" (${source}) does not compose with the library's modules for its base: ${conflict.message}; ` +
      `use ${opt('force')} to add it anyway (compose then never samples it${how})`,
    { cause: conflict },
  );
}

/**
 * Opens the library in `dir`. A folder without manifest.json is an empty library; a missing folder
 * is an error unless `create` (mutating commands create it on first write). `lockWaitMs`: how long
 * its mutations wait for another writer (default: fail fast).
 */
export async function openLibrary(
  dir: string = DEFAULT_LIBRARY_DIR,
  opts: { create?: boolean; lockWaitMs?: number } = {},
): Promise<Library> {
  const abs = resolve(dir);
  const st = statIfAny(abs);
  if (!st) {
    if (!opts.create) {
      throw new LorahubError('NOT_FOUND', `no module library at ${dir} (pass ${opt('library')} DIR, or add a module to create it)`);
    }
  } else if (!st.isDirectory()) {
    throw new LorahubError('BAD_ARGUMENT', `${dir}: not a folder`);
  }
  const lib = new Library(abs, (st ? readManifest(abs) : undefined) ?? emptyManifest(), { lockWaitMs: opts.lockWaitMs });
  if (st) await lib.recover();
  return lib;
}

/**
 * The library at `dir`, or — when no dir is given and the default ./modules does not exist —
 * undefined (commands that only optionally use a library). An explicit dir must exist.
 */
export async function openLibraryIfExists(dir?: string): Promise<Library | undefined> {
  const d = dir ?? defaultReadLibraryDir();
  if (!existsSync(d)) {
    if (dir) throw new LorahubError('NOT_FOUND', `library ${dir} does not exist`);
    return undefined;
  }
  return openLibrary(d);
}
