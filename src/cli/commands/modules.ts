/**
 * `lorahub modules …`: the module library (src/library). Each sub-command is one library call plus
 * formatting; errors are thrown as LorahubError for main.ts to print.
 */
import type { Command } from 'commander';
import { LorahubError } from '../../errors.ts';
import {
  DEFAULT_LIBRARY_DIR,
  defaultReadLibraryDir,
  LIBRARY_ENV,
  Library,
  openLibrary,
  shortFingerprint,
  writableLibraryDir,
  type MetricValue,
  type ModuleEntry,
  type VerifyReport,
} from '../../library/index.ts';

interface LibraryOpts {
  library?: string;
}

/** Read-only subcommands also find the shipped default from any folder. */
function readLibraryDir(opts: LibraryOpts): string {
  return opts.library ?? defaultReadLibraryDir();
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function targetsText(e: ModuleEntry): string {
  const t = e.peft.targetModules;
  return `${Array.isArray(t) ? t.join(',') : `/${t}/`} (${e.peft.targetCount})`;
}

function metricsText(m: Record<string, MetricValue>): string {
  const parts = Object.entries(m).map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : String(v)}`);
  return parts.length ? parts.join(' ') : '-';
}

/** Left-aligned columns; the last column is not padded. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

/** `--metric key=value`, repeatable; numbers stay numbers. */
function collectMetric(value: string, prev: Record<string, MetricValue>): Record<string, MetricValue> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new LorahubError('BAD_ARGUMENT', `--metric expects KEY=VALUE, got ${JSON.stringify(value)}`);
  const raw = value.slice(eq + 1);
  const num = Number(raw);
  return { ...prev, [value.slice(0, eq)]: raw.trim() !== '' && Number.isFinite(num) ? num : raw };
}

function printVerify(r: VerifyReport): void {
  if (r.base) {
    out(`${r.base.ok ? 'ok  ' : 'FAIL'}  base ${r.base.dir} (${shortFingerprint(r.base.fingerprint)})`);
    for (const p of r.base.problems) out(`      ${p}`);
  }
  for (const m of r.modules) {
    out(`${m.ok ? 'ok  ' : 'FAIL'}  ${m.name}`);
    for (const p of m.problems) out(`      ${p}`);
    for (const w of m.warnings) out(`      warning: ${w}`);
  }
  if (r.unregistered.length) out(`warning: folders not in the manifest: ${r.unregistered.join(', ')}`);
  if (r.staleTemps.length) out(`note: ${r.staleTemps.length} temporary entr${r.staleTemps.length === 1 ? 'y' : 'ies'} of a write in progress (ignored; a dead writer's are cleaned up when the library is next opened)`);
  const failed = r.modules.filter((m) => !m.ok).length;
  out(`${r.modules.length - failed}/${r.modules.length} module(s) ok${r.base && !r.base.ok ? '; base FAILED' : ''}`);
}

export function register(program: Command): void {
  const modules = program
    .command('modules')
    .description(`manage the LoRA module library (a folder with manifest.json; default ${DEFAULT_LIBRARY_DIR}, env ${LIBRARY_ENV})`);
  const libOpt = [
    '--library <dir>',
    `library folder (default: $${LIBRARY_ENV}, else ${DEFAULT_LIBRARY_DIR}; list/info/verify/export fall back to the shipped library, add/remove/set-base never write into it unless named)`,
  ] as const;

  modules
    .command('list')
    .description('list the modules: name, task, base, rank, alpha, targets, size, metrics')
    .option(...libOpt)
    .option('--json', 'print JSON')
    .action(async (opts: LibraryOpts & { json?: boolean }) => {
      const lib = await openLibrary(readLibraryDir(opts));
      const entries = lib.listModules();
      if (opts.json) {
        out(JSON.stringify(entries.map((e) => ({ ...e, size: Library.sizeOf(e) })), null, 2));
        return;
      }
      if (entries.length === 0) {
        out(`no modules in ${lib.dir}`);
        return;
      }
      const rows = [['NAME', 'TASK', 'BASE', 'RANK', 'ALPHA', 'TARGETS', 'SIZE', 'METRICS']];
      for (const e of entries) {
        rows.push([
          e.name,
          e.task ?? '-',
          Library.describeBase(e),
          String(e.peft.r),
          String(e.peft.alpha),
          targetsText(e),
          humanBytes(Library.sizeOf(e)),
          metricsText(e.metrics),
        ]);
      }
      out(table(rows));
    });

  modules
    .command('info')
    .description('show one module: manifest record, files and hashes, adapted layers')
    .argument('<name>', 'module name')
    .option(...libOpt)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: LibraryOpts & { json?: boolean }) => {
      const lib = await openLibrary(readLibraryDir(opts));
      const e = lib.getModule(name);
      let targets: string[] | undefined;
      let loadError: string | undefined;
      try {
        targets = [...(await lib.loadModule(name, { verify: false })).targets.keys()];
      } catch (err) {
        loadError = err instanceof Error ? err.message : String(err);
      }
      if (opts.json) {
        out(JSON.stringify({ ...e, dir: lib.moduleDir(name), size: Library.sizeOf(e), targets, loadError }, null, 2));
        return;
      }
      const lines = [
        `name:      ${e.name}`,
        `task:      ${e.task ?? '-'}`,
        `folder:    ${lib.moduleDir(name)}`,
        `added:     ${e.addedAt}${e.source ? ` from ${e.source}` : ''}${e.convertedFrom ? ` (converted from ${e.convertedFrom})` : ''}`,
        `base:      ${e.base.fingerprint ?? 'not checked'}${e.peft.baseModelNameOrPath ? ` (adapter_config: ${e.peft.baseModelNameOrPath})` : ''}`,
        ...e.base.problems.map((p) => `           accepted with --force: ${p}`),
        ...(e.notSampled ? [`           not sampled by compose (accepted with --force): ${e.notSampled}`] : []),
        `lora:      r=${e.peft.r} alpha=${e.peft.alpha}${e.peft.useRslora ? ' rslora' : ''} targets ${targetsText(e)}`,
        `metrics:   ${metricsText(e.metrics)}`,
        `size:      ${humanBytes(Library.sizeOf(e))}`,
        'files:',
        ...Object.entries(e.files).map(([f, r]) => `  ${f}  ${r.bytes} bytes  sha256:${r.sha256}`),
      ];
      if (targets) lines.push('layers:', ...targets.map((t) => `  ${t}`));
      if (loadError) lines.push(`load error: ${loadError}`);
      out(lines.join('\n'));
    });

  modules
    .command('add')
    .description('copy a PEFT adapter folder into the library (.bin converted to safetensors; hashes and base recorded)')
    .argument('<dir>', 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors or .bin)')
    .option(...libOpt)
    .option('--name <name>', 'library name (default: the folder name)')
    .option('--task <task>', 'the task the module was trained on')
    .option('--base <dir>', "base model folder to check against (default: the library's default base)")
    .option('--metric <key=value>', 'record a metric (repeatable)', collectMetric, {})
    .option('--force', "replace an existing module; accept one that does not fit the base, or does not compose with the library's modules (compose then never samples it)")
    .action(
      async (
        dir: string,
        opts: LibraryOpts & { name?: string; task?: string; base?: string; metric: Record<string, MetricValue>; force?: boolean },
      ) => {
        const lib = await openLibrary(writableLibraryDir(opts.library), { create: true });
        const r = await lib.addModule(dir, { name: opts.name, task: opts.task, base: opts.base, force: opts.force, metrics: opts.metric });
        for (const w of r.warnings) process.stderr.write(`lorahub: warning: ${w}\n`);
        out(
          `${r.replaced ? 'replaced' : 'added'} ${r.entry.name} (r=${r.entry.peft.r}, ${r.entry.peft.targetCount} layers, ` +
            `base ${r.entry.base.fingerprint ?? 'unchecked'}) in ${lib.dir}`,
        );
      },
    );

  modules
    .command('remove')
    .description('remove a module from the library')
    .argument('<name>', 'module name')
    .option(...libOpt)
    .action(async (name: string, opts: LibraryOpts) => {
      const lib = await openLibrary(writableLibraryDir(opts.library));
      await lib.removeModule(name);
      out(`removed ${name} from ${lib.dir}`);
    });

  modules
    .command('verify')
    .description('check every module: file hashes, loadability, fit to its base; exits 1 if anything fails')
    .option(...libOpt)
    .option('--json', 'print JSON')
    .action(async (opts: LibraryOpts & { json?: boolean }) => {
      const lib = await openLibrary(readLibraryDir(opts));
      const report = await lib.verifyLibrary();
      if (opts.json) out(JSON.stringify(report, null, 2));
      else printVerify(report);
      if (!report.ok) {
        const failed = report.modules.filter((m) => !m.ok).map((m) => m.name);
        throw new LorahubError(
          'INTEGRITY',
          `library ${lib.dir} failed verification${failed.length ? `: ${failed.join(', ')}` : ''}${report.base && !report.base.ok ? ' (base)' : ''}`,
        );
      }
    });

  modules
    .command('export')
    .description('copy a module out as a PEFT adapter folder, bit-identical to what is stored')
    .argument('<name>', 'module name')
    .argument('<dir>', 'destination folder (must not exist)')
    .option(...libOpt)
    .action(async (name: string, dir: string, opts: LibraryOpts) => {
      const lib = await openLibrary(readLibraryDir(opts));
      out(`exported ${name} to ${await lib.exportModule(name, dir)}`);
    });

  modules
    .command('set-base')
    .description("record a T5 model folder (config.json + weights) as the library's default base")
    .argument('<dir>', 'model folder')
    .option(...libOpt)
    .action(async (dir: string, opts: LibraryOpts) => {
      const lib = await openLibrary(writableLibraryDir(opts.library), { create: true });
      const rec = await lib.setDefaultBase(dir);
      out(`default base of ${lib.dir}: ${rec.path} (${rec.fingerprint})`);
    });
}
