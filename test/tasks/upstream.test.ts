/**
 * Upstream labels, re-derived from the rendered input text: the fields are pulled back out of the
 * input with the task's own templates, then an independent solver (oracles.ts or a few lines
 * here) computes the answer.
 */
import { describe, expect, it } from 'vitest';
import { extractFields } from '../../src/tasks/template.ts';
import { CATEGORIES, CATEGORY_SINGULAR, ITEMS, NAMES } from '../../src/tasks/generators/vocab.ts';
import { Rng } from '../../src/rng.ts';
import { getGenerator, listTasks, taskExamples, withFormats, type TaskDef } from '../../src/tasks/index.ts';
import { oracleArith, oracleBool, oracleDyck, oracleWebOfLies } from './oracles.ts';

type Fields = Record<string, string>;

const WORD_NUMBERS: Record<string, number> = {};
['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen',
  'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'].forEach((w, i) => (WORD_NUMBERS[w] = i));
['twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'].forEach((w, i) => (WORD_NUMBERS[w] = 20 + 10 * i));
const wordsToNumber = (w: string): number =>
  w === 'a' || w === 'an' ? 1 : w.split('-').reduce((s, part) => s + WORD_NUMBERS[part], 0);

function categoryOfNoun(noun: string): string | undefined {
  return CATEGORIES.find((c) => ITEMS[c].some((i) => i.bare === noun || i.many === noun || i.one === noun));
}

const sortCodePoint = (xs: string[]): string[] => xs.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Every assignment of True/False to the constant slots gives the same value for both. */
function equivalent(a: string, b: string): boolean {
  const slots = (s: string) => s.split(' ').filter((t) => t === 'True' || t === 'False').length;
  const n = slots(a);
  if (slots(b) !== n) return false;
  for (let mask = 0; mask < 2 ** n; mask++) {
    const fill = (s: string) => {
      let i = 0;
      return s
        .split(' ')
        .map((t) => (t === 'True' || t === 'False' ? ((mask >> i++) & 1 ? 'True' : 'False') : t))
        .join(' ');
    };
    if (oracleBool(fill(a)) !== oracleBool(fill(b))) return false;
  }
  return true;
}

const COMPASS = ['north', 'east', 'south', 'west'];
const TURN: Record<string, number> = { left: 3, right: 1, around: 2 };

function position(moves: string): [number, number] {
  let x = 0;
  let y = 0;
  let h = 0;
  const vec = [[0, 1], [1, 0], [0, -1], [-1, 0]];
  for (const s of moves.split(/(?<=\.) /)) {
    let m: RegExpMatchArray | null;
    if ((m = s.match(/^(?:Take|Walk) (\d+) steps?(?: (forward|backward|left|right))?\.$/))) {
      const rel = { forward: 0, right: 1, backward: 2, left: 3 }[m[2] ?? 'forward']!;
      const [dx, dy] = vec[(h + rel) % 4];
      x += dx * Number(m[1]);
      y += dy * Number(m[1]);
    } else if ((m = s.match(/^Turn (left|right|around)\.$/))) h = (h + TURN[m[1]]) % 4;
    else throw new Error(`unparsed ${s}`);
  }
  return [x + 0, y + 0];
}

const ORACLES: Record<string, (f: Fields, task: TaskDef, target: string) => string | boolean> = {
  boolean_eval: (f, t) => {
    const v = oracleBool(f.expression);
    return t.params.answers === 'yes_no' ? (v === 'True' ? 'Yes' : 'No') : v;
  },
  boolean_grouping: (f, _t, target) =>
    equivalent(f.expression, target) &&
    target.replace(/[()] ?/g, '').trim() === f.expression.replace(/[()] ?/g, '').trim() &&
    // Fully grouped: under a precedence-free reading (strictly left to right inside each pair of
    // parentheses) every binary operation is already explicit, i.e. no "x and y or z" run remains.
    !/(and|or) (not )*(True|False) (and|or)/.test(target),
  boolean_reduce: (f, _t, target) =>
    oracleBool(target) === oracleBool(f.expression) &&
    target.split(' ').length < f.expression.split(' ').length &&
    (target.match(/\(/g) ?? []).length === (f.expression.match(/\(/g) ?? []).length - 1,
  arithmetic_eval: (f) => String(oracleArith(f.expression)),
  compare_numbers: (f) => String((f.relation === 'larger' ? Math.max : Math.min)(Number(f.a), Number(f.b))),
  number_words: (f) => String(wordsToNumber(f.words)),
  bracket_close_all: (f) => oracleDyck(f.sequence)!,
  bracket_balanced: (f) => (oracleDyck(f.sequence) === '' ? 'Yes' : 'No'),
  bracket_open_stack: (f) => {
    const open: Record<string, string> = { ')': '(', ']': '[', '}': '{', '>': '<' };
    return oracleDyck(f.sequence)!.split(' ').reverse().map((c) => open[c]).join(' ');
  },
  bracket_complete: (f) => oracleDyck(f.sequence)!,
  bracket_depth: (f) => {
    let d = 0;
    let max = 0;
    for (const t of f.sequence.split(' ')) max = Math.max(max, (d += '([{<'.includes(t) ? 1 : -1));
    return String(max);
  },
  sort_words: (f) => sortCodePoint(f.words.split(' ')).join(' '),
  first_alphabetical: (f) => sortCodePoint(f.words.split(', '))[0],
  letter_order: (f) => sortCodePoint([f.a, f.b])[0],
  truth_chain: (f) => oracleWebOfLies(`${f.statements} Does ${f.name} tell the truth?`),
  truth_claim: (f) => ((f.honesty === 'tells the truth') !== f.fact.includes(' is not ') ? 'Yes' : 'No'),
  steps_line: (f) => String(position(f.moves)[1]),
  grid_position: (f) => `(${position(f.moves).join(', ')})`,
  walk_turns: (f) => `(${position(f.moves).join(', ')})`,
  return_start: (f) => (position(f.moves).every((v) => v === 0) ? 'Yes' : 'No'),
  heading_turns: (f) => {
    let h = COMPASS.indexOf(f.start);
    for (const m of f.turns.matchAll(/Turn (left|right|around)\./g)) h = (h + TURN[m[1]]) % 4;
    return COMPASS[h];
  },
  count_items: (f) => String(f.items.split(', ').length),
  sum_quantities: (f) => String(f.items.split(', ').reduce((s, part) => s + wordsToNumber(part.split(' ')[0]), 0)),
  category_of: (f) => {
    const c = categoryOfNoun(f.item);
    return c ? CATEGORY_SINGULAR[c as keyof typeof CATEGORY_SINGULAR] : '?';
  },
  count_category: (f) => String(f.items.split(', ').filter((n) => categoryOfNoun(n) === f.category).length),
  swap_track: (f) => {
    // "{start} {swaps}" has no separator the template can split on, so parse them together.
    const text = `${f.start} ${f.swaps}`;
    const holds = new Map([...text.matchAll(/(\w+) has (the \w+ ball)/g)].map((m) => [m[1], m[2]]));
    for (const m of text.matchAll(/(\w+) and (\w+) swap\./g)) {
      const a = holds.get(m[1])!;
      holds.set(m[1], holds.get(m[2])!);
      holds.set(m[2], a);
    }
    return holds.get(f.person)!;
  },
  option_letter: (f) => {
    const line = f.options.split('\n').find((l) => l.slice(4) === f.answer)!;
    return line.slice(0, 3);
  },
};

const upstream = listTasks().filter((t) => t.kind === 'upstream');

describe('upstream tasks', () => {
  it('there are at least 20, each with an independent oracle', () => {
    expect(upstream.length).toBeGreaterThanOrEqual(20);
    for (const t of upstream) expect(ORACLES[t.generator], t.generator).toBeDefined();
  });

  it.each(upstream.map((t) => [t.name, withFormats(t)] as const))('%s: labels re-derived from the input text (every template and format)', (_name, task) => {
    const gen = getGenerator(task.generator);
    const templates = [task.instruction ?? gen.defaultTemplate, ...(task.templates ?? [])];
    const examples = [...taskExamples(task, 'test'), ...taskExamples(task, 'train').slice(0, 400)];
    const used = new Set<string>();
    // The most specific phrasing that matches: a bare "{sequence}" format matches every input.
    const literal = (tpl: string) => tpl.replace(/\{\w+\}/g, '').length;
    for (const e of examples) {
      const fields = templates.map((tpl) => extractFields(tpl, e.input));
      const k = fields.reduce((best, f, i) => (f !== undefined && (best < 0 || literal(templates[i]) > literal(templates[best])) ? i : best), -1);
      expect(k, e.input).toBeGreaterThanOrEqual(0);
      fields.forEach((f, i) => f && used.add(templates[i]));
      const got = ORACLES[task.generator](fields[k]!, task, e.target);
      if (typeof got === 'boolean') expect(got, `${e.input} => ${e.target}`).toBe(true);
      else expect(e.target, e.input).toBe(got);
    }
    // FLAN-style variety: every phrasing is used.
    expect(used.size).toBe(templates.length);
  });
});

describe('truth tasks: chain lengths and coined names', () => {
  const sample = (name: string, params: unknown, n: number) => {
    const draw = getGenerator(name).bind(params);
    const rng = Rng.fromSeed(3);
    return Array.from({ length: n }, () => draw(rng));
  };
  const people = (statements: string) => statements.split('. ').length;

  it('truth_chain draws the listed lengths (never five), with half the names coined when asked', () => {
    const got = sample('truth_chain', { people: [2, 3, 4, 6, 7], names: 'mixed' }, 600);
    const lengths = new Set(got.map((i) => people(i.fields.statements)));
    expect([...lengths].sort()).toEqual([2, 3, 4, 6, 7]);
    for (const i of got) expect(i.target).toBe(oracleWebOfLies(`${i.fields.statements} Does ${i.fields.name} tell the truth?`));
    const coined = got.filter((i) => !NAMES.includes(i.fields.name)).length;
    expect(coined / got.length).toBeGreaterThan(0.4);
    expect(coined / got.length).toBeLessThan(0.6);
    // Listed names by default: the shipped task's data is unchanged.
    expect(sample('truth_chain', { people: { min: 2, max: 4 } }, 200).every((i) => NAMES.includes(i.fields.name))).toBe(true);
  });

  it('refuses BBH\'s five', () => {
    expect(() => getGenerator('truth_chain').bind({ people: [4, 5] })).toThrow(/5/);
    expect(() => getGenerator('truth_chain').bind({ people: { min: 2, max: 5 } })).toThrow();
  });

  it('truth_claim coins half its speakers when asked, labels unchanged', () => {
    const got = sample('truth_claim', { names: 'mixed' }, 400);
    expect(got.filter((i) => !NAMES.includes(i.fields.name)).length).toBeGreaterThan(120);
    for (const i of got) expect(i.target).toBe((i.fields.honesty === 'tells the truth') !== i.fields.fact.includes(' is not ') ? 'Yes' : 'No');
  });
});
