/**
 * What the fault tests share (not a test file): a template library and the "is it intact" check.
 * The faulted command always runs in a process of its own (it is killed, or its fs is patched);
 * the checks after it run the same CLI entry in process (test/cli/run.ts): a spawn costs a second
 * of start-up on this 2-core machine, and test/library/cli.test.ts spawns them after a kill too.
 */
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { openLibrary, type VerifyReport } from '../../src/library/index.ts';
import { runCli } from '../cli/run.ts';
import { adapterDir, MODEL } from '../library/helpers.ts';

export { runCli };

/** A library with the fixture model as default base and module a0, in `dir`. */
export async function makeTemplate(dir: string): Promise<string> {
  const lib = await openLibrary(dir, { create: true });
  await lib.setDefaultBase(MODEL);
  await lib.addModule(adapterDir(0));
  return dir;
}

/** A copy of the template (every scenario damages its own library). */
export function copyLibrary(template: string, dest: string): string {
  cpSync(template, dest, { recursive: true });
  return dest;
}

export const manifestOf = (lib: string): Buffer => readFileSync(join(lib, 'manifest.json'));

/**
 * What a user sees after a fault: `modules list` and `modules verify` succeed, the library holds
 * exactly `modules`, each stored bit for bit from `sources[name]` when given, and nothing
 * half-done is left (no temporary entry, no folder the manifest does not name).
 */
export async function expectIntact(lib: string, modules: string[], sources: Record<string, string> = {}): Promise<VerifyReport> {
  const list = await runCli(['modules', 'list', '--library', lib, '--json']);
  expect(list.stderr).toBe('');
  expect(list.code).toBe(0);
  expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((e) => e.name)).toEqual(modules);
  const verify = await runCli(['modules', 'verify', '--library', lib, '--json']);
  expect(verify.stderr).toBe('');
  expect(verify.code).toBe(0);
  const report = JSON.parse(verify.stdout) as VerifyReport;
  expect(report.ok).toBe(true);
  expect(report.modules.map((m) => m.name)).toEqual(modules);
  expect(report.unregistered).toEqual([]);
  expect(report.staleTemps).toEqual([]);
  expect(readdirSync(lib).filter((e) => e.startsWith('.tmp-') || e.endsWith('.tmp'))).toEqual([]);
  for (const [name, src] of Object.entries(sources)) {
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) {
      expect(readFileSync(join(lib, name, f)).equals(readFileSync(join(src, f))), `${name}/${f}`).toBe(true);
    }
  }
  return report;
}
