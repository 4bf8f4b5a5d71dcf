import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  booleanShapes,
  canGenerateBbhBoolean,
  evalBoolean,
  groupBoolean,
  reduceBooleanStep,
} from '../../src/tasks/generators/boolean.ts';
import { getTask, taskExamples } from '../../src/tasks/index.ts';
import { BBH_DIR, HAVE_BBH, oracleBool } from './oracles.ts';

describe('boolean grammar', () => {
  it('enumerates each 8-token expression shape exactly once', () => {
    const shapes = booleanShapes(8).map((s) => s.join(' '));
    expect(new Set(shapes).size).toBe(shapes.length);
    // 309 shapes, 2122 expressions once constants are filled in (cross-checked by brute force over
    // all 6^8 token strings with an independent parser while writing this).
    expect(shapes.length).toBe(309);
    expect(booleanShapes(8).reduce((s, sh) => s + 2 ** sh.filter((t) => t === 'C').length, 0)).toBe(2122);
  });

  it('every enumerated shape is accepted by the independent evaluator', () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) {
      for (const s of booleanShapes(n)) {
        const expr = s.map((t) => (t === 'C' ? 'True' : t)).join(' ');
        expect(evalBoolean(expr)).toBe(oracleBool(expr));
      }
    }
  });

  it('rejects malformed expressions', () => {
    expect(() => evalBoolean('True and')).toThrow(/unexpected end/);
    expect(() => evalBoolean('( True')).toThrow(/expected "\)"/);
    expect(() => evalBoolean('True False')).toThrow(/unexpected "False"/);
    expect(() => evalBoolean('true')).toThrow(/unexpected token "true"/);
    expect(canGenerateBbhBoolean('True and True is')).toBe(false); // wrong length
    expect(canGenerateBbhBoolean('not ( True ) and ( True )')).toBe(false); // no " is"
    expect(canGenerateBbhBoolean('True and and True or True or True is')).toBe(false); // not a sentence of the grammar
  });

  it('follows Python precedence (not > and > or)', () => {
    expect(evalBoolean('True or False and False')).toBe('True');
    expect(evalBoolean('not True or True')).toBe('True');
    expect(evalBoolean('not ( True or True )')).toBe('False');
    expect(evalBoolean('False and not False or True')).toBe('True');
    expect(evalBoolean('not not not True')).toBe('False');
  });

  it('groups and reduces without changing the value', () => {
    expect(groupBoolean('True or False and not True')).toBe('True or ( False and not True )');
    expect(groupBoolean('True and False and True')).toBe('( True and False ) and True');
    expect(groupBoolean('not ( True or False )')).toBe('not ( True or False )');
    expect(reduceBooleanStep('not ( True and False ) or True')).toBe('not False or True');
    expect(reduceBooleanStep('( ( not True ) )')).toBe('( False )');
    for (const s of booleanShapes(7)) {
      const expr = s.map((t, i) => (t === 'C' ? (i % 3 ? 'True' : 'False') : t)).join(' ');
      expect(oracleBool(groupBoolean(expr))).toBe(oracleBool(expr));
      if (expr.includes('(')) expect(oracleBool(reduceBooleanStep(expr))).toBe(oracleBool(expr));
    }
  });
});

describe('boolean_expressions target', () => {
  const task = getTask('boolean_expressions');

  it('generates inputs in BBH format with correct, balanced labels', () => {
    for (const split of ['train', 'test'] as const) {
      const ex = taskExamples(task, split);
      for (const e of ex) {
        expect(canGenerateBbhBoolean(e.input)).toBe(true);
        expect(e.target).toBe(oracleBool(e.input.slice(0, -' is'.length)));
      }
      const trues = ex.filter((e) => e.target === 'True').length;
      expect(trues).toBe(ex.length / 2);
    }
  });

  it.skipIf(!HAVE_BBH)('covers every real BBH input, whose labels the oracle reproduces', () => {
    const bbh = JSON.parse(readFileSync(`${BBH_DIR}/boolean_expressions.json`, 'utf8')) as {
      examples: Array<{ input: string; target: string }>;
    };
    expect(bbh.examples).toHaveLength(250);
    for (const e of bbh.examples) {
      expect(canGenerateBbhBoolean(e.input), e.input).toBe(true);
      expect(oracleBool(e.input.slice(0, -' is'.length))).toBe(e.target);
      expect(evalBoolean(e.input.slice(0, -' is'.length))).toBe(e.target);
    }
  });
});

describe('upstream boolean tasks and BBH-length spans', () => {
  /** Every contiguous 8-token window of an upstream input that is a complete BBH-format expression. */
  const bbhSpans = (input: string): string[] => {
    const tokens = input.split(/\s+/);
    const out: string[] = [];
    for (let i = 0; i + 8 <= tokens.length; i++) {
      const window = tokens.slice(i, i + 8).join(' ');
      if (canGenerateBbhBoolean(`${window} is`)) out.push(window);
    }
    return out;
  };

  it('bool_and draws 9–12-token expressions, none holding a complete 8-token expression', () => {
    const task = getTask('bool_and');
    const inputs = taskExamples(task, 'train').map((e) => e.input);
    const lengths = new Set(inputs.map((s) => s.split(/\s+/).filter((t) => /^(True|False|not|and)$/.test(t)).length));
    expect([...lengths].some((n) => n > 8)).toBe(true);
    expect(inputs.flatMap(bbhSpans)).toEqual([]);
  });

  it('without avoidSpans the same task would contain them (the option does the work)', () => {
    const task = getTask('bool_and');
    const loose = { ...task, params: { ...task.params, avoidSpans: [] } };
    expect(taskExamples(loose, 'train').flatMap((e) => bbhSpans(e.input)).length).toBeGreaterThan(0);
  });
});
