/**
 * Example files: BBH's json (`{"examples": [{"input", "target"}, …]}`) and jsonl (one
 * `{"input", "target"}` per line). `.json` and `.jsonl` decide the format; any other name is
 * sniffed (a file that parses as one JSON object with "examples" is BBH json).
 */
import { readFileSync } from 'node:fs';
import { LorahubError } from '../errors.ts';
import type { Example } from './types.ts';

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** The example in `value`, or the reason it is not one. */
function asExample(value: unknown): Example | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `expected an object {"input": string, "target": string}, got ${describe(value)}`;
  }
  const rec = value as Record<string, unknown>;
  for (const key of ['input', 'target'] as const) {
    if (!(key in rec)) return `missing "${key}"`;
    if (typeof rec[key] !== 'string') return `"${key}" must be a string, got ${describe(rec[key])}`;
  }
  return { input: rec.input as string, target: rec.target as string };
}

function parseBbhJson(text: string, path: string): Example[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new LorahubError('BAD_FILE', `${path}: invalid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !('examples' in doc)) {
    throw new LorahubError('BAD_FILE', `${path}: expected an object with an "examples" array (BBH format)`);
  }
  const examples = (doc as { examples: unknown }).examples;
  if (!Array.isArray(examples)) {
    throw new LorahubError('BAD_FILE', `${path}: "examples" must be an array, got ${describe(examples)}`);
  }
  if (examples.length === 0) throw new LorahubError('BAD_FILE', `${path}: "examples" is empty`);
  return examples.map((value, i) => {
    const ex = asExample(value);
    if (typeof ex === 'string') throw new LorahubError('BAD_FILE', `${path}: examples[${i}]: ${ex}`);
    return ex;
  });
}

function parseJsonl(text: string, path: string): Example[] {
  const out: Example[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new LorahubError('BAD_FILE', `${path}:${i + 1}: invalid JSON (${err instanceof Error ? err.message : String(err)})`, {
        cause: err,
      });
    }
    const ex = asExample(value);
    if (typeof ex === 'string') throw new LorahubError('BAD_FILE', `${path}:${i + 1}: ${ex}`);
    out.push(ex);
  });
  if (out.length === 0) throw new LorahubError('BAD_FILE', `${path}: no examples (only blank lines)`);
  return out;
}

function looksLikeBbhJson(text: string): boolean {
  try {
    const doc: unknown = JSON.parse(text);
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'examples' in doc;
  } catch {
    return false;
  }
}

export function loadExamplesFile(path: string): Example[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LorahubError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_FILE', `cannot read examples file ${path}`, { cause: err });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') throw new LorahubError('BAD_FILE', `${path}: file is empty`);
  if (path.endsWith('.jsonl')) return parseJsonl(text, path);
  if (path.endsWith('.json') || looksLikeBbhJson(text)) return parseBbhJson(text, path);
  return parseJsonl(text, path);
}
