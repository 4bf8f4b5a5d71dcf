import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { DEFAULT_TASKS_DIR, getTask, listTasks, loadTaskFile } from '../../src/tasks/index.ts';

const GOOD = {
  name: 'mini',
  kind: 'upstream',
  description: 'a tiny task',
  instruction: 'Evaluate: {expression}\nAnswer:',
  templates: ['{expression} = ?'],
  answer: { type: 'choice', choices: ['True', 'False'] },
  generator: 'boolean_eval',
  params: { lengths: [3] },
  splits: { train: 10, test: 5 },
  seed: 7,
};

let dirs: string[] = [];
function dirWith(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'lorahub-tasks-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof body === 'string' ? body : JSON.stringify(body));
  }
  return dir;
}
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** The error a bad file gives: BAD_FILE, naming the file and the field. */
function errorOf(task: unknown, file = 'mini.json'): LorahubError {
  const dir = dirWith({ [file]: task });
  try {
    listTasks(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(LorahubError);
    return err as LorahubError;
  }
  throw new Error('expected an error');
}

describe('task registry', () => {
  it('lists the repository tasks from any working directory, upstream first', () => {
    const tasks = listTasks();
    expect(DEFAULT_TASKS_DIR).toMatch(/tasks[\\/]?$/);
    expect(tasks.length).toBeGreaterThanOrEqual(28);
    const kinds = tasks.map((t) => t.kind);
    expect(kinds.lastIndexOf('upstream')).toBeLessThan(kinds.indexOf('target'));
    expect(getTask('boolean_expressions').generator).toBe('bbh_boolean_expressions');
  });

  it('unknown task names list the available ones', () => {
    try {
      getTask('nope');
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(LorahubError);
      expect((err as LorahubError).code).toBe('NOT_FOUND');
      expect((err as LorahubError).message).toMatch(/^unknown task "nope" \(available: .*boolean_expressions.*\)$/);
    }
  });

  it('every target names related upstream tasks that exist', () => {
    const tasks = listTasks();
    const upstream = new Set(tasks.filter((t) => t.kind === 'upstream').map((t) => t.name));
    for (const t of tasks.filter((x) => x.kind === 'target')) {
      expect(t.related?.length).toBeGreaterThan(0);
      for (const r of t.related ?? []) expect(upstream.has(r)).toBe(true);
    }
  });

  it('loads a good file from another directory', () => {
    const dir = dirWith({ 'mini.json': GOOD, 'notes.txt': 'ignored' });
    expect(listTasks(dir).map((t) => t.name)).toEqual(['mini']);
    expect(loadTaskFile(join(dir, 'mini.json')).params).toEqual({ lengths: [3] });
  });

  it('names the file and field of every kind of mistake', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{"name": ', /mini\.json: invalid JSON/],
      [{ ...GOOD, kind: 'sideways' }, /mini\.json: field "kind": /],
      [{ ...GOOD, splits: { train: 10, test: 0 } }, /mini\.json: field "splits\.test": /],
      [{ ...GOOD, splits: { train: 10 } }, /mini\.json: field "splits\.test": /],
      [{ ...GOOD, extra: 1 }, /mini\.json: field "\(root\)": .*extra/],
      [{ ...GOOD, generator: 'nope' }, /mini\.json: field "generator": unknown generator "nope" \(available: .*boolean_eval/],
      [{ ...GOOD, params: { lengths: [0] } }, /mini\.json: field "params\.lengths\[0\]": /],
      [{ ...GOOD, params: { lengths: [3], ops: ['and'], require: ['or'] } }, /mini\.json: field "params": no expression/],
      [{ ...GOOD, params: { lengths: [3], bogus: true } }, /mini\.json: field "params": .*bogus/],
      [{ ...GOOD, templates: ['{expresion}?'] }, /mini\.json: field "templates\[0\]": unknown placeholder \{expresion\}/],
      [{ ...GOOD, instruction: 'Evaluate this' }, /mini\.json: field "instruction": missing placeholder \{expression\}/],
      [{ ...GOOD, answer: { type: 'choice', choices: ['True', 'True'] } }, /mini\.json: field "answer\.choices": choices must be distinct/],
      [{ ...GOOD, answer: { type: 'choice', choices: ['True', 'False'], weights: [1] } }, /field "answer\.weights": expected 2 weights/],
      [{ ...GOOD, kind: 'target' }, /mini\.json: field "templates": a target task/],
      [{ ...GOOD, kind: 'target', templates: undefined, formats: ['{expression} ='] }, /mini\.json: field "formats": a target task/],
      [{ ...GOOD, formats: ['{expr} ='] }, /mini\.json: field "formats\[0\]": unknown placeholder \{expr\}/],
      [{ ...GOOD, name: 'other' }, /mini\.json: field "name": "other" does not match the file name "mini\.json"/],
      [{ ...GOOD, related: ['ghost'] }, /mini\.json: field "related\[0\]": unknown task "ghost"/],
    ];
    for (const [body, re] of cases) {
      const err = errorOf(body);
      expect(err.code).toBe('BAD_FILE');
      expect(err.message).toMatch(re);
    }
  });

  it('reports a missing directory', () => {
    expect(() => listTasks('/definitely/not/here')).toThrow(/tasks directory not found/);
  });
});
