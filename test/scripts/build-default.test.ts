/**
 * scripts/build-default.ts refuses a bad --tasks list or option value before it builds anything (a
 * typo must not surface after an hour of train-base): unknown names list the available ones, target
 * tasks and an empty list are refused, numbers and choices are checked, each with one line, and the
 * output folder is never created.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-build-default-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function build(tasks: string, extra: string[] = []): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/build-default.ts'), '--out', join(tmp, 'lib'), '--tasks', tasks, ...extra], {
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

describe('build-default options', () => {
  it.each([
    [['--module-steps', 'abc'], /^build-default: error: --module-steps must be a positive integer, got "abc"/],
    [['--weight-decay', '-1'], /^build-default: error: --weight-decay must be a non-negative number, got "-1"/],
    [['--size', 'huge'], /^build-default: error: --size must be tiny, compact or default, got "huge"/],
    [['--tokenizer', 'chars'], /^build-default: error: --tokenizer must be bytes or words, got "chars"\n$/],
    [['--engine', 'gpu'], /^build-default: error: --engine must be ort or tfjs, got "gpu"\n$/],
  ])('refuses %j before building anything', (extra, message) => {
    const r = build('bool_and', extra);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(existsSync(join(tmp, 'lib'))).toBe(false);
  });
});
