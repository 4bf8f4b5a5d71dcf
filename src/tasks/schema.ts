/**
 * Validation of task files. Every error names the file and the field, e.g.
 * `tasks/foo.json: field "splits.test": Too small: expected number to be >=1`.
 * Checks, in order: the shape (zod), the generator name, the generator's own params schema,
 * and the templates against the fields the generator fills.
 */
import { z } from 'zod';
import { LorahubError } from '../errors.ts';
import { GENERATORS } from './generators/index.ts';
import { placeholders } from './template.ts';
import type { TaskDef } from './types.ts';

const answerSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('choice'),
      choices: z.array(z.string().min(1)).min(2),
      weights: z.array(z.number().positive()).optional(),
    }),
    z.strictObject({ type: z.literal('free') }),
  ])
  .superRefine((a, ctx) => {
    if (a.type !== 'choice') return;
    if (new Set(a.choices).size !== a.choices.length) {
      ctx.addIssue({ code: 'custom', path: ['choices'], message: 'choices must be distinct' });
    }
    if (a.weights && a.weights.length !== a.choices.length) {
      ctx.addIssue({ code: 'custom', path: ['weights'], message: `expected ${a.choices.length} weights (one per choice), got ${a.weights.length}` });
    }
  });

export const taskFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9_]+$/, 'must be lower-case letters, digits and "_"'),
  kind: z.enum(['upstream', 'target']),
  description: z.string().min(1),
  instruction: z.string().min(1).optional(),
  templates: z.array(z.string().min(1)).min(1).optional(),
  formats: z.array(z.string().min(1)).min(1).optional(),
  answer: answerSchema,
  generator: z.string().min(1),
  params: z.record(z.string(), z.unknown()).default({}),
  splits: z.strictObject({ train: z.number().int().min(1), test: z.number().int().min(1) }),
  seed: z.number().int(),
  related: z.array(z.string()).optional(),
  notes: z.string().optional(),
});

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '');
}

function badField(source: string, field: string, message: string, cause?: unknown): LorahubError {
  return new LorahubError('BAD_FILE', `${source}: field "${field}": ${message}`, { cause });
}

/** Validates a parsed task file; `source` (the file path) prefixes every error. */
export function validateTask(raw: unknown, source: string): TaskDef {
  const parsed = taskFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badField(source, fieldPath(issue.path) || '(root)', issue.message, parsed.error);
  }
  const task: TaskDef = parsed.data;

  const gen = GENERATORS.get(task.generator);
  if (!gen) {
    throw badField(source, 'generator', `unknown generator "${task.generator}" (available: ${[...GENERATORS.keys()].sort().join(', ')})`);
  }
  try {
    gen.bind(task.params);
  } catch (err) {
    if (err instanceof z.ZodError) {
      const issue = err.issues[0];
      const sub = fieldPath(issue.path);
      throw badField(source, sub ? `params.${sub}` : 'params', issue.message, err);
    }
    throw err;
  }

  for (const field of ['templates', 'formats'] as const) {
    if (task.kind === 'target' && task[field]) {
      throw badField(source, field, `a target task uses BBH's exact input format only, so it takes no ${field}`);
    }
  }
  const templates: Array<[string, string]> = [[task.instruction ? 'instruction' : '(generator default template)', task.instruction ?? gen.defaultTemplate]];
  (task.templates ?? []).forEach((t, i) => templates.push([`templates[${i}]`, t]));
  (task.formats ?? []).forEach((t, i) => templates.push([`formats[${i}]`, t]));
  for (const [field, template] of templates) {
    const used = new Set(placeholders(template));
    for (const p of used) {
      if (!gen.fields.includes(p)) {
        throw badField(source, field, `unknown placeholder {${p}} (generator "${gen.name}" fills: ${gen.fields.join(', ')})`);
      }
    }
    // Every field must appear, or the input would not determine the answer.
    for (const f of gen.fields) {
      if (!used.has(f)) throw badField(source, field, `missing placeholder {${f}} (generator "${gen.name}" fills: ${gen.fields.join(', ')})`);
    }
  }
  return task;
}
