/**
 * Dyck-4 words over ( ) [ ] { } < >, space-separated as in BBH's dyck_languages. A BBH instance
 * is a valid prefix with 1–3 brackets left open (the answer closes them). Upstream bracket tasks
 * are built so that their sequences are never such a prefix (openers-only runs of ≥ 4, balanced
 * words, invalid words, or prefixes with ≥ 4 open), so no upstream input holds a target instance.
 */
import { z } from 'zod';
import { LorahubError } from '../../errors.ts';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';

export const OPENERS = ['(', '[', '{', '<'] as const;
const CLOSER: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}', '<': '>' };
const CLOSERS = new Set(Object.values(CLOSER));
// Object.hasOwn, not `in`: "toString" in CLOSER is true.
const isOpener = (t: string): boolean => Object.hasOwn(CLOSER, t);

export interface DyckState {
  /** No closer mismatched or unmatched. */
  valid: boolean;
  /** The still-open brackets, outermost first (meaningful when valid). */
  stack: string[];
}

export function dyckState(tokens: readonly string[]): DyckState {
  const stack: string[] = [];
  for (const t of tokens) {
    if (isOpener(t)) stack.push(t);
    else if (CLOSERS.has(t)) {
      const top = stack.pop();
      if (top === undefined || CLOSER[top] !== t) return { valid: false, stack };
    } else throw new LorahubError('INTERNAL', `dyck: unexpected token "${t}"`);
  }
  return { valid: true, stack };
}

/** The closers that complete a valid prefix, innermost first: "( [ <" → "> ] )". */
export function closeAll(stack: readonly string[]): string {
  return stack
    .slice()
    .reverse()
    .map((t) => CLOSER[t])
    .join(' ');
}

/** Would this sequence be a BBH dyck_languages instance (valid, 1..3 left open)? */
export function isDyckTargetInstance(tokens: readonly string[]): boolean {
  const s = dyckState(tokens);
  return s.valid && s.stack.length >= 1 && s.stack.length <= 3;
}

/**
 * A uniformly random ±1 path of n steps from depth 0 to `end` that never goes below 0 (counted
 * by dynamic programming, so every such path is equally likely), with bracket types drawn
 * uniformly for each opener.
 */
export function randomDyck(rng: Rng, n: number, end: number): string[] {
  if (end < 0 || end > n || (n - end) % 2 !== 0) {
    throw new LorahubError('INTERNAL', `randomDyck: no path of ${n} steps ends at depth ${end}`);
  }
  // ways[i][d]: completions from step i at depth d. Doubles are exact enough for sampling ratios
  // (counts stay below 2^n; n ≤ 200 keeps them finite).
  const ways: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(n + 2).fill(0));
  ways[n][end] = 1;
  for (let i = n - 1; i >= 0; i--) {
    for (let d = 0; d <= n; d++) ways[i][d] = ways[i + 1][d + 1] + (d > 0 ? ways[i + 1][d - 1] : 0);
  }
  const tokens: string[] = [];
  const stack: string[] = [];
  let d = 0;
  for (let i = 0; i < n; i++) {
    const up = ways[i + 1][d + 1];
    const down = d > 0 ? ways[i + 1][d - 1] : 0;
    if (rng.float() * (up + down) < up) {
      const t = rng.pick(OPENERS);
      tokens.push(t);
      stack.push(t);
      d++;
    } else {
      tokens.push(CLOSER[stack.pop() as string]);
      d--;
    }
  }
  return tokens;
}

/** Roughly log-uniform in [lo, hi]: BBH's lengths are heavy at the short end (median ≈ 10 tokens). */
function logUniformInt(rng: Rng, lo: number, hi: number): number {
  const v = Math.floor(Math.exp(Math.log(lo) + rng.float() * (Math.log(hi + 1) - Math.log(lo))));
  return Math.min(hi, Math.max(lo, v));
}

const lengthRange = z
  .strictObject({ min: z.number().int().min(1), max: z.number().int().max(200) })
  .refine((r) => r.min <= r.max, { message: 'min must be <= max' });

export const bbhDyckLanguages = defineGenerator({
  name: 'bbh_dyck_languages',
  description: 'BBH dyck_languages: a Dyck-4 prefix with 1–3 brackets left open; the answer closes them.',
  fields: ['sequence'],
  defaultTemplate:
    'Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: {sequence}',
  core: { field: 'sequence', rule: 'bracket-skeleton' },
  params: z.strictObject({
    /** Input tokens. BBH spans 2..99; at most 52 keeps inputs within ~200 bytes (96-byte prefix). */
    tokens: lengthRange.default({ min: 2, max: 99 }),
    maxOpen: z.number().int().min(1).max(3).default(3),
  }),
  sample(rng, p) {
    const open = rng.int(1, p.maxOpen);
    let n = logUniformInt(rng, Math.max(p.tokens.min, 2), p.tokens.max);
    if ((n - open) % 2 !== 0) n = n + 1 <= p.tokens.max ? n + 1 : n - 1;
    if (n < open) n = open;
    if (n < 2) n = open + 2; // BBH never shows a lone bracket.
    const tokens = randomDyck(rng, n, open);
    return { fields: { sequence: tokens.join(' ') }, target: closeAll(dyckState(tokens).stack) };
  },
});

export const bracketCloseAll = defineGenerator({
  name: 'bracket_close_all',
  description: 'Close a run of opening brackets (at least 4, so never a BBH instance).',
  fields: ['sequence'],
  defaultTemplate: 'Write the closing brackets for: {sequence}\nAnswer:',
  params: z.strictObject({ open: lengthRange }).refine((p) => p.open.min >= 4 && p.open.min <= p.open.max, {
    message: 'open.min must be >= 4 (shorter runs are BBH dyck instances) and <= open.max',
  }),
  sample(rng, p) {
    const tokens = Array.from({ length: rng.int(p.open.min, p.open.max) }, () => rng.pick(OPENERS));
    return { fields: { sequence: tokens.join(' ') }, target: closeAll(tokens) };
  },
});

export const bracketBalanced = defineGenerator({
  name: 'bracket_balanced',
  description: 'Is a bracket sequence balanced (Yes/No)? Negatives are corrupted balanced words.',
  fields: ['sequence'],
  defaultTemplate: 'Are the brackets in this sequence balanced? {sequence}\nAnswer Yes or No.',
  params: z.strictObject({ tokens: lengthRange }),
  sample(rng, p, want) {
    for (;;) {
      let n = rng.int(Math.max(2, p.tokens.min), p.tokens.max);
      if (n % 2 === 1) n--;
      const tokens = randomDyck(rng, n, 0);
      if (want === 'No' || (want === undefined && rng.bool())) {
        // Corrupt one closer's type, or swap two different neighbours.
        const i = rng.int(0, tokens.length - 1);
        if (CLOSERS.has(tokens[i]) && rng.bool()) {
          tokens[i] = rng.pick([...CLOSERS].filter((c) => c !== tokens[i]));
        } else if (i + 1 < tokens.length && tokens[i] !== tokens[i + 1]) {
          [tokens[i], tokens[i + 1]] = [tokens[i + 1], tokens[i]];
        }
      }
      // A valid prefix with 1..3 open is a dyck_languages instance: keep those out of upstream data.
      if (isDyckTargetInstance(tokens)) continue;
      const s = dyckState(tokens);
      return { fields: { sequence: tokens.join(' ') }, target: s.valid && s.stack.length === 0 ? 'Yes' : 'No' };
    }
  },
});

/** A valid prefix with 4–6 brackets open (never a BBH instance), and its open stack. */
const openPrefixParams = z
  .strictObject({ tokens: lengthRange, open: lengthRange })
  .refine((p) => p.open.min >= 4 && p.open.min <= p.open.max && p.open.max <= p.tokens.max, {
    message: 'open.min must be >= 4 (fewer open is a BBH instance) and open.max <= tokens.max',
  });

function openPrefix(rng: Rng, p: z.output<typeof openPrefixParams>): { tokens: string[]; stack: string[] } {
  const open = rng.int(p.open.min, p.open.max);
  let n = rng.int(Math.max(open, p.tokens.min), p.tokens.max);
  if ((n - open) % 2 !== 0) n = n + 1 <= p.tokens.max ? n + 1 : n - 1;
  if (n < open) n = open;
  const tokens = randomDyck(rng, n, open);
  return { tokens, stack: dyckState(tokens).stack };
}

export const bracketOpenStack = defineGenerator({
  name: 'bracket_open_stack',
  description: 'List the brackets still open after a valid prefix (4–6 open, never a BBH instance).',
  fields: ['sequence'],
  defaultTemplate: 'Which brackets are still open at the end of this sequence? {sequence}\nAnswer:',
  params: openPrefixParams,
  sample(rng, p) {
    const { tokens, stack } = openPrefix(rng, p);
    return { fields: { sequence: tokens.join(' ') }, target: stack.join(' ') };
  },
});

/**
 * Close what a valid prefix leaves open (4–6 open, never a BBH instance): bracket_open_stack's
 * stack and bracket_close_all's closing in one step.
 */
export const bracketComplete = defineGenerator({
  name: 'bracket_complete',
  description: 'Close the brackets a valid prefix leaves open (4–6 open, never a BBH instance).',
  fields: ['sequence'],
  defaultTemplate: 'Close the brackets still open at the end of: {sequence}\nAnswer:',
  params: openPrefixParams,
  sample(rng, p) {
    const { tokens, stack } = openPrefix(rng, p);
    return { fields: { sequence: tokens.join(' ') }, target: closeAll(stack) };
  },
});

export const bracketDepth = defineGenerator({
  name: 'bracket_depth',
  description: 'Maximum nesting depth of a balanced bracket sequence.',
  fields: ['sequence'],
  defaultTemplate: 'What is the maximum nesting depth of {sequence}?',
  params: z.strictObject({ tokens: lengthRange }),
  sample(rng, p) {
    let n = rng.int(Math.max(2, p.tokens.min), p.tokens.max);
    if (n % 2 === 1) n--;
    const tokens = randomDyck(rng, n, 0);
    let d = 0;
    let max = 0;
    for (const t of tokens) {
      d += isOpener(t) ? 1 : -1;
      max = Math.max(max, d);
    }
    return { fields: { sequence: tokens.join(' ') }, target: String(max) };
  },
});
