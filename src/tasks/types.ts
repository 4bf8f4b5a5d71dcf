/**
 * The task system's data types. A task is a declarative JSON file (tasks/<name>.json) naming a
 * generator and its parameters; its examples are rebuilt from the seed on demand, so nothing
 * large is committed.
 */

/** One input/target pair, as BBH stores them (`{"input": …, "target": …}`). */
export interface Example {
  input: string;
  target: string;
}

/**
 * An example as a data file gives it: each side as text (`input`, `target`) or as token ids
 * (`inputIds`, `labels`; ids win where a line has both). The target side is absent only where
 * none is needed (generation input). `source` says where it came from ("file:line"), for errors.
 */
export interface DataExample {
  input?: string;
  target?: string;
  inputIds?: number[];
  labels?: number[];
  source?: string;
}

export type TaskKind = 'upstream' | 'target';
export type Split = 'train' | 'test';

/**
 * How answers look. `choice` lists every possible target; `weights` (same order) fixes the label
 * distribution of each split exactly (BBH's balance), instead of the generator's natural one.
 */
export type AnswerFormat =
  | { type: 'choice'; choices: string[]; weights?: number[] }
  | { type: 'free' };

export interface TaskDef {
  name: string;
  kind: TaskKind;
  description: string;
  /**
   * The template that builds an input from the generator's fields, e.g.
   * "Evaluate the boolean expression: {expression}\nAnswer:". For target tasks it is exactly BBH's
   * input format, with no extra instruction. Absent: the generator's default template.
   */
  instruction?: string;
  /** Alternative phrasings (upstream only), drawn uniformly with `instruction` per example (FLAN-style). */
  templates?: string[];
  answer: AnswerFormat;
  /** A name from the generator registry (src/tasks/generators/index.ts). */
  generator: string;
  /** The generator's parameters, validated by its own schema when the task is loaded. */
  params: Record<string, unknown>;
  splits: { train: number; test: number };
  seed: number;
  /** For targets: upstream tasks that teach its sub-skills (documentation; checked to exist). */
  related?: string[];
  /** Free-form notes, e.g. the byte lengths of inputs against ByT5's budget. */
  notes?: string;
}
