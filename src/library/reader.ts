/**
 * What reading a library takes: its manifest, its module folders and its default base. The
 * mutations (library.ts) extend this class; resolve.ts, verify.ts and export.ts only ever read, so
 * they depend on this file and never on library.ts, which depends on them.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LorahubError } from '../errors.ts';
import { readAdapter } from '../io/peft.ts';
import type { LoraModule } from '../lora/module.ts';
import { loadArch } from '../models/index.ts';
import { compareFiles, isTempEntry } from './files.ts';
import { modelFingerprint, shortFingerprint, weightsStat, type BaseModel } from './fingerprint.ts';
import { emptyManifest, readManifest, type DefaultBase, type Manifest, type ModuleEntry } from './manifest.ts';

/** The conventional folder of the default base inside a library. */
export const BASE_FOLDER = 'base';

export class LibraryReader {
  /** Absolute path of the library folder. */
  readonly dir: string;
  /** The manifest as last read (the mutations in library.ts change it, then commit it). */
  protected manifest: Manifest;

  constructor(dir: string, manifest: Manifest) {
    this.dir = dir;
    this.manifest = manifest;
  }

  /** Re-reads the manifest (readers see the state as of open() otherwise). */
  refresh(): void {
    this.manifest = readManifest(this.dir) ?? emptyManifest();
  }

  listModules(): ModuleEntry[] {
    return Object.keys(this.manifest.modules)
      .sort()
      .map((n) => this.manifest.modules[n]);
  }

  getModule(name: string): ModuleEntry {
    const entry = this.manifest.modules[name];
    if (!entry) {
      throw new LorahubError('NOT_FOUND', `module "${name}" is not in library ${this.dir} (see \`lorahub modules list\`)`);
    }
    return entry;
  }

  hasModule(name: string): boolean {
    return Object.hasOwn(this.manifest.modules, name);
  }

  moduleDir(name: string): string {
    return join(this.dir, name);
  }

  get defaultBase(): DefaultBase | null {
    return this.manifest.defaultBase;
  }

  /** Absolute folder of the default base, if the manifest names one. */
  defaultBaseDir(): string | undefined {
    const b = this.manifest.defaultBase;
    return b ? resolve(this.dir, b.path) : undefined;
  }

  /**
   * Loads a base for compatibility checks. For the default base the recorded fingerprint is reused
   * while the weights' size and mtime are unchanged (hashing gigabytes on every `add` is too slow;
   * `verify` always re-hashes).
   */
  async loadBase(dir?: string): Promise<BaseModel | undefined> {
    const baseDir = dir !== undefined ? resolve(dir) : this.defaultBaseDir();
    if (baseDir === undefined) return undefined;
    const arch = loadArch(baseDir);
    const rec = this.manifest.defaultBase;
    if (rec && resolve(this.dir, rec.path) === baseDir) {
      const st = weightsStat(baseDir);
      if (st.bytes === rec.bytes && st.mtimeMs === rec.mtimeMs) return { dir: baseDir, fingerprint: rec.fingerprint, arch };
    }
    return { dir: baseDir, fingerprint: await modelFingerprint(baseDir), arch };
  }

  /** Reads a module's adapter; with `verify` (default) its files are first checked against the manifest. */
  async loadModule(name: string, opts: { verify?: boolean } = {}): Promise<LoraModule> {
    const entry = this.getModule(name);
    const dir = this.moduleDir(name);
    if (opts.verify ?? true) {
      const { problems } = await compareFiles(dir, entry.files);
      if (problems.length > 0) {
        throw new LorahubError(
          'INTEGRITY',
          `module "${name}" (${dir}) does not match the manifest: ${problems.join('; ')} (run \`lorahub modules verify\`)`,
        );
      }
    }
    return readAdapter(dir, { name });
  }

  /** Folders that look like modules but are not registered (e.g. copied in by hand). */
  unregisteredFolders(): string[] {
    const base = this.defaultBaseDir();
    return readdirSync(this.dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !this.hasModule(e.name))
      .map((e) => e.name)
      .filter((n) => n !== BASE_FOLDER && join(this.dir, n) !== base)
      .sort();
  }

  /** Temporary entries of a write in progress, or of a killed one (see Library.recover). */
  staleTemps(): string[] {
    return readdirSync(this.dir).filter(isTempEntry).sort();
  }

  /** Sum of the stored file sizes. */
  static sizeOf(entry: ModuleEntry): number {
    return Object.values(entry.files).reduce((s, f) => s + f.bytes, 0);
  }

  static describeBase(entry: ModuleEntry): string {
    if (entry.base.fingerprint) return shortFingerprint(entry.base.fingerprint);
    // Parenthesised: only what adapter_config.json claims, never checked.
    return entry.peft.baseModelNameOrPath ? `(${entry.peft.baseModelNameOrPath})` : '-';
  }
}
