/**
 * `lorahub compose` killed, or refused disk space, in the middle of a run: `--resume` ends with the
 * weights and the adapter of a run that was never interrupted, bit for bit; a full disk while the
 * adapter is saved is one error line, exit 1, and leaves no partial adapter. Real processes, faults
 * from test/faults/hooks/fs-faults.mjs. The t5-gated fixture with its three modules: ~3 s a run.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComposeReport } from '../../src/adapt/run.ts';
import { readJson, T5_GATED } from '../helpers.ts';
import { runCli, tempDir } from '../library/helpers.ts';
import { faultEnv, killAtFault, lorahubLines } from './hooks/spawn.ts';

const root = tempDir('faults-compose');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const adapters = ['a0', 'a1', 'a2'].map((a) => join(T5_GATED, 'adapters', a)).join(',');
/**
 * 40 evaluations: the w = 0 one and 6 CMA-ES generations of 6, one checkpoint after each
 * generation (CMA-ES, not the default COBYLA, so that a kill lands between multi-candidate steps).
 */
const COMPOSE = ['compose', '--model', join(T5_GATED, 'model'), '--modules', adapters, '--task', 'boolean_expressions', '--budget', '40', '--optimizer', 'cmaes', '--no-eval', '--workers', '1'];
const reference = join(root, 'reference');

/** The uninterrupted run, started at once: it runs beside the first faulted one. */
let referenceRun: ReturnType<typeof runCli>;
beforeAll(() => {
  referenceRun = runCli([...COMPOSE, '--out', reference]);
});

/** The run in `dir` ended as the uninterrupted reference did: same search, same adapter bytes. */
async function expectSameResult(dir: string): Promise<void> {
  const r = await referenceRun;
  expect(r.stderr).not.toMatch(/lorahub: (internal )?error/);
  expect(r.code).toBe(0);
  const want = readJson<ComposeReport>(join(reference, 'report.json'));
  const got = readJson<ComposeReport>(join(dir, 'report.json'));
  expect(got.resumed).toBe(true);
  expect(got.weights).toEqual(want.weights);
  expect(got.objective).toBe(want.objective);
  expect(got.evaluations).toBe(want.evaluations);
  expect(got.trace.map((g) => [g.candidates, g.values])).toEqual(want.trace.map((g) => [g.candidates, g.values]));
  for (const f of ['adapter_model.safetensors', 'adapter_config.json']) {
    expect(readFileSync(join(dir, 'adapter', f)).equals(readFileSync(join(reference, 'adapter', f))), f).toBe(true);
  }
}

async function resume(dir: string): Promise<void> {
  const r = await runCli(['compose', '--resume', dir, '--json']);
  expect(lorahubLines(r.stderr)).toEqual([]);
  expect(r.code).toBe(0);
  // --json ends with the result line; report.json has the numbers compared below.
  expect((JSON.parse(r.stdout.trim().split('\n').pop() as string) as { weights: number[] }).weights).toHaveLength(3);
}

describe('compose under faults', () => {
  it('kill -9 after a checkpoint, then --resume: the same weights and adapter, bit for bit', async () => {
    const run = join(root, 'killed');
    // Stopped just after the third checkpoint (generation 3: 19 evaluations) replaced state.json.
    await killAtFault([...COMPOSE, '--out', run], {
      op: 'rename',
      match: /\/\.state\.json\.[^/]*\.tmp -> .*\/state\.json$/,
      nth: 3,
      when: 'after',
      action: 'stop',
    });
    const state = readJson<{ evaluations: number; trace: unknown[] }>(join(run, 'state.json'));
    expect(state.evaluations).toBe(19);
    expect(readdirSync(run).sort()).toEqual(['run.json', 'state.json']);
    await resume(run);
    await expectSameResult(run);
  });

  it('a full disk while the adapter is saved: one error line, exit 1, no partial adapter; --resume saves it', async () => {
    const run = join(root, 'full');
    // 4 KiB of the weights file get through, then every write fails with ENOSPC.
    const r = await runCli([...COMPOSE, '--out', run], faultEnv({ op: 'write', match: /adapter_model\.safetensors/, bytes: 4096, action: 'enospc' }));
    expect(lorahubLines(r.stderr)).toEqual([`lorahub: error: ${join(run, 'adapter', 'adapter_model.safetensors')}: cannot write: no space left on device`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    // The search is kept (its checkpoint), nothing of the adapter is: no folder, no temporary file.
    expect(readdirSync(run).sort()).toEqual(['run.json', 'state.json']);
    await resume(run);
    await expectSameResult(run);
  });
});
