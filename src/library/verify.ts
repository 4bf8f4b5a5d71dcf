/**
 * `lorahub modules verify`: re-derives everything the manifest claims: file hashes, that each
 * module loads (PEFT config valid, shapes consistent, no NaN/Inf), that its recorded PEFT facts
 * still hold, and that it still fits its recorded base (when that base is available: the default
 * base, fully re-hashed), and that the modules `compose` samples for a base compose with each
 * other (a library filled before `add` checked that would otherwise fail `compose --seed N` for
 * some seeds only).
 */
import { existsSync } from 'node:fs';
import { readAdapter } from '../io/peft.ts';
import { compositionConflict } from '../lora/compose.ts';
import type { LoraModule } from '../lora/module.ts';
import { compareFiles } from './files.ts';
import { modelFingerprint, shapeProblems, type BaseModel } from './fingerprint.ts';
import type { LibraryReader } from './reader.ts';
import { loadArch } from '../models/index.ts';

export interface ModuleReport {
  name: string;
  ok: boolean;
  /** Failures: verify exits non-zero when any module has one. */
  problems: string[];
  /** Worth knowing, not failures (extra files, base not available to re-check). */
  warnings: string[];
}

export interface VerifyReport {
  library: string;
  ok: boolean;
  base: { dir: string; fingerprint: string; ok: boolean; problems: string[] } | null;
  modules: ModuleReport[];
  /** Module-like folders not in the manifest. */
  unregistered: string[];
  /** Temporary entries: a live writer's work in progress (a dead one's are removed on open: Library.recover). */
  staleTemps: string[];
}

export async function verifyLibrary(lib: LibraryReader): Promise<VerifyReport> {
  lib.refresh();
  let base: BaseModel | undefined;
  let baseReport: VerifyReport['base'] = null;
  const rec = lib.defaultBase;
  const baseDir = lib.defaultBaseDir();
  if (rec && baseDir) {
    const problems: string[] = [];
    try {
      const arch = loadArch(baseDir);
      // Always a full re-hash here: the size/mtime shortcut of add is not a proof.
      const fingerprint = await modelFingerprint(baseDir);
      if (fingerprint !== rec.fingerprint) {
        problems.push(`weights changed: manifest has ${rec.fingerprint}, the files hash to ${fingerprint}`);
      } else {
        base = { dir: baseDir, fingerprint, arch };
      }
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
    baseReport = { dir: baseDir, fingerprint: rec.fingerprint, ok: problems.length === 0, problems };
  }

  const modules: ModuleReport[] = [];
  // Per base fingerprint, the first sampled module that loads: every other one must compose with it.
  const references = new Map<string, LoraModule>();
  for (const entry of lib.listModules()) {
    const problems: string[] = [];
    const warnings: string[] = [];
    const dir = lib.moduleDir(entry.name);
    if (!existsSync(dir)) {
      modules.push({ name: entry.name, ok: false, problems: [`folder ${dir} is missing`], warnings });
      continue;
    }
    const files = await compareFiles(dir, entry.files);
    problems.push(...files.problems);
    if (files.extra.length > 0) warnings.push(`files not in the manifest: ${files.extra.join(', ')}`);
    try {
      const module = await readAdapter(dir, { name: entry.name });
      if (module.config.r !== entry.peft.r || module.targets.size !== entry.peft.targetCount) {
        problems.push(
          `adapter has r=${module.config.r} and ${module.targets.size} targets, manifest says r=${entry.peft.r} and ${entry.peft.targetCount}`,
        );
      }
      const fp = entry.base.fingerprint;
      if (fp === null) {
        warnings.push(
          entry.base.problems.length > 0
            ? `added despite: ${entry.base.problems.join('; ')}`
            : 'no base recorded: compatibility never checked',
        );
      } else if (base && fp === base.fingerprint) {
        const shapes = shapeProblems(module, base.arch);
        if (shapes.length > 0) problems.push(`does not fit the base: ${shapes.join('; ')}`);
      } else {
        warnings.push(`base ${fp} is not available here: compatibility not re-checked`);
      }
      if (fp !== null && !entry.notSampled) {
        const reference = references.get(fp);
        const conflict = reference ? compositionConflict(reference, module) : undefined;
        if (!reference) references.set(fp, module);
        if (conflict) {
          problems.push(`breaks the default compose: ${conflict.message} (remove it, or add it again forcing it in, so that compose never samples it)`);
        }
      }
    } catch (err) {
      // Any failure to read is a verification failure of this module, not of the command.
      problems.push(`does not load: ${err instanceof Error ? err.message : String(err)}`);
    }
    modules.push({ name: entry.name, ok: problems.length === 0, problems, warnings });
  }
  return {
    library: lib.dir,
    ok: (baseReport?.ok ?? true) && modules.every((m) => m.ok),
    base: baseReport,
    modules,
    unregistered: lib.unregisteredFolders(),
    staleTemps: lib.staleTemps(),
  };
}
