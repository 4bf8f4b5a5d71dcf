/**
 * Target tasks: our generators print BBH's exact format, and their labels agree with independent
 * solvers that are themselves checked against BBH's own labels.
 */
import { describe, expect, it } from 'vitest';
import { closeAll, dyckState } from '../../src/tasks/generators/brackets.ts';
import { bbhList } from '../../src/tasks/generators/counting.ts';
import { renderInstruction, type Instruction } from '../../src/tasks/generators/navigate.ts';
import { FRAMES, tellStory } from '../../src/tasks/generators/shuffle.ts';
import { chainStatements } from '../../src/tasks/generators/truth.ts';
import { CATEGORIES, ITEMS } from '../../src/tasks/generators/vocab.ts';
import { sortWords } from '../../src/tasks/generators/words.ts';
import { getGenerator, getTask, instanceCore, loadExamplesFile, taskExamples, type TextExample } from '../../src/tasks/index.ts';
import {
  BBH_DIR,
  HAVE_BBH,
  oracleArith,
  oracleDyck,
  oracleNavigate,
  oracleObjectCounting,
  oracleTracking,
  oracleWebOfLies,
  parseNavigate,
} from './oracles.ts';

const TARGETS = [
  'boolean_expressions',
  'web_of_lies',
  'navigate',
  'object_counting',
  'dyck_languages',
  'word_sorting',
  'multistep_arithmetic_two',
  'tracking_shuffled_objects_three_objects',
];

const generated = (name: string): TextExample[] => {
  const task = getTask(name);
  return [...taskExamples(task, 'train'), ...taskExamples(task, 'test')];
};
const real = (name: string): TextExample[] => loadExamplesFile(`${BBH_DIR}/${name}.json`);

/** Our category of a noun, by singular or plural form. */
function ourCategory(noun: string): string | undefined {
  for (const c of CATEGORIES) {
    if (ITEMS[c].some((i) => i.bare === noun || i.many === noun)) return c;
  }
  return undefined;
}

describe('target tasks', () => {
  it('are all registered as targets with BBH split sizes', () => {
    for (const name of TARGETS) {
      const t = getTask(name);
      expect(t.kind).toBe('target');
      expect(t.splits).toEqual({ train: 50, test: 250 });
      expect(t.templates).toBeUndefined();
      // The task file spells out BBH's format, and it is the generator's own.
      expect(t.instruction).toBe(getGenerator(t.generator).defaultTemplate);
    }
  });

  it.skipIf(!HAVE_BBH).each(TARGETS)('%s: every real BBH input fits our template', (name) => {
    const task = getTask(name);
    for (const e of real(name)) expect(instanceCore(task, e.input), e.input).toBeDefined();
  });

  describe('web_of_lies', () => {
    it.skipIf(!HAVE_BBH)('oracle reproduces BBH; BBH text re-renders exactly with our wording', () => {
      for (const e of real('web_of_lies')) {
        expect(oracleWebOfLies(e.input)).toBe(e.target);
        const sentences = e.input.slice('Question: '.length).split(/(?<=\.) /);
        const names = sentences.slice(0, 5).map((s) => s.split(' ')[0]);
        const claims = sentences.slice(1, 5).map((s) => s.endsWith('tells the truth.'));
        const statements = chainStatements(names, sentences[0].endsWith('tells the truth.'), claims);
        expect(`Question: ${statements} Does ${names[4]} tell the truth?`).toBe(e.input);
      }
    });
    it('generated labels are correct and balanced', () => {
      const ex = generated('web_of_lies');
      for (const e of ex) expect(oracleWebOfLies(e.input)).toBe(e.target);
      expect(ex.filter((e) => e.target === 'Yes').length).toBe(150);
      for (const e of ex) expect(e.input).toMatch(/^Question: (\w+ (tells the truth|lies)\. )(\w+ says \w+ (tells the truth|lies)\. ){4}Does \w+ tell the truth\?$/);
    });
  });

  describe('navigate', () => {
    const prefix = 'If you follow these instructions, do you return to the starting point? ';
    const suffix = '\nOptions:\n- Yes\n- No';
    const toInstruction = (s: ReturnType<typeof parseNavigate>[number]): Instruction =>
      s.kind === 'turn'
        ? { kind: 'turn', turn: s.dir as 'left' | 'right' | 'around' }
        : { kind: 'move', n: s.n!, dir: s.dir as Instruction extends { dir?: infer D } ? D : never };
    it.skipIf(!HAVE_BBH)('oracle reproduces BBH; BBH text re-renders exactly with our wording', () => {
      for (const e of real('navigate')) {
        const body = e.input.slice(prefix.length, -suffix.length);
        expect(oracleNavigate(body)).toBe(e.target);
        const rendered = parseNavigate(body).map((s) => (s.kind === 'face' ? 'Always face forward.' : renderInstruction(toInstruction(s))));
        expect(prefix + rendered.join(' ') + suffix).toBe(e.input);
      }
    });
    it('generated labels are correct, 42% Yes, both kinds of walk', () => {
      const ex = generated('navigate');
      for (const e of ex) {
        expect(e.input.startsWith(prefix) && e.input.endsWith(suffix)).toBe(true);
        const body = e.input.slice(prefix.length, -suffix.length);
        expect(oracleNavigate(body)).toBe(e.target);
        const steps = parseNavigate(body);
        // Like BBH: either "Always face forward." and directed moves, or plain moves and turns.
        if (steps[0].kind === 'face') expect(steps.slice(1).every((s) => s.kind === 'move' && s.dir)).toBe(true);
        else {
          expect(steps.every((s) => s.kind === 'turn' || (s.kind === 'move' && !s.dir))).toBe(true);
          expect(steps.some((s) => s.kind === 'move')).toBe(true);
        }
        expect(steps.length).toBeGreaterThanOrEqual(3);
        expect(steps.length).toBeLessThanOrEqual(10);
      }
      expect(taskExamples(getTask('navigate'), 'test').filter((e) => e.target === 'Yes').length).toBe(105);
      const faceForward = ex.filter((e) => e.input.includes('Always face forward.')).length;
      expect(faceForward / ex.length).toBeGreaterThan(0.35);
      expect(faceForward / ex.length).toBeLessThan(0.65);
    });
  });

  describe('object_counting', () => {
    it.skipIf(!HAVE_BBH)('BBH lists use our list style (serial comma, even for two items)', () => {
      for (const e of real('object_counting')) {
        const items = /^I have (.*)\. How many/.exec(e.input)![1];
        expect(bbhList(items.split(/, and |, /))).toBe(items);
      }
    });
    it('generated labels are correct', () => {
      for (const e of generated('object_counting')) {
        expect(String(oracleObjectCounting(e.input, ourCategory))).toBe(e.target);
      }
    });
  });

  describe('dyck_languages', () => {
    const prefix = 'Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: ';
    it.skipIf(!HAVE_BBH)('oracle and our closer reproduce BBH', () => {
      for (const e of real('dyck_languages')) {
        const seq = e.input.slice(prefix.length);
        expect(oracleDyck(seq)).toBe(e.target);
        expect(closeAll(dyckState(seq.split(' ')).stack)).toBe(e.target);
      }
    });
    it('generated inputs are valid prefixes with 1-3 open; labels correct', () => {
      const open = new Map<number, number>();
      for (const e of generated('dyck_languages')) {
        expect(e.input.startsWith(prefix)).toBe(true);
        const seq = e.input.slice(prefix.length);
        expect(oracleDyck(seq)).toBe(e.target);
        const k = e.target.split(' ').length;
        open.set(k, (open.get(k) ?? 0) + 1);
        expect(seq.split(' ').length).toBeGreaterThanOrEqual(2);
        expect(Buffer.byteLength(e.input)).toBeLessThanOrEqual(200);
      }
      expect([...open.keys()].sort()).toEqual([1, 2, 3]);
    });
  });

  describe('word_sorting', () => {
    const prefix = 'Sort the following words alphabetically: List: ';
    it.skipIf(!HAVE_BBH)('code-point sort reproduces BBH', () => {
      for (const e of real('word_sorting')) expect(sortWords(e.input.slice(prefix.length).split(' ')).join(' ')).toBe(e.target);
    });
    it('generated labels are correct; lists of 2-20 distinct words', () => {
      for (const e of generated('word_sorting')) {
        const words = e.input.slice(prefix.length).split(' ');
        expect(new Set(words).size).toBe(words.length);
        expect(words.length).toBeGreaterThanOrEqual(2);
        expect(words.length).toBeLessThanOrEqual(20);
        const expected = words.slice().sort((a, b) => (a === b ? 0 : a < b ? -1 : 1)).join(' ');
        expect(e.target).toBe(expected);
      }
    });
  });

  describe('multistep_arithmetic_two', () => {
    const shape = /^\(\((-?\d [-+*] ){3}-?\d\) [-+*] \((-?\d [-+*] ){3}-?\d\)\) =$/;
    it.skipIf(!HAVE_BBH)('oracle reproduces BBH; BBH inputs have our shape', () => {
      for (const e of real('multistep_arithmetic_two')) {
        expect(e.input).toMatch(shape);
        expect(String(oracleArith(e.input.slice(0, -2)))).toBe(e.target);
      }
    });
    it('generated labels are correct', () => {
      for (const e of generated('multistep_arithmetic_two')) {
        expect(e.input).toMatch(shape);
        expect(String(oracleArith(e.input.slice(0, -2)))).toBe(e.target);
      }
    });
  });

  describe('tracking_shuffled_objects_three_objects', () => {
    it.skipIf(!HAVE_BBH)('oracle reproduces BBH; every BBH story re-renders exactly from one of our frames', () => {
      const frames = new Set<string>();
      for (const e of real('tracking_shuffled_objects_three_objects')) {
        const p = oracleTracking(e.input);
        expect(p.answer).toBe(e.target);
        const frame = FRAMES.find((f) => f.intro.startsWith(p.frame));
        expect(frame, p.frame).toBeDefined();
        frames.add(frame!.name);
        const { story, options } = tellStory(frame!, p.items, p.swaps, p.asked);
        expect(`${story}\nOptions:\n${options}`).toBe(e.input);
      }
      expect(frames.size).toBe(5);
    });
    it('generated labels are correct and uniform', () => {
      const ex = generated('tracking_shuffled_objects_three_objects');
      for (const e of ex) expect(oracleTracking(e.input).answer).toBe(e.target);
      const test = taskExamples(getTask('tracking_shuffled_objects_three_objects'), 'test');
      for (const l of ['(A)', '(B)', '(C)']) expect(test.filter((e) => e.target === l).length).toBeGreaterThanOrEqual(83);
    });
  });
});
