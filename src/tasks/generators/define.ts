/**
 * What a generator is. A generator draws one problem instance: named text fields (which a task's
 * template turns into an input) and the target, computed from the instance, never guessed.
 * Its parameters are validated by its own zod schema when a task file is loaded.
 */
import type { z } from 'zod';
import type { Rng } from '../../rng.ts';

export interface Instance {
  fields: Record<string, string>;
  target: string;
}

/**
 * Draws one instance. `want` is a hint: the target the caller is looking for (label balancing).
 * A generator may use it to construct such an instance directly when natural draws rarely hit it;
 * the caller still checks the computed target, so a hint can never produce a wrong label.
 */
export type Sampler = (rng: Rng, want?: string) => Instance;

/**
 * How a target's problem instance (its core field) is looked for in upstream data.
 * `substring`: it must not occur anywhere in an upstream input (at token boundaries).
 * `bracket-skeleton`: it must not equal the bracket skeleton of an upstream input (all its
 * brackets, in order). A Dyck prefix such as "[ [" is a fragment of nearly every bracket string, so
 * a substring rule would flag everything; what must not leak is the same instance: the same
 * sequence of brackets posed as a whole.
 */
export type LeakRule = 'substring' | 'bracket-skeleton';

export interface GeneratorSpec {
  readonly name: string;
  readonly description: string;
  /** The fields every template of a task using this generator must place. */
  readonly fields: readonly string[];
  /** The template used when a task file gives no instruction. */
  readonly defaultTemplate: string;
  /** For target-format generators: the field holding the problem instance, and how to check it. */
  readonly core?: { field: string; rule: LeakRule };
  /** Validates raw params (throws zod's error) and returns a sampler bound to them. */
  bind(params: unknown): Sampler;
}

/** Ties a params schema to its sampler with the types checked, then erases P for the registry. */
export function defineGenerator<S extends z.ZodType>(def: {
  name: string;
  description: string;
  fields: readonly string[];
  defaultTemplate: string;
  core?: { field: string; rule: LeakRule };
  params: S;
  sample: (rng: Rng, params: z.output<S>, want?: string) => Instance;
}): GeneratorSpec {
  return {
    name: def.name,
    description: def.description,
    fields: def.fields,
    defaultTemplate: def.defaultTemplate,
    core: def.core,
    bind(raw: unknown): Sampler {
      const params = def.params.parse(raw ?? {});
      return (rng, want) => def.sample(rng, params, want);
    },
  };
}
