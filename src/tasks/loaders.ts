/**
 * TextExample files, the one reader every command uses: BBH's json (`{"examples": [{"input",
 * "target"}, …]}`) and jsonl (one example per line). An example gives each side as text
 * (`input`, `target`) or as token ids (`input_ids`, `labels`). `.json` and `.jsonl` decide the
 * format; any other name is sniffed (a file that parses as one JSON object with "examples" is BBH
 * json).
 *
 * What can be checked without a model is checked here, naming file:line: UTF-8 (invalid bytes are
 * refused, never turned into U+FFFD), runaway line and text sizes, empty inputs and labels, ids
 * that are not integers. What needs the model (ids outside its vocabulary, lengths in tokens) is
 * checked in eval/score.ts before any forward pass.
 */
import { readFileSync } from 'node:fs';
import { LorahubError } from '../errors.ts';
import { IGNORE_INDEX } from '../models/shared/batch.ts';
import type { Example, TextExample } from './types.ts';

/**
 * The longest jsonl line, or text in a BBH json, lorahub reads (bytes). Refused before parsing and
 * tokenising: far above anything a model's input limit lets through (even 32k tokens of 64 bytes
 * are 2 MiB), so only a runaway line — a corpus on one line — meets it, and it fails at once
 * instead of after minutes of tokenising.
 */
export const MAX_TEXT_BYTES = 4 * 1024 * 1024;

export interface LoadOptions {
  /** Every example must give a target or labels (scoring, evaluation, few-shot sets); generation input needs none. */
  targets: boolean;
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** `rec[key]` as token ids, or the reason it is not. */
function idsField(rec: Record<string, unknown>, key: 'input_ids' | 'labels'): number[] | string {
  const v = rec[key];
  if (!Array.isArray(v)) return `"${key}" must be an array of token ids, got ${describe(v)}`;
  const bad = v.findIndex((x) => !Number.isInteger(x));
  if (bad >= 0) return `"${key}"[${bad}] is ${JSON.stringify(v[bad])}, not an integer token id`;
  if (v.length === 0) return `"${key}" is empty`;
  // All ignored: nothing to score, and a loss of 0/0 would come out as NaN.
  if (key === 'labels' && v.every((x) => x === IGNORE_INDEX)) return `"labels" has no token to score (all ${IGNORE_INDEX})`;
  return v as number[];
}

/** `rec[key]` as text, or the reason it is not. */
function textField(rec: Record<string, unknown>, key: 'input' | 'target'): string | { error: string } {
  const v = rec[key];
  if (typeof v !== 'string') return { error: `"${key}" must be a string, got ${describe(v)}` };
  // An empty target still scores eos; an empty input gives the model nothing to read.
  if (key === 'input' && v === '') return { error: '"input" is empty' };
  const bytes = Buffer.byteLength(v);
  if (bytes > MAX_TEXT_BYTES) return { error: `"${key}" is ${megabytes(bytes)}, over the ${megabytes(MAX_TEXT_BYTES)} a text may hold` };
  return v;
}

/** The example in `value`, or the reason it is not one. */
function asExample(value: unknown, opts: LoadOptions): Example | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `expected an object {"input", "target"} or {"input_ids", "labels"}, got ${describe(value)}`;
  }
  const rec = value as Record<string, unknown>;
  const ex: Example = {};
  if ('input_ids' in rec) {
    const ids = idsField(rec, 'input_ids');
    if (typeof ids === 'string') return ids;
    ex.inputIds = ids;
  } else if ('input' in rec) {
    const text = textField(rec, 'input');
    if (typeof text !== 'string') return text.error;
    ex.input = text;
  } else {
    return 'missing "input" (or "input_ids")';
  }
  if ('labels' in rec) {
    const ids = idsField(rec, 'labels');
    if (typeof ids === 'string') return ids;
    ex.labels = ids;
  } else if ('target' in rec) {
    const text = textField(rec, 'target');
    if (typeof text !== 'string') return text.error;
    ex.target = text;
  } else if (opts.targets) {
    return ex.inputIds ? 'missing "labels" (or "target")' : 'missing "target" (or "labels")';
  }
  return ex;
}

/**
 * The file's lines, decoded as strict UTF-8 one line at a time so that a bad byte is reported with
 * its line (0x0A never occurs inside a multi-byte UTF-8 sequence, so splitting bytes is safe).
 */
function readLines(path: string): string[] {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LorahubError(code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_FILE', `cannot read examples file ${path}`, { cause: err });
  }
  // ignoreBOM keeps a BOM in the output, so that only the file's first line drops it (below).
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const lines: string[] = [];
  for (let start = 0; start <= buf.length; ) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    try {
      lines.push(utf8.decode(buf.subarray(start, end)).replace(/\r$/, ''));
    } catch (err) {
      throw new LorahubError('BAD_FILE', `${path}:${lines.length + 1}: not valid UTF-8 (data files are read as UTF-8)`, { cause: err });
    }
    start = end + 1;
  }
  if (lines[0].charCodeAt(0) === 0xfeff) lines[0] = lines[0].slice(1);
  return lines;
}

function parseBbhJson(text: string, path: string, opts: LoadOptions): Example[] {
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
    const source = `${path}: examples[${i}]`;
    const ex = asExample(value, opts);
    if (typeof ex === 'string') throw new LorahubError('BAD_FILE', `${source}: ${ex}`);
    return { ...ex, source };
  });
}

function parseJsonl(lines: string[], path: string, opts: LoadOptions): Example[] {
  const out: Example[] = [];
  lines.forEach((line, i) => {
    const source = `${path}:${i + 1}`;
    const bytes = Buffer.byteLength(line);
    if (bytes > MAX_TEXT_BYTES) throw new LorahubError('BAD_FILE', `${source}: line is ${megabytes(bytes)}, over the ${megabytes(MAX_TEXT_BYTES)} a line may hold`);
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new LorahubError('BAD_FILE', `${source}: invalid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
    const ex = asExample(value, opts);
    if (typeof ex === 'string') throw new LorahubError('BAD_FILE', `${source}: ${ex}`);
    out.push({ ...ex, source });
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

/** Every example of a BBH json or jsonl file, text or token ids, each with its `source`. */
export function loadDataFile(path: string, opts: LoadOptions = { targets: true }): Example[] {
  const lines = readLines(path);
  if (lines.every((l) => l.trim() === '')) throw new LorahubError('BAD_FILE', `${path}: file is empty`);
  if (path.endsWith('.jsonl')) return parseJsonl(lines, path, opts);
  const text = lines.join('\n');
  if (path.endsWith('.json') || looksLikeBbhJson(text)) return parseBbhJson(text, path, opts);
  return parseJsonl(lines, path, opts);
}

/** The text examples of a file (few-shot and test sets, whose answers are compared as text). */
export function loadExamplesFile(path: string): TextExample[] {
  return loadDataFile(path).map((e) => {
    if (e.input === undefined || e.target === undefined) {
      throw new LorahubError('BAD_FILE', `${e.source}: token ids are not accepted here; give text {"input", "target"}`);
    }
    return { input: e.input, target: e.target };
  });
}
