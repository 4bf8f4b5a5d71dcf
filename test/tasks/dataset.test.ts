import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';
import {
  LeakIndex,
  fewShot,
  drawExamples,
  findLeaks,
  withFormats,
  getTask,
  listTasks,
  loadExamplesFile,
  sampleExamples,
  taskExamples,
  type TaskDef,
} from '../../src/tasks/index.ts';
import { BBH_DIR, HAVE_BBH } from './oracles.ts';

const tasks = listTasks();
const upstream = tasks.filter((t) => t.kind === 'upstream');
const targets = tasks.filter((t) => t.kind === 'target');

describe('splits', () => {
  it.each(tasks.map((t) => [t.name, t] as const))('%s: sizes, disjoint splits, distinct test inputs', (_n, task) => {
    const train = taskExamples(task, 'train');
    const test = taskExamples(task, 'test');
    expect(train).toHaveLength(task.splits.train);
    expect(test).toHaveLength(task.splits.test);
    const testInputs = new Set(test.map((e) => e.input));
    expect(testInputs.size).toBe(test.length);
    for (const e of train) expect(testInputs.has(e.input)).toBe(false);
    if (task.kind === 'target') expect(new Set(train.map((e) => e.input)).size).toBe(train.length);
    for (const e of [...train, ...test]) {
      expect(e.input.length).toBeGreaterThan(0);
      expect(e.target.length).toBeGreaterThan(0);
      if (task.answer.type === 'choice') expect(task.answer.choices).toContain(e.target);
    }
  });

  it('label counts follow answer.weights exactly', () => {
    for (const t of tasks) {
      if (t.answer.type !== 'choice' || !t.answer.weights) continue;
      const { choices, weights } = t.answer;
      const total = weights.reduce((s, w) => s + w, 0);
      for (const split of ['train', 'test'] as const) {
        const ex = taskExamples(t, split);
        choices.forEach((c, i) => {
          const n = ex.filter((e) => e.target === c).length;
          expect(Math.abs(n - (weights[i] / total) * ex.length), `${t.name} ${split} ${c}`).toBeLessThan(1);
        });
      }
    }
  });
});

describe('determinism', () => {
  it('the same definition gives the same data; another seed gives other data', () => {
    const task = getTask('boolean_expressions');
    // A structurally equal copy bypasses nothing: the data is a pure function of the definition.
    const copy: TaskDef = JSON.parse(JSON.stringify(task)) as TaskDef;
    expect(taskExamples(copy, 'test')).toEqual(taskExamples(task, 'test'));
    expect(taskExamples(copy, 'train')).toEqual(taskExamples(task, 'train'));
    const other = { ...copy, seed: copy.seed + 1 };
    expect(taskExamples(other, 'test')).not.toEqual(taskExamples(task, 'test'));
  });

  it('regenerates identically in a fresh process (no hidden state)', async () => {
    const { execFileSync } = await import('node:child_process');
    const script =
      "import { getTask, taskExamples } from './src/tasks/index.ts';" +
      "const t = getTask('navigate'); process.stdout.write(JSON.stringify(taskExamples(t, 'test').slice(0, 20)));";
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: repo });
    expect(JSON.parse(out)).toEqual(taskExamples(getTask('navigate'), 'test').slice(0, 20));
  });

  it('returns copies: callers cannot corrupt the cache', () => {
    const task = getTask('web_of_lies');
    const a = taskExamples(task, 'test');
    a.length = 0;
    expect(taskExamples(task, 'test')).toHaveLength(250);
  });
});

describe('definitions built in code', () => {
  it('are validated like files before any data is drawn', () => {
    const base = getTask('bool_and');
    expect(() => taskExamples({ ...base, name: 'adhoc', templates: ['{expr}'] }, 'test')).toThrow(
      /task "adhoc": field "templates\[0\]": unknown placeholder \{expr\}/,
    );
    expect(() => taskExamples({ ...base, name: 'adhoc2', splits: { train: 10, test: 5000 } }, 'test')).toThrow(
      /task "adhoc2": drew only \d+ of 5000 test examples/,
    );
  });
});

describe('fewShot', () => {
  const task = getTask('boolean_expressions');
  it('draws k distinct train examples, fixed by the seed', () => {
    const a = fewShot(task, 5, 1);
    expect(a).toHaveLength(5);
    expect(new Set(a.map((e) => e.input)).size).toBe(5);
    const train = new Set(taskExamples(task, 'train').map((e) => e.input));
    for (const e of a) expect(train.has(e.input)).toBe(true);
    expect(fewShot(task, 5, 1)).toEqual(a);
    expect(fewShot(task, 5, 2)).not.toEqual(a);
  });
  it('balanced: the answers take turns (3 and 2 of 5), fixed by the seed', () => {
    for (const seed of [1, 2, 3]) {
      const b = fewShot(task, 5, seed, 'balanced');
      const trues = b.filter((e) => e.target === 'True').length;
      expect([2, 3]).toContain(trues);
      expect(new Set(b.map((e) => e.input)).size).toBe(5);
      expect(fewShot(task, 5, seed, 'balanced')).toEqual(b);
    }
    // A group that runs out leaves the rotation: 1 "b" and 4 "a" from a pool with one "b".
    const pool = ['a', 'a', 'a', 'a', 'a', 'b'].map((target, i) => ({ target, i }));
    const got = drawExamples(pool, 5, Rng.fromSeed(0), 'balanced');
    expect(got.filter((e) => e.target === 'b')).toHaveLength(1);
    expect(new Set(got.map((e) => e.i)).size).toBe(5);
  });
  it('rejects bad k and seeds', () => {
    expect(() => fewShot(task, 51, 0)).toThrow(/only 50 distinct train examples/);
    expect(() => fewShot(task, 0, 0)).toThrow(LorahubError);
    expect(() => fewShot(task, 2, 0.5)).toThrow(/seed must be an integer/);
  });
  it('samples distinct inputs from an upstream train split that repeats some', () => {
    const chain = getTask('bool_not_chain');
    const s = sampleExamples(chain, 'train', 20, 3);
    expect(new Set(s.map((e) => e.input)).size).toBe(20);
  });
});

describe('formats', () => {
  const task = getTask('bool_and');
  const formats = task.formats ?? [];

  it("join a module's templates and leave the base's data as written", () => {
    expect(formats.length).toBeGreaterThan(0);
    const view = withFormats(task);
    expect(view.formats).toBeUndefined();
    expect(view.templates).toEqual([...(task.templates ?? []), ...formats]);
    // The base's examples never use a format: none ends like the terse "{expression} =".
    expect(taskExamples(task, 'train').some((e) => e.input.endsWith(' ='))).toBe(false);
    expect(taskExamples(view, 'train').some((e) => e.input.endsWith(' ='))).toBe(true);
  });

  it('leave a task without formats unchanged', () => {
    const plain = getTask('sort_words');
    expect(plain.formats).toBeUndefined();
    expect(withFormats(plain)).toBe(plain);
  });
});

describe('leakage', () => {
  // Built once: every upstream task's training inputs, as the base sees them and as its module
  // does (formats included).
  const index = new LeakIndex(
    upstream.flatMap((t) => [t, withFormats(t)].map((v) => ({ task: t.name, inputs: taskExamples(v, 'train').map((e) => e.input) }))),
  );

  it.each(targets.map((t) => [t.name, t] as const))('%s: no generated target input occurs in upstream training data', (_n, task) => {
    const inputs = [...taskExamples(task, 'test'), ...taskExamples(task, 'train')].map((e) => e.input);
    expect(findLeaks(task, inputs, index)).toEqual([]);
  });

  it.skipIf(!HAVE_BBH).each(targets.map((t) => [t.name, t] as const))(
    '%s: no real BBH input occurs in upstream training data',
    (_n, task) => {
      const inputs = loadExamplesFile(`${BBH_DIR}/${task.name}.json`).map((e) => e.input);
      expect(findLeaks(task, inputs, index)).toEqual([]);
    },
  );

  it('detects a planted leak (the check can fail)', () => {
    const bool = getTask('boolean_expressions');
    const victim = taskExamples(bool, 'test')[0].input;
    const expr = victim.slice(0, -' is'.length);
    const planted = new LeakIndex([{ task: 'planted', inputs: [`Evaluate: ${expr}?`] }]);
    expect(findLeaks(bool, [victim], planted)).toHaveLength(1);
    const dyck = getTask('dyck_languages');
    const dyckInput = taskExamples(dyck, 'test')[0].input;
    const seq = dyckInput.slice(dyckInput.indexOf('Input: ') + 'Input: '.length);
    expect(findLeaks(dyck, [dyckInput], new LeakIndex([{ task: 'p', inputs: [`Close: ${seq}\nAnswer:`] }]))).toHaveLength(1);
    // A bracket string that merely contains the prefix is a different instance.
    expect(findLeaks(dyck, [dyckInput], new LeakIndex([{ task: 'p', inputs: [`Close: ${seq} ( )`] }]))).toHaveLength(0);
  });
});
