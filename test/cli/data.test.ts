/**
 * Data files and the command line through the real CLI: every bad input is one `lorahub: error:`
 * line naming the file and line (or the flag), with exit 1 (2 for usage), and no result line; one
 * reader serves score, generate and eval.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { T5_GATED } from '../helpers.ts';
import { runCli } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = `${T5_GATED}/model`;
let n = 0;

/** A data file of these lines (objects are written as JSON, strings and buffers as they are). */
function data(lines: (object | string)[], ext = 'jsonl'): string {
  const f = join(tmp, `data${n++}.${ext}`);
  writeFileSync(f, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
  return f;
}

async function expectError(args: string[], code: number, message: string | RegExp): Promise<void> {
  const r = await runCli(args);
  expect(r.code, args.join(' ')).toBe(code);
  expect(r.stdout, args.join(' ')).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, args.join(' ')).toHaveLength(1);
  if (typeof message === 'string') expect(lines[0]).toBe(`lorahub: error: ${message}`);
  else expect(lines[0]).toMatch(message);
}

const GOOD = { input: 'not ( True ) and ( True ) is', target: 'False' };

describe('empty and out-of-vocabulary examples (item 2)', () => {
  it('refuses empty labels, empty inputs and ids outside the vocabulary, naming file:line', async () => {
    const emptyLabels = data([GOOD, { input_ids: [5, 6, 1], labels: [] }]);
    await expectError(['score', '--model', MODEL, '--data', emptyLabels], 1, `${emptyLabels}:2: "labels" is empty`);
    const emptyIds = data([{ input_ids: [], labels: [5, 1] }]);
    await expectError(['score', '--model', MODEL, '--data', emptyIds], 1, `${emptyIds}:1: "input_ids" is empty`);
    const emptyText = data([{ input: '', target: 'x' }]);
    for (const verb of ['score', 'generate', 'eval']) await expectError([verb, '--model', MODEL, '--data', emptyText], 1, `${emptyText}:1: "input" is empty`);
    await expectError(['generate', '--model', MODEL, '--input', ''], 2, '--input is empty');
    const ignoredOnly = data([{ input_ids: [5, 1], labels: [-100, -100] }]);
    await expectError(['score', '--model', MODEL, '--data', ignoredOnly], 1, `${ignoredOnly}:1: "labels" has no token to score (all -100)`);
    const negative = data([GOOD, GOOD, { input_ids: [5, -3, 1], labels: [5, 1] }]);
    await expectError(['score', '--model', MODEL, '--data', negative], 1, `${negative}:3: input_ids: token id -3 is outside the vocabulary [0, 259)`);
    const big = data([{ input_ids: [5, 1], labels: [5, 259, 1] }]);
    await expectError(['score', '--model', MODEL, '--data', big], 1, `${big}:1: labels: token id 259 is outside the vocabulary [0, 259) and is not -100`);
    await expectError(['generate', '--model', MODEL, '--data', negative], 1, `${negative}:3: input_ids: token id -3 is outside the vocabulary [0, 259)`);
    const fraction = data([{ input_ids: [5, 1.5], labels: [1] }]);
    await expectError(['score', '--model', MODEL, '--data', fraction], 1, `${fraction}:1: "input_ids"[1] is 1.5, not an integer token id`);
  });
});

describe('input length (item 3)', () => {
  it('refuses an input longer than the limit up front, naming the length and the limit', async () => {
    const long = data([GOOD, { input_ids: [...new Array<number>(5000).fill(70), 1], labels: [5, 1] }]);
    await expectError(['score', '--model', MODEL, '--data', long], 1, `${long}:2: input is 5001 tokens, over the limit of 4096 (lorahub's default for T5; --max-length N raises it)`);
    await expectError(['generate', '--model', MODEL, '--data', long], 1, /:2: input is 5001 tokens, over the limit of 4096/);
    // A text target counts in tokens too (ByT5: one per byte, plus eos).
    const target = data([{ input: 'a', target: 'x'.repeat(20) }]);
    await expectError(['score', '--model', MODEL, '--data', target, '--max-length', '16'], 1, `${target}:1: target is 21 tokens, over the limit of 16 (--max-length)`);
    await expectError(['score', '--model', MODEL, '--data', target, '--max-length', '0'], 2, '--max-length must be a positive integer, got "0"');
  });

  it("takes the tokenizer config's model_max_length, unless --max-length changes it", async () => {
    const model = join(tmp, 'short-model');
    cpSync(MODEL, model, { recursive: true });
    const cfgFile = join(model, 'tokenizer_config.json');
    writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), model_max_length: 16 }));
    const f = data([{ input: 'x'.repeat(20), target: 'y' }]);
    await expectError(['eval', '--model', model, '--data', f], 1, `${f}:1: input is 21 tokens, over the limit of 16 (model_max_length in tokenizer_config.json; --max-length N raises it)`);
    const r = await runCli(['score', '--model', model, '--data', f, '--max-length', '32']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a multi-megabyte line before parsing or tokenising it', async () => {
    const f = join(tmp, 'huge.jsonl');
    writeFileSync(f, `${JSON.stringify(GOOD)}\n${JSON.stringify({ input: 'x'.repeat(5 * 1024 * 1024), target: 'y' })}\n`);
    const t0 = Date.now();
    await expectError(['score', '--model', MODEL, '--data', f], 1, `${f}:2: line is 5.0 MB, over the 4.0 MB a line may hold`);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('non-UTF-8 data (item 4)', () => {
  it('refuses invalid UTF-8 naming the line, on every command', async () => {
    const f = join(tmp, 'latin1.jsonl');
    writeFileSync(f, Buffer.concat([Buffer.from(`${JSON.stringify(GOOD)}\n{"input": "caf`), Buffer.from([0xe9]), Buffer.from('", "target": "x"}\n')]));
    for (const verb of ['score', 'generate', 'eval']) await expectError([verb, '--model', MODEL, '--data', f], 1, `${f}:2: not valid UTF-8 (data files are read as UTF-8)`);
  });
});

describe('one reader for score, generate and eval (item 5)', () => {
  it('score and generate read BBH json like eval', async () => {
    const bbh = data([JSON.stringify({ examples: [GOOD, { input: 'True and False is', target: 'False' }] })], 'json');
    const s = await runCli(['score', '--model', MODEL, '--data', bbh]);
    expect(s.code).toBe(0);
    expect(s.stdout.trim().split('\n')).toHaveLength(2);
    const g = await runCli(['generate', '--model', MODEL, '--data', bbh, '--max-new-tokens', '4']);
    expect(g.code).toBe(0);
    expect(g.stdout.split('\n')).toHaveLength(3); // two lines, then the end
    const e = await runCli(['eval', '--model', MODEL, '--data', bbh, '--json']);
    expect(JSON.parse(e.stdout)).toMatchObject({ total: 2 });
    const bad = data([JSON.stringify({ examples: [GOOD, { input: 'a' }] })], 'json');
    await expectError(['score', '--model', MODEL, '--data', bad], 1, `${bad}: examples[1]: missing "target" (or "labels")`);
  });
});

describe('misspelt flags and commands (item 6)', () => {
  it('print one line with a suggestion and where the help is, exit 2', async () => {
    await expectError(['compose', '--modles', 'a,b'], 2, "unknown option '--modles' (did you mean --modules?); see lorahub compose --help");
    await expectError(['scroe', '--data', 'x'], 2, "unknown command 'scroe' (did you mean score?); see lorahub --help");
    await expectError(['modules', 'ad', 'x'], 2, "unknown command 'ad' (did you mean add?); see lorahub modules --help");
    await expectError(['score', '--model', MODEL], 2, "required option '--data <file>' not specified; see lorahub score --help");
  });
});
