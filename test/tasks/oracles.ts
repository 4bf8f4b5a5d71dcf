/**
 * Independent solvers for the test suite, written differently from the generators (shunting-yard
 * instead of recursive descent, regex parsing of the rendered text instead of structured
 * instances), so that a label bug in a generator is not reproduced by the check. Each one is also
 * validated against the real BBH labels where a BBH file exists.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/bbh next to the repository (evaluation data; never used to build training data). */
export const BBH_DIR = process.env.LORAHUB_BBH_DIR ?? fileURLToPath(new URL('../../../shared/bbh/', import.meta.url));
export const HAVE_BBH = existsSync(`${BBH_DIR}/boolean_expressions.json`);

/** Python semantics via shunting-yard: not (unary, right-assoc) > and > or. */
export function oracleBool(expression: string): 'True' | 'False' {
  const prec: Record<string, number> = { or: 1, and: 2, not: 3 };
  const output: string[] = [];
  const ops: string[] = [];
  for (const t of expression.trim().split(/\s+/)) {
    if (t === 'True' || t === 'False') output.push(t);
    else if (t === 'not') ops.push(t);
    else if (t === 'and' || t === 'or') {
      while (ops.length && ops[ops.length - 1] !== '(' && prec[ops[ops.length - 1]] >= prec[t]) output.push(ops.pop()!);
      ops.push(t);
    } else if (t === '(') ops.push(t);
    else if (t === ')') {
      while (ops[ops.length - 1] !== '(') output.push(ops.pop()!);
      ops.pop();
    } else throw new Error(`bad token ${t}`);
  }
  while (ops.length) output.push(ops.pop()!);
  const stack: boolean[] = [];
  for (const t of output) {
    if (t === 'True' || t === 'False') stack.push(t === 'True');
    else if (t === 'not') stack.push(!stack.pop()!);
    else {
      const b = stack.pop()!;
      const a = stack.pop()!;
      stack.push(t === 'and' ? a && b : a || b);
    }
  }
  if (stack.length !== 1) throw new Error(`bad expression ${expression}`);
  return stack[0] ? 'True' : 'False';
}

/** Integer arithmetic via shunting-yard; "-7" after an operator or "(" is a literal. */
export function oracleArith(expression: string): number {
  const tokens = expression.replace(/\(/g, ' ( ').replace(/\)/g, ' ) ').trim().split(/\s+/);
  const prec: Record<string, number> = { '+': 1, '-': 1, '*': 2 };
  const output: Array<number | string> = [];
  const ops: string[] = [];
  for (const t of tokens) {
    if (/^-?\d+$/.test(t)) output.push(Number(t));
    else if (t in prec) {
      while (ops.length && ops[ops.length - 1] !== '(' && prec[ops[ops.length - 1]] >= prec[t]) output.push(ops.pop()!);
      ops.push(t);
    } else if (t === '(') ops.push(t);
    else if (t === ')') {
      while (ops[ops.length - 1] !== '(') output.push(ops.pop()!);
      ops.pop();
    } else throw new Error(`bad token ${t}`);
  }
  while (ops.length) output.push(ops.pop()!);
  const stack: number[] = [];
  for (const t of output) {
    if (typeof t === 'number') stack.push(t);
    else {
      const b = stack.pop()!;
      const a = stack.pop()!;
      stack.push(t === '+' ? a + b : t === '-' ? a - b : a * b);
    }
  }
  return stack[0] + 0; // -0 → 0
}

/** Closers for the open brackets of a valid prefix, or undefined if the prefix is invalid. */
export function oracleDyck(sequence: string): string | undefined {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{', '>': '<' };
  const closeOf: Record<string, string> = { '(': ')', '[': ']', '{': '}', '<': '>' };
  const stack: string[] = [];
  for (const t of sequence.split(' ')) {
    if (t in closeOf) stack.push(t);
    else if (stack.pop() !== pairs[t]) return undefined;
  }
  return stack.reverse().map((t) => closeOf[t]).join(' ');
}

/** web_of_lies from the question text: walks the sentences, tracking who is honest. */
export function oracleWebOfLies(input: string): 'Yes' | 'No' {
  const honest = new Map<string, boolean>();
  const sentences = input.replace(/^Question: /, '').split(/(?<=[.?])\s+/);
  let answer: boolean | undefined;
  for (const s of sentences) {
    let m: RegExpMatchArray | null;
    if ((m = s.match(/^(\w+) (tells the truth|lies)\.$/))) honest.set(m[1], m[2] === 'tells the truth');
    else if ((m = s.match(/^(\w+) says (\w+) (tells the truth|lies)\.$/))) {
      const claimTrue = honest.get(m[2])! === (m[3] === 'tells the truth');
      honest.set(m[1], claimTrue);
    } else if ((m = s.match(/^Does (\w+) tell the truth\?$/))) answer = honest.get(m[1]);
    else throw new Error(`unparsed sentence: ${s}`);
  }
  if (answer === undefined) throw new Error(`no question in ${input}`);
  return answer ? 'Yes' : 'No';
}

export interface NavStep {
  kind: 'face' | 'move' | 'turn';
  n?: number;
  dir?: string;
}

/** Parses navigate sentences ("Always face forward.", "Take 3 steps left.", "Turn around."). */
export function parseNavigate(instructions: string): NavStep[] {
  return instructions.split(/(?<=\.)\s+/).map((s) => {
    let m: RegExpMatchArray | null;
    if (s === 'Always face forward.') return { kind: 'face' };
    if ((m = s.match(/^Take (\d+) steps?(?: (forward|backward|left|right))?\.$/))) {
      if (m[2] === undefined && m[1] === '1' && s.includes('steps')) throw new Error(`bad plural: ${s}`);
      return { kind: 'move', n: Number(m[1]), dir: m[2] };
    }
    if ((m = s.match(/^Turn (left|right|around)\.$/))) return { kind: 'turn', dir: m[1] };
    throw new Error(`unparsed: ${s}`);
  });
}

/** Complex-number walk: heading is a unit complex number, turning multiplies by ±i. */
export function oracleNavigate(instructions: string): 'Yes' | 'No' {
  let re = 0;
  let im = 0;
  let hr = 0; // heading (0, 1) = forward
  let hi = 1;
  for (const s of parseNavigate(instructions)) {
    if (s.kind === 'turn') {
      // left: multiply by i; right: by -i; around: by -1.
      if (s.dir === 'left') [hr, hi] = [-hi, hr];
      else if (s.dir === 'right') [hr, hi] = [hi, -hr];
      else [hr, hi] = [-hr, -hi];
    } else if (s.kind === 'move') {
      const n = s.n!;
      const [dr, di] =
        s.dir === undefined || s.dir === 'forward'
          ? [hr, hi]
          : s.dir === 'backward'
            ? [-hr, -hi]
            : s.dir === 'left'
              ? [-hi, hr]
              : [hi, -hr];
      re += n * dr;
      im += n * di;
    }
  }
  return re === 0 && im === 0 ? 'Yes' : 'No';
}

const NUMBER_WORDS: Record<string, number> = { a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10 };

/** object_counting: parses "I have … . How many X do I have?" and counts with a category lookup. */
export function oracleObjectCounting(input: string, categoryOf: (noun: string) => string | undefined): number {
  const m = input.match(/^I have (.*)\. How many (.*) do I have\?$/);
  if (!m) throw new Error(`unparsed: ${input}`);
  let total = 0;
  for (const part of m[1].split(/, and |, /)) {
    const [qty, ...rest] = part.split(' ');
    const n = NUMBER_WORDS[qty];
    if (n === undefined) throw new Error(`bad quantity in ${part}`);
    if (categoryOf(rest.join(' ')) === m[2]) total += n;
  }
  return total;
}

export interface TrackingParse {
  frame: string;
  items: string[];
  swaps: Array<[number, number]>;
  asked: number;
  answer: string;
}

const PEOPLE = ['Alice', 'Bob', 'Claire'];

/** tracking_shuffled_objects_three_objects: parses the story, replays the swaps. */
export function oracleTracking(input: string): TrackingParse {
  const [story, optionText] = input.split('\nOptions:\n');
  const items = optionText.split('\n').map((l) => l.replace(/^\([A-C]\) /, ''));
  const swaps = [...story.matchAll(/(?:First|Then|Finally), (Alice|Bob|Claire) and (Alice|Bob|Claire) (?:swap|switch|trade)/g)].map(
    (m) => [PEOPLE.indexOf(m[1]), PEOPLE.indexOf(m[2])] as [number, number],
  );
  const askedMatch = story.match(/At the end of the \w+, (Alice|Bob|Claire) (?:has|is)/);
  if (!askedMatch || swaps.length !== 3 || items.length !== 3) throw new Error(`unparsed: ${input}`);
  const asked = PEOPLE.indexOf(askedMatch[1]);
  const frame = story.slice('Alice, Bob, and Claire '.length, story.indexOf('.'));
  const holder = [0, 1, 2];
  for (const [a, b] of swaps) [holder[a], holder[b]] = [holder[b], holder[a]];
  return { frame, items, swaps, asked, answer: `(${'ABC'[holder[asked]]})` };
}
