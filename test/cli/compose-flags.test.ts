/**
 * `lorahub compose` flags that used to be ignored silently, and file-system failures of our
 * writes: each is one `lorahub: error:` line (a warning for --workers past the cores), exit 2 for
 * what the command line fixes and 1 for what the place does, and nothing is lost. Through the CLI
 * entry point in process (fast), except `--out /proc/x`, spawned with a deadline because it hung.
 */
import { availableParallelism } from 'node:os';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComposeReport } from '../../src/adapt/run.ts';
import { T5_GATED, readJson } from '../helpers.ts';
import { runCli as spawnCli } from '../library/helpers.ts';
import { runCli, type CliResult } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-compose-flags-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = `${T5_GATED}/model`;
const [A0, A1] = ['a0', 'a1'].map((a) => `${T5_GATED}/adapters/${a}`);
/** A fast compose on the t5-gated fixture: two modules, 7 evaluations, no accuracy evaluation. */
const FAST = ['compose', '--model', MODEL, '--modules', `${A0},${A1}`, '--task', 'boolean_expressions', '--budget', '7', '--no-eval'];
const FILE = join(tmp, 'a-file');
writeFileSync(FILE, 'not a folder\n');

function oneErrorLine(r: CliResult, code: number, expected: string | RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  if (typeof expected === 'string') expect(lines[0]).toBe(`lorahub: error: ${expected}`);
  else expect(lines[0]).toMatch(expected);
  expect(r.stdout).toBe('');
}

describe('compose --resume continues with its own settings', () => {
  const run = join(tmp, 'run');
  beforeAll(async () => {
    expect((await runCli([...FAST, '--workers', '1', '--out', run])).code).toBe(0);
  });

  it('a flag that would change the run is a usage error naming it; the run is untouched', async () => {
    const before = ['run.json', 'state.json', 'report.json'].map((f) => readFileSync(join(run, f)));
    const refused: string[][] = [
      ['--budget', '20'],
      ['--seed', '1'],
      ['--no-eval'],
      ['--examples', '3'],
      ['--modules', A0],
      ['--num-modules', '2'],
      ['--select', '2'],
      ['--no-select'],
      ['--time-limit', '5'],
      ['--out', join(tmp, 'elsewhere')],
      ['--task', 'boolean_expressions'],
      ['--bound', '1'],
    ];
    for (const flags of refused) {
      oneErrorLine(
        await runCli(['compose', '--resume', run, ...flags]),
        2,
        `${flags[0]} does not apply to --resume: a resumed run continues with the settings in its run.json (only --workers, --json and the global engine flags apply)`,
      );
    }
    ['run.json', 'state.json', 'report.json'].forEach((f, i) => expect(readFileSync(join(run, f)).equals(before[i])).toBe(true));
  });

  it('--workers and --json apply, and the run keeps its settings (here: no evaluation)', async () => {
    const r = await runCli(['compose', '--resume', run, '--workers', '1', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { evaluations: number; accuracy: number | null };
    expect(j.evaluations).toBe(7);
    expect(j.accuracy).toBeNull();
  });
});

describe('compose flags that contradict or say nothing', () => {
  it('--num-modules beside --modules, an empty --modules, and a --time-limit ≤ 0 are usage errors', async () => {
    oneErrorLine(
      await runCli([...FAST, '--num-modules', '2']),
      2,
      '--num-modules does not apply with --modules: it is how many modules to sample when --modules is not given',
    );
    oneErrorLine(
      await runCli(['compose', '--task', 'boolean_expressions', '--model', MODEL, '--select', '2', '--num-modules', '2']),
      2,
      '--select and --num-modules are two ways to choose the modules: --select K keeps the K best of the library, --num-modules N samples N at random',
    );
    oneErrorLine(await runCli([...FAST, '--select', '0']), 2, /^lorahub: error: --select/);
    oneErrorLine(await runCli([...FAST, '--optimizer', 'cobyla', '--popsize', '10']), 2, '--popsize does not apply to --optimizer cobyla: it sets the search of cmaes, lq-cmaes, cobyla-lq and random');
    oneErrorLine(await runCli([...FAST, '--optimizer', 'random', '--sigma0', '0.3']), 2, '--sigma0 does not apply to --optimizer random: it sets the search of cmaes, lq-cmaes and cobyla-lq');
    oneErrorLine(await runCli(['compose', '--task', 'boolean_expressions', '--modules', '']), 2, '--modules is empty');
    oneErrorLine(await runCli(['compose', '--task', 'boolean_expressions', '--modules', ' , ']), 2, '--modules is empty');
    oneErrorLine(await runCli([...FAST, '--time-limit', '-5']), 2, '--time-limit must be a positive number, got "-5"');
    oneErrorLine(await runCli([...FAST, '--time-limit', '0']), 2, '--time-limit must be a positive number, got "0"');
    oneErrorLine(await runCli([...FAST, '--bound', '0']), 2, '--bound must be a positive number, got "0"');
    oneErrorLine(await runCli([...FAST, '--bound', 'wide']), 2, '--bound must be a positive number, got "wide"');
  });

  it('--bound b keeps every weight in [-b, b], and is recorded for a resume', async () => {
    const out = join(tmp, 'bound');
    const r = await runCli([...FAST, '--workers', '1', '--bound', '0.25', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const report = readJson<ComposeReport>(join(out, 'report.json'));
    expect(report.settings.bound).toBe(0.25);
    const tried = [report.weights, ...report.trace.flatMap((g) => g.candidates)].flat().map(Math.abs);
    // The search explored (with the default bound its first probes reach ±0.75) and stayed in the box.
    expect(Math.max(...tried)).toBeGreaterThan(0.1);
    expect(Math.max(...tried)).toBeLessThanOrEqual(0.25);
  });

  it('--out: a folder with other files, or with a run, is refused and left as it was', async () => {
    const busy = join(tmp, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    oneErrorLine(await runCli([...FAST, '--out', busy]), 2, `${busy} is not empty and holds no run: give --out a new or empty folder`);
    expect(readdirSync(busy)).toEqual(['notes.txt']);
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    expect((await runCli([...FAST, '--workers', '1', '--out', empty])).code).toBe(0);
    oneErrorLine(await runCli([...FAST, '--out', empty]), 2, `${empty} already holds a run (resume it with --resume ${empty}, or give another --out)`);
  });

  it('--workers above the cores is capped at the cores, with a warning that says the memory cost', async () => {
    const cores = availableParallelism();
    const warning = (n: number) =>
      `lorahub: warning: --workers ${n} capped at ${cores}, the number of cores: each worker holds its own copy of the model in memory, and workers beyond the cores add memory, not speed`;
    // The warning comes with the flags, before anything runs (here the --out then fails).
    const early = await runCli([...FAST, '--workers', String(cores + 1), '--out', FILE]);
    expect(early.code).toBe(1);
    expect(early.stderr.trimEnd().split('\n')).toEqual([warning(cores + 1), `lorahub: error: ${FILE}: cannot create folder: not a directory (it is a file)`]);
  });

  // A run with one worker per core: only where that is a few.
  it.skipIf(availableParallelism() > 8)('a capped run uses one worker per core', async () => {
    const out = join(tmp, 'many-workers');
    const r = await runCli([...FAST, '--workers', '64', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('lorahub: warning:'))).toHaveLength(1);
    expect(readJson<ComposeReport>(join(out, 'report.json')).workers).toBe(availableParallelism());
  });
});

describe('file-system failures of our writes are one line naming the path (exit 1)', () => {
  it('compose --out at a file or under one; a failed run leaves no folder', async () => {
    oneErrorLine(await runCli([...FAST, '--out', FILE]), 1, `${FILE}: cannot create folder: not a directory (it is a file)`);
    oneErrorLine(await runCli([...FAST, '--out', join(FILE, 'run')]), 1, `${join(FILE, 'run')}: cannot create folder: not a directory (${FILE} is a file)`);
    // A run that fails after its folder was made (here: an unknown module) takes the empty folder away again.
    const gone = join(tmp, 'gone');
    oneErrorLine(await runCli([...FAST.slice(0, 5), '--modules', join(tmp, 'no-such-adapter'), '--task', 'boolean_expressions', '--out', gone]), 1, /no-such-adapter/);
    expect(readdirSync(tmp)).not.toContain('gone');
  });

  it('compose-weights, modules add and modules export into a path under a file; the library is intact', async () => {
    oneErrorLine(
      await runCli(['compose-weights', '--model', MODEL, '--modules', `${A0},${A1}`, '--weights', '1,1', '--out', join(FILE, 'adapter')]),
      1,
      `${FILE}: cannot create folder: not a directory (it is a file)`,
    );
    oneErrorLine(await runCli(['modules', 'add', A0, '--library', join(FILE, 'lib')]), 1, `${join(FILE, 'lib')}: cannot create folder: not a directory (${FILE} is a file)`);
    const lib = join(tmp, 'lib');
    expect((await runCli(['modules', 'add', A0, '--library', lib, '--base', MODEL])).code).toBe(0);
    oneErrorLine(await runCli(['modules', 'export', 'a0', join(FILE, 'a0'), '--library', lib]), 1, `${FILE}: cannot create folder: not a directory (it is a file)`);
    expect((await runCli(['modules', 'verify', '--library', lib])).code).toBe(0);
    expect(readdirSync(lib).sort()).toEqual(['a0', 'manifest.json']);
  });

  it('--out /proc/x fails at once (it used to spin forever, deaf to SIGTERM)', async () => {
    const r = await spawnCli([...FAST, '--out', '/proc/lorahub-x'], {}, 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toEqual(['lorahub: error: /proc/lorahub-x: cannot create folder: no such file or directory']);
  });
});
