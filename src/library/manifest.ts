/**
 * `manifest.json`: the library's table of contents and integrity record. It is the commit point of
 * every mutation (module folders are renamed into place first, then the manifest is replaced
 * atomically), and it is never rewritten when it cannot be parsed: a hand-edited, broken manifest
 * is reported with the file name and the JSON problem, and mutating commands refuse to run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { LorahubError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';

export const MANIFEST_FILE = 'manifest.json';

const FileRecordSchema = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits'),
  bytes: z.number().int().nonnegative(),
});

const MetricValueSchema = z.union([z.number(), z.string(), z.boolean(), z.null()]);

// looseObject everywhere: fields written by a newer lorahub survive a rewrite by this one.
const ModuleEntrySchema = z.looseObject({
  name: z.string(),
  task: z.string().nullable(),
  addedAt: z.string(),
  /** The folder it was added from (provenance only). */
  source: z.string().nullable(),
  /** "adapter_model.bin" when the weights were converted to safetensors on add. */
  convertedFrom: z.string().nullable(),
  peft: z.looseObject({
    r: z.number(),
    alpha: z.number(),
    targetModules: z.union([z.array(z.string()), z.string()]),
    useRslora: z.boolean(),
    /** Number of adapted Linear layers. */
    targetCount: z.number().int(),
    baseModelNameOrPath: z.string().nullable(),
  }),
  base: z.looseObject({
    /** The base this module is known to work on; null when unchecked or added with --force despite problems. */
    fingerprint: z.string().nullable(),
    /** The base it was checked against at add time, if any. */
    checkedAgainst: z.string().nullable(),
    /** Compatibility problems accepted with --force. */
    problems: z.array(z.string()),
  }),
  files: z.record(z.string(), FileRecordSchema),
  metrics: z.record(z.string(), MetricValueSchema),
  /**
   * Why `compose` never samples this module: it fits its base but does not compose with the
   * library's other modules for that base (targets, ranks or scalings), accepted with --force.
   * Absent or null (every manifest before this field): sampled whenever it fits the base.
   */
  notSampled: z.string().nullable().optional(),
});

const DefaultBaseSchema = z.looseObject({
  /** Relative to the library folder when inside it, else absolute. */
  path: z.string(),
  fingerprint: z.string(),
  /** Size and mtime of the weights when fingerprinted: if unchanged, the fingerprint is reused. */
  bytes: z.number(),
  mtimeMs: z.number(),
});

const ManifestSchema = z.looseObject({
  format: z.literal('lorahub-library'),
  version: z.literal(1),
  defaultBase: DefaultBaseSchema.nullable(),
  modules: z.record(z.string(), ModuleEntrySchema),
});

export type FileRecord = z.infer<typeof FileRecordSchema>;
export type MetricValue = z.infer<typeof MetricValueSchema>;
export type ModuleEntry = z.infer<typeof ModuleEntrySchema>;
export type DefaultBase = z.infer<typeof DefaultBaseSchema>;
export type Manifest = z.infer<typeof ManifestSchema>;

export function emptyManifest(): Manifest {
  return { format: 'lorahub-library', version: 1, defaultBase: null, modules: {} };
}

/**
 * Reads and validates `<dir>/manifest.json`; undefined when the file does not exist. Any other
 * problem throws BAD_FILE naming the file and the JSON or schema problem.
 */
export function readManifest(dir: string): Manifest | undefined {
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LorahubError('BAD_FILE', `${file}: cannot read (${(cause as Error).message})`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new LorahubError(
      'BAD_FILE',
      `${file}: invalid JSON (${(cause as Error).message}); fix or restore it by hand: lorahub will not overwrite it`,
      { cause },
    );
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new LorahubError('BAD_FILE', `${file}: not a lorahub library manifest (${issues})`);
  }
  for (const [key, entry] of Object.entries(parsed.data.modules)) {
    if (entry.name !== key) {
      throw new LorahubError('BAD_FILE', `${file}: modules.${key}.name is "${entry.name}", expected "${key}"`);
    }
  }
  return parsed.data;
}

/** Atomic replace; modules are written in name order so diffs of the manifest stay readable. */
export function writeManifest(dir: string, manifest: Manifest): void {
  const modules: Record<string, ModuleEntry> = {};
  for (const name of Object.keys(manifest.modules).sort()) modules[name] = manifest.modules[name];
  writeFileAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify({ ...manifest, modules }, null, 2)}\n`);
}
