/**
 * The task system's data types. A task is a declarative JSON file (tasks/<name>.json) naming a
 * generator and its parameters; its examples are rebuilt from the seed on demand, so nothing
 * large is committed.
 */

/**
 * An example: each side as text (`input`, `target`) or as token ids (`inputIds`, `labels`; ids
 * win where both are given), as a data file, a task generator or a tokenizer gives it. The target
 * side is absent only where none is needed (generation input). `source` says where it came from
 * ("file:line"), for errors. The views below name the two complete forms.
 */
export interface Example {
  input?: string;
  target?: string;
  inputIds?: number[];
  labels?: number[];
  source?: string;
}

/** Both sides as text: what task generators produce and BBH stores (`{"input": …, "target": …}`). */
export type TextExample = Example & { input: string; target: string };

/** Both sides as token ids: what the engines read (labels empty for generation input). */
export type TokenExample = Example & { inputIds: number[]; labels: number[] };

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
  /**
   * Terse and answer-only phrasings (upstream only): `"{expression} ="`, `"Q: … A:"`, a bare
   * `"{expression}"`, other answer styles. A module trained on the task draws them along with
   * `instruction` and `templates` (see `withFormats`); the base's instruction mixture does not, so
   * the base knows each skill in instruction form and the formats are what the modules add.
   */
  formats?: string[];
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
