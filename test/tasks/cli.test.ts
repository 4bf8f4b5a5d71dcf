import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { register } from '../../src/cli/commands/tasks.ts';
import { LorahubError } from '../../src/errors.ts';
import { getTask, loadExamplesFile, sampleExamples, taskExamples } from '../../src/tasks/index.ts';

/** Runs `lorahub tasks …` in-process, returning what it wrote to stdout. */
async function run(...args: string[]): Promise<string> {
  let text = '';
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  register(program, (t) => {
    text += t;
  });
  await program.parseAsync(['node', 'lorahub', 'tasks', ...args]);
  return text;
}

describe('lorahub tasks', () => {
  it('list --json: name, kind, description, sizes', async () => {
    const rows = JSON.parse(await run('list', '--json')) as Array<{ name: string; kind: string; description: string; splits: { train: number; test: number } }>;
    const be = rows.find((r) => r.name === 'boolean_expressions');
    expect(be).toMatchObject({ kind: 'target', splits: { train: 50, test: 250 } });
    expect(be?.description).toMatch(/BBH/);
    expect(rows.filter((r) => r.kind === 'upstream').length).toBeGreaterThanOrEqual(20);
  });

  it('list: a readable table', async () => {
    const text = await run('list');
    expect(text.split('\n')[0]).toMatch(/^NAME\s+KIND\s+TRAIN\s+TEST\s+DESCRIPTION$/);
    expect(text).toMatch(/\nboolean_expressions\s+target\s+50\s+250\s+BBH/);
  });

  it('show: the definition and two examples', async () => {
    const doc = JSON.parse(await run('show', 'web_of_lies', '--json')) as { task: { name: string }; examples: unknown[] };
    expect(doc.task.name).toBe('web_of_lies');
    expect(doc.examples).toEqual(taskExamples(getTask('web_of_lies'), 'train').slice(0, 2));
    const text = await run('show', 'bool_and');
    expect(text).toContain('"generator": "boolean_eval"');
    expect(text).toContain('Examples (train):');
  });

  it('sample: jsonl, seeded, from the chosen split; --json is BBH json that the loader reads back', async () => {
    const lines = (await run('sample', 'dyck_languages', '-n', '3', '--split', 'test', '--seed', '9')).trim().split('\n');
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as { input: string; target: string });
    expect(parsed).toEqual(sampleExamples(getTask('dyck_languages'), 'test', 3, 9));
    const test = new Set(taskExamples(getTask('dyck_languages'), 'test').map((e) => e.input));
    for (const e of parsed) expect(test.has(e.input)).toBe(true);

    const dir = mkdtempSync(join(tmpdir(), 'lorahub-cli-'));
    try {
      const path = join(dir, 'sample.json');
      writeFileSync(path, await run('sample', 'navigate', '-n', '4', '--json'));
      expect(loadExamplesFile(path)).toEqual(sampleExamples(getTask('navigate'), 'train', 4, 0));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad arguments with LorahubError', async () => {
    await expect(run('sample', 'navigate', '-n', 'zero')).rejects.toThrow(/-n must be a positive integer, got "zero"/);
    await expect(run('sample', 'navigate', '--split', 'dev')).rejects.toThrow(/--split must be train or test/);
    await expect(run('sample', 'navigate', '-n', '51')).rejects.toThrow(/only 50 distinct train examples/);
    await expect(run('show', 'nope')).rejects.toBeInstanceOf(LorahubError);
  });

  it('runs from bin/lorahub.mjs: exit 0 with JSON, exit 1 naming available tasks', () => {
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    const bin = join(repo, 'bin', 'lorahub.mjs');
    const out = execFileSync(process.execPath, [bin, 'tasks', 'list', '--json'], { encoding: 'utf8', cwd: tmpdir() });
    expect((JSON.parse(out) as unknown[]).length).toBeGreaterThanOrEqual(28);
    const bad = spawnSync(process.execPath, [bin, 'tasks', 'show', 'nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/unknown task "nope" \(available: .*web_of_lies/);
  });
});
