/**
 * Templates: a task's instruction is text with `{field}` placeholders that the generator's
 * fields fill. Only lower-case identifiers in braces are placeholders, so literal brackets such
 * as "{ ( [" inside field values or instructions are left alone.
 */
const PLACEHOLDER = /\{([a-z][a-z0-9_]*)\}/g;

/** Placeholder names in order of appearance (with repeats). */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

/**
 * Fills every placeholder in one pass, so a field value that itself looks like "{x}" is never
 * substituted again. Callers have checked (at load) that every placeholder has a field.
 */
export function render(template: string, fields: Readonly<Record<string, string>>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const value = fields[name];
    return value === undefined ? whole : value;
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The inverse of render: recovers field values from an input built with this template, or
 * undefined when the input does not have the template's shape. Used to pull the problem instance
 * (the "core") out of real BBH inputs for leakage checks. Placeholders match lazily except the
 * last, which takes the rest of the input.
 */
export function extractFields(template: string, input: string): Record<string, string> | undefined {
  const names: string[] = [];
  let pattern = '^';
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    pattern += escapeRegExp(template.slice(last, m.index));
    pattern += '([\\s\\S]*?)';
    names.push(m[1]);
    last = m.index + m[0].length;
  }
  pattern += `${escapeRegExp(template.slice(last))}$`;
  const match = new RegExp(pattern).exec(input);
  if (!match) return undefined;
  const out: Record<string, string> = {};
  names.forEach((name, i) => {
    out[name] = match[i + 1];
  });
  return out;
}
