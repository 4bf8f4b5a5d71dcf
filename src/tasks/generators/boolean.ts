/**
 * Boolean expressions over True/False with not/and/or and parentheses, with Python's semantics
 * (precedence not > and > or; and/or associate left). One grammar serves three purposes: the
 * parser that computes labels, the enumerator that draws expressions, and `canGenerateBbhBoolean`,
 * which tests that every real BBH input is in our generator's output space.
 *
 * Grammar (Python's or_test/and_test/not_test restricted to constants and parentheses):
 *   E := T | E 'or' T        T := N | T 'and' N        N := 'not' N | A        A := C | '(' E ')'
 * Written with left-recursive lists it is unambiguous, so enumerating it lists each token
 * sequence exactly once.
 */
import { z } from 'zod';
import { LorahubError } from '../../errors.ts';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';

export type BoolOp = 'not' | 'and' | 'or';
const TOKENS = new Set(['True', 'False', 'not', 'and', 'or', '(', ')']);

export type BoolNode =
  | { kind: 'const'; value: boolean }
  | { kind: 'not'; arg: BoolNode }
  | { kind: 'and' | 'or'; left: BoolNode; right: BoolNode }
  | { kind: 'paren'; inner: BoolNode };

export function tokenizeBoolean(expression: string): string[] {
  const tokens = expression.trim().split(/\s+/).filter((t) => t !== '');
  for (const t of tokens) {
    if (!TOKENS.has(t)) throw new LorahubError('INTERNAL', `boolean expression: unexpected token "${t}"`);
  }
  return tokens;
}

/** Recursive-descent parse of the grammar above; throws on anything else. */
export function parseBoolean(tokens: readonly string[]): BoolNode {
  let pos = 0;
  const fail = (what: string): never => {
    throw new LorahubError('INTERNAL', `boolean expression: ${what} at token ${pos} in "${tokens.join(' ')}"`);
  };
  const orExpr = (): BoolNode => {
    let node = andExpr();
    while (tokens[pos] === 'or') {
      pos++;
      node = { kind: 'or', left: node, right: andExpr() };
    }
    return node;
  };
  const andExpr = (): BoolNode => {
    let node = notExpr();
    while (tokens[pos] === 'and') {
      pos++;
      node = { kind: 'and', left: node, right: notExpr() };
    }
    return node;
  };
  const notExpr = (): BoolNode => {
    if (tokens[pos] === 'not') {
      pos++;
      return { kind: 'not', arg: notExpr() };
    }
    return atom();
  };
  const atom = (): BoolNode => {
    const t = tokens[pos];
    if (t === 'True' || t === 'False') {
      pos++;
      return { kind: 'const', value: t === 'True' };
    }
    if (t === '(') {
      pos++;
      const inner = orExpr();
      if (tokens[pos] !== ')') fail('expected ")"');
      pos++;
      return { kind: 'paren', inner };
    }
    return fail(t === undefined ? 'unexpected end' : `unexpected "${t}"`);
  };
  const node = orExpr();
  if (pos !== tokens.length) fail(`unexpected "${tokens[pos]}"`);
  return node;
}

export function evaluateBoolean(node: BoolNode): boolean {
  switch (node.kind) {
    case 'const':
      return node.value;
    case 'not':
      return !evaluateBoolean(node.arg);
    case 'and':
      return evaluateBoolean(node.left) && evaluateBoolean(node.right);
    case 'or':
      return evaluateBoolean(node.left) || evaluateBoolean(node.right);
    case 'paren':
      return evaluateBoolean(node.inner);
  }
}

/** "True" or "False", as Python would print the value of the expression. */
export function evalBoolean(expression: string): 'True' | 'False' {
  return evaluateBoolean(parseBoolean(tokenizeBoolean(expression))) ? 'True' : 'False';
}

// ---------------------------------------------------------------------------------------------
// Enumeration: every token sequence of a given length, with "C" standing for a constant.

type Nonterminal = 'E' | 'T' | 'N' | 'A';
const shapeMemo = new Map<string, string[][]>();

function shapesOf(nt: Nonterminal, n: number): string[][] {
  const key = `${nt}${n}`;
  const cached = shapeMemo.get(key);
  if (cached) return cached;
  const out: string[][] = [];
  if (n >= 1) {
    switch (nt) {
      case 'E':
        out.push(...shapesOf('T', n));
        for (let a = 1; a <= n - 2; a++) {
          for (const l of shapesOf('E', a)) for (const r of shapesOf('T', n - a - 1)) out.push([...l, 'or', ...r]);
        }
        break;
      case 'T':
        out.push(...shapesOf('N', n));
        for (let a = 1; a <= n - 2; a++) {
          for (const l of shapesOf('T', a)) for (const r of shapesOf('N', n - a - 1)) out.push([...l, 'and', ...r]);
        }
        break;
      case 'N':
        for (const r of shapesOf('N', n - 1)) out.push(['not', ...r]);
        out.push(...shapesOf('A', n));
        break;
      case 'A':
        if (n === 1) out.push(['C']);
        else if (n >= 3) for (const inner of shapesOf('E', n - 2)) out.push(['(', ...inner, ')']);
        break;
    }
  }
  shapeMemo.set(key, out);
  return out;
}

/** The longest expressions we enumerate; the shape count grows roughly fivefold per token. */
export const MAX_BOOLEAN_TOKENS = 12;

/** Every expression shape of exactly n tokens ("C" marks a constant slot). */
export function booleanShapes(n: number): readonly string[][] {
  if (!Number.isInteger(n) || n < 1 || n > MAX_BOOLEAN_TOKENS) {
    throw new LorahubError('INTERNAL', `boolean shapes: length must be 1..${MAX_BOOLEAN_TOKENS}, got ${n}`);
  }
  return shapesOf('E', n);
}

const shapeKey = (tokens: readonly string[]): string =>
  tokens.map((t) => (t === 'True' || t === 'False' ? 'C' : t)).join(' ');

const shapeSets = new Map<number, Set<string>>();

/**
 * True when `input` is a possible output of the bbh_boolean_expressions generator with this
 * token count: "<expression> is", the expression one of our grammar's shapes. Uses the very
 * shape list the generator samples from, so coverage of BBH is a property of the generator.
 */
export function canGenerateBbhBoolean(input: string, tokens = 8): boolean {
  if (!input.endsWith(' is')) return false;
  const parts = input.slice(0, -' is'.length).split(' ');
  if (parts.length !== tokens || parts.some((t) => !TOKENS.has(t))) return false;
  return completeShapes(tokens).has(shapeKey(parts));
}

/** The shapes of exactly n tokens as space-joined strings, built once per n. */
function completeShapes(n: number): Set<string> {
  let set = shapeSets.get(n);
  if (!set) {
    set = new Set(booleanShapes(n).map((s) => s.join(' ')));
    shapeSets.set(n, set);
  }
  return set;
}

// ---------------------------------------------------------------------------------------------
// Sampling.

const exprOptions = z.strictObject({
  /** Token counts to draw from. Upstream tasks avoid 8, the length of every BBH expression. */
  lengths: z.array(z.number().int().min(1).max(MAX_BOOLEAN_TOKENS)).min(1),
  /** Operators allowed in an expression. */
  ops: z.array(z.enum(['not', 'and', 'or'])).default(['not', 'and', 'or']),
  /** Operators that must each appear at least once. */
  require: z.array(z.enum(['not', 'and', 'or'])).default([]),
  parens: z.enum(['none', 'allow', 'require']).default('allow'),
  /**
   * Token counts whose complete expressions must not occur as a contiguous span. Upstream tasks
   * that draw expressions longer than BBH's 8 tokens set [8]: "not not <8-token expression>"
   * would otherwise carry a possible BBH input inside it (the leakage check's substring rule).
   */
  avoidSpans: z.array(z.number().int().min(1).max(MAX_BOOLEAN_TOKENS)).default([]),
});
type ExprOptions = z.output<typeof exprOptions>;

interface ShapePool {
  shapes: string[][];
  weights: number[];
}
const poolMemo = new Map<string, ShapePool>();

/**
 * Shapes allowed by the options, each weighted by 2^(constant slots): drawing a shape this way
 * and then constants uniformly is uniform over whole expressions, which matches BBH's spread of
 * constant counts (e.g. 1/2/3/4 constants: BBH 5/65/118/62 of 250, uniform ≈ 6/59/130/58).
 */
function shapePool(opts: ExprOptions): ShapePool {
  const key = JSON.stringify([opts.lengths, opts.ops, opts.require, opts.parens, opts.avoidSpans]);
  const cached = poolMemo.get(key);
  if (cached) return cached;
  const allowed = new Set<string>(['C', ...opts.ops]);
  if (opts.parens !== 'none') allowed.add('(').add(')');
  const shapes: string[][] = [];
  for (const n of new Set(opts.lengths)) {
    // zod may run this refinement even when a length already failed its own check; such a
    // length is reported by that check, so skip it here rather than throw a second error.
    if (!Number.isInteger(n) || n < 1 || n > MAX_BOOLEAN_TOKENS) continue;
    for (const s of booleanShapes(n)) {
      if (!s.every((t) => allowed.has(t))) continue;
      if (!opts.require.every((op) => s.includes(op))) continue;
      if (opts.parens === 'require' && !s.includes('(')) continue;
      if (opts.avoidSpans.some((k) => containsShape(s, k))) continue;
      shapes.push(s);
    }
  }
  const pool = { shapes, weights: shapes.map((s) => 2 ** s.filter((t) => t === 'C').length) };
  poolMemo.set(key, pool);
  return pool;
}

/**
 * True when some contiguous k-token window of a longer shape is itself a complete k-token shape.
 * Constants are slots, so this holds for every expression of the shape, whatever its constants.
 */
function containsShape(shape: readonly string[], k: number): boolean {
  if (shape.length <= k) return false;
  const complete = completeShapes(k);
  for (let i = 0; i + k <= shape.length; i++) {
    if (complete.has(shape.slice(i, i + k).join(' '))) return true;
  }
  return false;
}

const NO_SHAPES = { message: 'no expression has these lengths, operators and parenthesis settings' };
const hasShapes = (o: ExprOptions): boolean => shapePool(o).shapes.length > 0;
const validExprOptions = exprOptions.refine(hasShapes, NO_SHAPES);

function drawExpression(rng: Rng, opts: ExprOptions): string[] {
  const pool = shapePool(opts);
  const shape = pool.shapes[rng.weightedIndex(pool.weights)];
  return shape.map((t) => (t === 'C' ? (rng.bool() ? 'True' : 'False') : t));
}

// ---------------------------------------------------------------------------------------------
// Rewrites used as upstream skills.

function stripParens(node: BoolNode): BoolNode {
  switch (node.kind) {
    case 'const':
      return node;
    case 'not':
      return { kind: 'not', arg: stripParens(node.arg) };
    case 'and':
    case 'or':
      return { kind: node.kind, left: stripParens(node.left), right: stripParens(node.right) };
    case 'paren':
      return stripParens(node.inner);
  }
}

function printGrouped(node: BoolNode): string {
  const wrap = (n: BoolNode): string => (n.kind === 'and' || n.kind === 'or' ? `( ${printGrouped(n)} )` : printGrouped(n));
  switch (node.kind) {
    case 'const':
      return node.value ? 'True' : 'False';
    case 'not':
      return `not ${wrap(node.arg)}`;
    case 'and':
    case 'or':
      return `${wrap(node.left)} ${node.kind} ${wrap(node.right)}`;
    case 'paren':
      return printGrouped(node.inner);
  }
}

/**
 * The expression with Python's implicit grouping made explicit: every binary operation below the
 * top is parenthesised, the source's own parentheses dropped, e.g.
 * "True or False and not True" → "True or ( False and not True )".
 */
export function groupBoolean(expression: string): string {
  return printGrouped(stripParens(parseBoolean(tokenizeBoolean(expression))));
}

/**
 * One evaluation step: the leftmost innermost parenthesised group is replaced by its value, e.g.
 * "not ( True and False ) or True" → "not False or True".
 */
export function reduceBooleanStep(expression: string): string {
  const tokens = tokenizeBoolean(expression);
  parseBoolean(tokens);
  const close = tokens.indexOf(')');
  if (close < 0) throw new LorahubError('INTERNAL', `boolean expression has no parentheses: "${expression}"`);
  const open = tokens.lastIndexOf('(', close);
  const value = evalBoolean(tokens.slice(open + 1, close).join(' '));
  return [...tokens.slice(0, open), value, ...tokens.slice(close + 1)].join(' ');
}

// ---------------------------------------------------------------------------------------------
// Generators.

export const bbhBooleanExpressions = defineGenerator({
  name: 'bbh_boolean_expressions',
  description: "BBH boolean_expressions: a uniformly drawn expression of exactly N tokens, then ' is'.",
  fields: ['expression'],
  defaultTemplate: '{expression} is',
  core: { field: 'expression', rule: 'substring' },
  params: z.strictObject({ tokens: z.number().int().min(1).max(MAX_BOOLEAN_TOKENS).default(8) }),
  sample(rng, p) {
    const tokens = drawExpression(rng, { lengths: [p.tokens], ops: ['not', 'and', 'or'], require: [], parens: 'allow', avoidSpans: [] });
    const expression = tokens.join(' ');
    return { fields: { expression }, target: evalBoolean(expression) };
  },
});

export const booleanEval = defineGenerator({
  name: 'boolean_eval',
  description: 'Value of a short boolean expression (True/False, or Yes/No with answers="yes_no").',
  fields: ['expression'],
  defaultTemplate: 'Evaluate the boolean expression: {expression}\nAnswer:',
  params: exprOptions
    .extend({ answers: z.enum(['true_false', 'yes_no']).default('true_false') })
    .refine(hasShapes, NO_SHAPES),
  sample(rng, p) {
    const expression = drawExpression(rng, p).join(' ');
    const value = evalBoolean(expression);
    const target = p.answers === 'yes_no' ? (value === 'True' ? 'Yes' : 'No') : value;
    return { fields: { expression }, target };
  },
});

export const booleanGrouping = defineGenerator({
  name: 'boolean_grouping',
  description: "Make Python's operator precedence explicit with parentheses.",
  fields: ['expression'],
  defaultTemplate: 'Add parentheses to show how Python groups this expression: {expression}\nAnswer:',
  params: validExprOptions,
  sample(rng, p) {
    const expression = drawExpression(rng, p).join(' ');
    return { fields: { expression }, target: groupBoolean(expression) };
  },
});

export const booleanReduce = defineGenerator({
  name: 'boolean_reduce',
  description: 'Replace the innermost parenthesised group of a boolean expression by its value.',
  fields: ['expression'],
  defaultTemplate: 'Evaluate the innermost parentheses and rewrite the expression: {expression}\nAnswer:',
  params: validExprOptions.refine((o) => o.parens === 'require', { message: 'boolean_reduce needs parens: "require"' }),
  sample(rng, p) {
    const expression = drawExpression(rng, p).join(' ');
    return { fields: { expression }, target: reduceBooleanStep(expression) };
  },
});
