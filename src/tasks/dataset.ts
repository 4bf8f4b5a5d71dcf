/**
 * Examples of a task, rebuilt deterministically from its seed.
 *
 * - The test split is drawn first (its own RNG stream) and holds distinct inputs.
 * - The train split (another stream) never contains a test input. Target tasks' train splits
 *   (the few-shot pools) are distinct too; upstream train splits may repeat an input, because
 *   several skills have small spaces (a few hundred inputs) and FLAN mixtures repeat as well.
 * - With `answer.weights`, each split's label counts are fixed exactly (largest remainder), then
 *   every example is drawn until the generator produces its planned label.
 */
import { LorahubError } from '../errors.ts';
import { getGenerator } from './generators/index.ts';
import type { Sampler } from './generators/index.ts';
import { Rng, deriveSeed } from '../rng.ts';
import { validateTask } from './schema.ts';
import { render } from './template.ts';
import type { TextExample, Split, TaskDef } from './types.ts';

/** Draws per example before giving up on its planned label. */
const MAX_LABEL_DRAWS = 2000;

interface Splits {
  train: readonly TextExample[];
  test: readonly TextExample[];
}

const memo = new Map<string, Splits>();

/** Label counts for n examples in proportion to the weights (largest remainder), in random order. */
function labelPlan(rng: Rng, n: number, choices: readonly string[], weights: readonly number[]): string[] {
  const total = weights.reduce((s, w) => s + w, 0);
  const exact = weights.map((w) => (w / total) * n);
  const counts = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; counts.reduce((s, c) => s + c, 0) < n; k++) counts[order[k % order.length][1]]++;
  return rng.shuffle(choices.flatMap((c, i) => new Array<string>(counts[i]).fill(c)));
}

function bindSampler(task: TaskDef): Sampler {
  try {
    return getGenerator(task.generator).bind(task.params);
  } catch (err) {
    throw new LorahubError('BAD_CONFIG', `task "${task.name}": bad params for generator "${task.generator}"`, { cause: err });
  }
}

function buildSplits(task: TaskDef): Splits {
  // Definitions built in code skip the file loader, so validate here too (cheap, once per task).
  validateTask(task, `task "${task.name}"`);
  const gen = getGenerator(task.generator);
  const sample = bindSampler(task);
  const templates = [task.instruction ?? gen.defaultTemplate, ...(task.templates ?? [])];
  const choices = task.answer.type === 'choice' ? task.answer.choices : undefined;

  const draw = (rng: Rng, want: string | undefined): TextExample => {
    for (let i = 0; i < MAX_LABEL_DRAWS; i++) {
      const inst = sample(rng, want);
      if (want !== undefined && inst.target !== want) continue;
      if (choices && !choices.includes(inst.target)) {
        throw new LorahubError(
          'BAD_CONFIG',
          `task "${task.name}": generator "${task.generator}" produced "${inst.target}", not one of answer.choices (${choices.join(', ')})`,
        );
      }
      const template = templates.length === 1 ? templates[0] : rng.pick(templates);
      return Object.freeze({ input: render(template, inst.fields), target: inst.target });
    }
    throw new LorahubError(
      'BAD_CONFIG',
      `task "${task.name}": generator "${task.generator}" gave no "${want}" in ${MAX_LABEL_DRAWS} draws; lower its answer weight`,
    );
  };

  const drawSplit = (split: Split, n: number, exclude: ReadonlySet<string>, distinct: boolean): TextExample[] => {
    const rng = Rng.fromSeed(deriveSeed(task.seed, split));
    const plan =
      task.answer.type === 'choice' && task.answer.weights
        ? labelPlan(rng, n, task.answer.choices, task.answer.weights)
        : undefined;
    const seen = new Set<string>();
    const out: TextExample[] = [];
    // Rejections (repeats, test inputs) are bounded so that a space too small fails loudly.
    const budget = 50 * n + 1000;
    let rejected = 0;
    while (out.length < n) {
      const ex = draw(rng, plan?.[out.length]);
      if (exclude.has(ex.input) || (distinct && seen.has(ex.input))) {
        if (++rejected > budget) {
          throw new LorahubError(
            'BAD_CONFIG',
            `task "${task.name}": drew only ${out.length} of ${n} ${split} examples in ${budget} rejections ` +
              `(the generator's space is too small for splits.${split})`,
          );
        }
        continue;
      }
      seen.add(ex.input);
      out.push(ex);
    }
    return out;
  };

  const test = drawSplit('test', task.splits.test, new Set(), true);
  const train = drawSplit('train', task.splits.train, new Set(test.map((e) => e.input)), task.kind === 'target');
  return { train, test };
}

function splitsOf(task: TaskDef): Splits {
  // Keyed by the whole definition: the data is a pure function of it.
  const key = JSON.stringify(task);
  let s = memo.get(key);
  if (!s) {
    s = buildSplits(task);
    memo.set(key, s);
  }
  return s;
}

/**
 * The task as its LoRA module is trained and tested on it: `formats` join the templates, so each
 * example draws from the instruction, the templates and the formats. Without formats it is the
 * task itself. The base's mixture uses the task as written (instruction and templates only).
 */
export function withFormats(task: TaskDef): TaskDef {
  if (!task.formats) return task;
  const { formats, ...rest } = task;
  return { ...rest, templates: [...(task.templates ?? []), ...formats] };
}

/** The examples of one split, deterministic in the task definition. */
export function taskExamples(task: TaskDef, split: Split): TextExample[] {
  if (split !== 'train' && split !== 'test') {
    throw new LorahubError('BAD_ARGUMENT', `unknown split "${String(split)}" (expected train or test)`);
  }
  return splitsOf(task)[split].slice();
}

/** How few-shot examples are drawn from a pool. */
export const FEW_SHOT_DRAWS = ['random', 'balanced'] as const;
/**
 * `random`: a uniform draw (the paper's). `balanced`: the answers take turns — one example per
 * distinct target in a seeded order, then again — so 5 binary examples are 3 and 2 instead of
 * whatever the draw gives (boolean_expressions' seed 1: 4 False, 1 True).
 */
export type FewShotDraw = (typeof FEW_SHOT_DRAWS)[number];

/**
 * k items of `pool` drawn by `draw` with `rng` (in draw order). Balanced: items grouped by target
 * (in first-seen order, so the result does not depend on how targets sort), the groups and each
 * group shuffled, then taken round-robin; a group that runs out drops out of the rotation.
 */
export function drawExamples<T extends { target?: string }>(pool: readonly T[], k: number, rng: Rng, draw: FewShotDraw = 'random'): T[] {
  if (draw === 'random') return rng.sample(pool, k);
  const groups = new Map<string, T[]>();
  for (const e of pool) {
    const key = e.target ?? '';
    const g = groups.get(key);
    if (g) g.push(e);
    else groups.set(key, [e]);
  }
  const queues = rng.shuffle([...groups.values()]).map((g) => rng.shuffle(g));
  const out: T[] = [];
  for (let round = 0; out.length < k; round++) {
    for (const q of queues) if (round < q.length && out.length < k) out.push(q[round]);
  }
  return out;
}

/** k examples with distinct inputs drawn from a split, in random order, fixed by the seed. */
export function sampleExamples(task: TaskDef, split: Split, k: number, seed: number, draw: FewShotDraw = 'random'): TextExample[] {
  if (!Number.isInteger(k) || k < 1) throw new LorahubError('BAD_ARGUMENT', `number of examples must be a positive integer, got ${k}`);
  if (!Number.isInteger(seed)) throw new LorahubError('BAD_ARGUMENT', `seed must be an integer, got ${seed}`);
  const seen = new Set<string>();
  const pool = taskExamples(task, split).filter((e) => !seen.has(e.input) && seen.add(e.input));
  if (k > pool.length) {
    throw new LorahubError('BAD_ARGUMENT', `task "${task.name}" has only ${pool.length} distinct ${split} examples, asked for ${k}`);
  }
  return drawExamples(pool, k, Rng.fromSeed(deriveSeed(seed, `sample:${split}`)), draw);
}

/** k few-shot examples from the train split (the target's pool), fixed by the seed. */
export function fewShot(task: TaskDef, k: number, seed: number, draw: FewShotDraw = 'random'): TextExample[] {
  return sampleExamples(task, 'train', k, seed, draw);
}
