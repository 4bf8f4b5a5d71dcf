/**
 * Integer arithmetic with + - * and parentheses, printed the way BBH's multistep_arithmetic_two
 * prints it: "((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =", negative numbers as literals
 * ("- -6"), no space inside parentheses. Values follow Python (precedence * over + -, left
 * association); with no division every value is an exact integer in float64.
 */
import { z } from 'zod';
import { LorahubError } from '../../errors.ts';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';

export type ArithOp = '+' | '-' | '*';
type Token = number | ArithOp | '(' | ')';

/** Tokens of an expression in BBH's format; a "-" directly before a digit is a negative literal. */
export function tokenizeArithmetic(expression: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(-?\d+|[-+*()])/y;
  let pos = 0;
  const text = expression.trim();
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new LorahubError('INTERNAL', `arithmetic: unexpected "${text.slice(pos)}"`);
    const t = m[1];
    // "3 -4" never occurs in our format (binary minus is always followed by a space), so a
    // "-digits" token is a literal only where an operand is expected.
    const prev = out[out.length - 1];
    const operandExpected = prev === undefined || prev === '(' || prev === '+' || prev === '-' || prev === '*';
    if (/^-\d/.test(t) && !operandExpected) {
      out.push('-', Number(t.slice(1)));
    } else {
      out.push(/\d/.test(t) ? Number(t) : (t as ArithOp | '(' | ')'));
    }
    pos = re.lastIndex;
  }
  return out;
}

export function evalArithmetic(expression: string): number {
  const tokens = tokenizeArithmetic(expression);
  let pos = 0;
  const fail = (what: string): never => {
    throw new LorahubError('INTERNAL', `arithmetic: ${what} in "${expression}"`);
  };
  const sum = (): number => {
    let v = product();
    while (tokens[pos] === '+' || tokens[pos] === '-') {
      const op = tokens[pos++];
      const r = product();
      v = op === '+' ? v + r : v - r;
    }
    return v;
  };
  const product = (): number => {
    let v = atom();
    while (tokens[pos] === '*') {
      pos++;
      v *= atom();
    }
    return v;
  };
  const atom = (): number => {
    const t = tokens[pos++];
    if (typeof t === 'number') return t;
    if (t === '(') {
      const v = sum();
      if (tokens[pos++] !== ')') fail('expected ")"');
      return v;
    }
    return fail(`unexpected ${t === undefined ? 'end' : `"${t}"`}`);
  };
  const v = sum();
  if (pos !== tokens.length) fail('trailing tokens');
  // -0 prints as "0" anyway; normalise so callers comparing numbers are not surprised.
  return v === 0 ? 0 : v;
}

/** "(a op b op c)" in BBH spacing. */
function group(nums: readonly number[], ops: readonly ArithOp[]): string {
  let s = String(nums[0]);
  for (let i = 0; i < ops.length; i++) s += ` ${ops[i]} ${nums[i + 1]}`;
  return `(${s})`;
}

const range = z.strictObject({ min: z.number().int(), max: z.number().int() }).refine((r) => r.min <= r.max, {
  message: 'min must be <= max',
});

function drawChain(rng: Rng, n: number, lo: number, hi: number, ops: readonly ArithOp[]): { nums: number[]; ops: ArithOp[] } {
  const nums = Array.from({ length: n }, () => rng.int(lo, hi));
  const chosen = Array.from({ length: n - 1 }, () => rng.pick(ops));
  return { nums, ops: chosen };
}

export const bbhMultistepArithmetic = defineGenerator({
  name: 'bbh_multistep_arithmetic_two',
  description: 'BBH multistep_arithmetic_two: ((a o b o c o d) o (e o f o g o h)) with ints in [-9, 9].',
  fields: ['expression'],
  defaultTemplate: '{expression} =',
  core: { field: 'expression', rule: 'substring' },
  params: z.strictObject({
    groupSize: z.number().int().min(2).max(6).default(4),
    values: range.default({ min: -9, max: 9 }),
  }),
  sample(rng, p) {
    const ops: ArithOp[] = ['+', '-', '*'];
    const a = drawChain(rng, p.groupSize, p.values.min, p.values.max, ops);
    const b = drawChain(rng, p.groupSize, p.values.min, p.values.max, ops);
    const expression = `(${group(a.nums, a.ops)} ${rng.pick(ops)} ${group(b.nums, b.ops)})`;
    return { fields: { expression }, target: String(evalArithmetic(expression)) };
  },
});

export const arithmeticEval = defineGenerator({
  name: 'arithmetic_eval',
  description:
    'Value of a small integer expression: a flat chain "a o b o c", or two short parenthesised groups "(a o b) o (c o d)".',
  fields: ['expression'],
  defaultTemplate: 'Compute: {expression} =',
  params: z.strictObject({
    ops: z.array(z.enum(['+', '-', '*'])).min(1),
    operands: range,
    values: range,
    /**
     * "groups" keeps each group shorter than BBH's four operands and never nests "((", so an
     * upstream input can never contain a multistep_arithmetic_two expression.
     */
    shape: z.enum(['chain', 'groups']).default('chain'),
  }),
  sample(rng, p) {
    let expression: string;
    if (p.shape === 'chain') {
      const c = drawChain(rng, rng.int(p.operands.min, p.operands.max), p.values.min, p.values.max, p.ops);
      expression = group(c.nums, c.ops).slice(1, -1);
    } else {
      const size = (): number => Math.min(3, rng.int(p.operands.min, p.operands.max));
      const a = drawChain(rng, size(), p.values.min, p.values.max, p.ops);
      const b = drawChain(rng, size(), p.values.min, p.values.max, p.ops);
      expression = `${group(a.nums, a.ops)} ${rng.pick(p.ops)} ${group(b.nums, b.ops)}`;
    }
    return { fields: { expression }, target: String(evalArithmetic(expression)) };
  },
});

export const compareNumbers = defineGenerator({
  name: 'compare_numbers',
  description: 'The larger or the smaller of two different integers.',
  fields: ['relation', 'a', 'b'],
  defaultTemplate: 'Which number is {relation}: {a} or {b}?',
  params: z.strictObject({ values: range }).refine((p) => p.values.max > p.values.min, {
    message: 'values must hold at least two integers',
  }),
  sample(rng, p) {
    const a = rng.int(p.values.min, p.values.max);
    let b = rng.int(p.values.min, p.values.max - 1);
    if (b >= a) b++;
    const relation = rng.bool() ? 'larger' : 'smaller';
    const target = String(relation === 'larger' ? Math.max(a, b) : Math.min(a, b));
    return { fields: { relation, a: String(a), b: String(b) }, target };
  },
});

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** English words for 0..99 ("forty-two"), the way BBH writes quantities ("three bananas"). */
export function numberToWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new LorahubError('INTERNAL', `numberToWords: ${n} not in 0..99`);
  if (n < 20) return ONES[n];
  const t = TENS[Math.floor(n / 10)];
  return n % 10 === 0 ? t : `${t}-${ONES[n % 10]}`;
}

export const numberWords = defineGenerator({
  name: 'number_words',
  description: 'Write a number given in English words as digits.',
  fields: ['words'],
  defaultTemplate: 'Write the number as digits: {words}\nAnswer:',
  params: z.strictObject({ max: z.number().int().min(1).max(99).default(99) }),
  sample(rng, p) {
    const n = rng.int(0, p.max);
    return { fields: { words: numberToWords(n) }, target: String(n) };
  },
});
