/**
 * scripts/build-default.ts refuses a bad --tasks list before it builds anything (a typo must not
 * surface after an hour of train-base): unknown names list the available ones, target tasks and
 * an empty list are refused, and the output folder is never created.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-build-default-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function build(tasks: string): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/build-default.ts'), '--out', join(tmp, 'lib'), '--tasks', tasks], {
    cwd: REPO,
    encoding: 'utf8',
  });
  return { code: r.status, stderr: r.stderr };
}

describe('build-default --tasks', () => {
  it.each([
    ['bool_and,bool_nope', /^build-default: error: unknown task "bool_nope" \(available: arith_add_sub, .*bool_and/],
    ['bool_and,boolean_expressions', /^build-default: error: --tasks: boolean_expressions: not an upstream task/],
    [' , ', /^build-default: error: --tasks is empty/],
  ])('refuses %j before building anything', (tasks, message) => {
    const r = build(tasks);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(existsSync(join(tmp, 'lib'))).toBe(false);
  });
});
