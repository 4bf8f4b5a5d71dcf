/**
 * Leakage checks: a target's problem instances must not appear in any upstream task's training
 * data, or "held-out" would be a fiction. A target input's core is its generator's core field
 * (the expression, the word list, the story …), recovered from the input by inverting the task's
 * template, so real BBH inputs can be checked the same way as generated ones.
 *
 * Rules (see LeakRule): `substring` — the core must not occur in any upstream input at token
 * boundaries (text normalised so punctuation is its own token); `bracket-skeleton` — the core must
 * not equal the brackets of an upstream input taken in order.
 */
import { LorahubError } from '../errors.ts';
import { getGenerator, type LeakRule } from './generators/index.ts';
import { extractFields } from './template.ts';
import type { TaskDef } from './types.ts';

export interface Leak {
  /** The target task and the input whose core leaked. */
  target: string;
  input: string;
  core: string;
  /** Where it was found. */
  upstream: string;
  upstreamInput: string;
}

export interface UpstreamText {
  task: string;
  inputs: readonly string[];
}

/** Punctuation as separate tokens, whitespace collapsed: "True?" and "True ?" compare equal. */
export function normaliseText(text: string): string {
  return text
    .replace(/([?.,:;!()[\]{}<>])/g, ' $1 ')
    .split(/\s+/)
    .filter((t) => t !== '')
    .join(' ');
}

const BRACKET = /^[()[\]{}<>]$/;

/** The brackets of a text in order, space-separated: "not ( True ) or [x]" → "( ) [ ]". */
export function bracketSkeleton(text: string): string {
  return normaliseText(text)
    .split(' ')
    .filter((t) => BRACKET.test(t))
    .join(' ');
}

/** The core of a target task's input, or undefined when the input does not fit the task's format. */
export function instanceCore(task: TaskDef, input: string): string | undefined {
  const gen = getGenerator(task.generator);
  if (!gen.core) {
    throw new LorahubError('INTERNAL', `task "${task.name}": generator "${gen.name}" declares no core field`);
  }
  const fields = extractFields(task.instruction ?? gen.defaultTemplate, input);
  return fields?.[gen.core.field];
}

/**
 * Indexes upstream inputs once, then answers leak queries. One long string with `indexOf` is
 * simple and fast enough for tens of thousands of inputs (V8 searches long needles sub-linearly).
 */
export class LeakIndex {
  private readonly text: string;
  private readonly starts: number[] = [];
  private readonly owners: Array<[string, string]> = [];
  private readonly skeletons = new Map<string, [string, string]>();

  constructor(upstream: readonly UpstreamText[]) {
    const parts: string[] = [];
    let offset = 0;
    for (const u of upstream) {
      for (const input of u.inputs) {
        const padded = ` ${normaliseText(input)} `;
        this.starts.push(offset);
        this.owners.push([u.task, input]);
        parts.push(padded);
        offset += padded.length + 1;
        const skeleton = bracketSkeleton(input);
        if (skeleton && !this.skeletons.has(skeleton)) this.skeletons.set(skeleton, [u.task, input]);
      }
    }
    this.text = parts.join('\n');
  }

  /** Where `core` occurs under `rule`, or undefined. */
  find(core: string, rule: LeakRule): [string, string] | undefined {
    if (rule === 'bracket-skeleton') return this.skeletons.get(bracketSkeleton(core));
    const at = this.text.indexOf(` ${normaliseText(core)} `);
    if (at < 0) return undefined;
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return this.owners[lo];
  }
}

/**
 * Leaks of a target task's inputs (generated or real BBH) into upstream data. An input that does
 * not fit the target's format throws rather than being skipped unchecked.
 */
export function findLeaks(target: TaskDef, inputs: readonly string[], index: LeakIndex): Leak[] {
  const gen = getGenerator(target.generator);
  const rule = gen.core?.rule ?? 'substring';
  const leaks: Leak[] = [];
  for (const input of inputs) {
    const core = instanceCore(target, input);
    if (core === undefined) {
      throw new LorahubError('INTERNAL', `task "${target.name}": input does not fit its format: ${JSON.stringify(input.slice(0, 80))}`);
    }
    const hit = index.find(core, rule);
    if (hit) leaks.push({ target: target.name, input, core, upstream: hit[0], upstreamInput: hit[1] });
  }
  return leaks;
}
