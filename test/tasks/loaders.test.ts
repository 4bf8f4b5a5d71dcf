import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { loadExamplesFile } from '../../src/tasks/index.ts';
import { BBH_DIR, HAVE_BBH } from './oracles.ts';

const dir = mkdtempSync(join(tmpdir(), 'lorahub-loaders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function failure(path: string): LorahubError {
  try {
    loadExamplesFile(path);
  } catch (err) {
    expect(err).toBeInstanceOf(LorahubError);
    return err as LorahubError;
  }
  throw new Error('expected an error');
}

describe('loadExamplesFile', () => {
  it('reads BBH json and jsonl', () => {
    const bbh = file('a.json', JSON.stringify({ canary: 'x', examples: [{ input: 'True is', target: 'True' }] }));
    expect(loadExamplesFile(bbh)).toEqual([{ input: 'True is', target: 'True' }]);
    const jsonl = file('a.jsonl', '{"input": "1 + 1 =", "target": "2"}\n\n{"input":"x","target":"y","extra":1}\r\n');
    expect(loadExamplesFile(jsonl)).toEqual([
      { input: '1 + 1 =', target: '2' },
      { input: 'x', target: 'y' },
    ]);
    // Other names are sniffed; a BOM is tolerated.
    expect(loadExamplesFile(file('c.txt', '\ufeff{"examples":[{"input":"a","target":"b"}]}'))).toHaveLength(1);
    expect(loadExamplesFile(file('d.txt', '{"input":"a","target":"b"}\n{"input":"c","target":"d"}'))).toHaveLength(2);
  });

  it.skipIf(!HAVE_BBH)('reads a real BBH file', () => {
    const ex = loadExamplesFile(`${BBH_DIR}/boolean_expressions.json`);
    expect(ex).toHaveLength(250);
    expect(ex[0]).toEqual({ input: 'not ( True ) and ( True ) is', target: 'False' });
  });

  it('names the line of a malformed jsonl record', () => {
    const bad = file('bad.jsonl', '{"input":"a","target":"b"}\n{"input": "a", "target": \n');
    expect(failure(bad).message).toMatch(/bad\.jsonl:2: invalid JSON/);
    expect(failure(file('t.jsonl', '{"input":"a","target":"b"}\n\n{"input":"a","target":3}')).message).toMatch(
      /t\.jsonl:3: "target" must be a string, got number/,
    );
    expect(failure(file('m.jsonl', '{"input":"a"}')).message).toMatch(/m\.jsonl:1: missing "target"/);
    expect(failure(file('arr.jsonl', '[1, 2]')).message).toMatch(/arr\.jsonl:1: expected an object .* got array/);
  });

  it('explains malformed BBH json', () => {
    expect(failure(file('x.json', '{"examples": [')).message).toMatch(/x\.json: invalid JSON/);
    expect(failure(file('y.json', '[{"input":"a","target":"b"}]')).message).toMatch(/y\.json: expected an object with an "examples" array/);
    expect(failure(file('z.json', '{"examples": {}}')).message).toMatch(/"examples" must be an array, got object/);
    expect(failure(file('w.json', '{"examples": [{"input":"a","target":"b"}, {"input":"a"}]}')).message).toMatch(
      /w\.json: examples\[1\]: missing "target"/,
    );
    expect(failure(file('e.json', '{"examples": []}')).message).toMatch(/"examples" is empty/);
  });

  it('rejects empty and missing files', () => {
    expect(failure(file('empty.jsonl', '  \n\n')).message).toMatch(/empty\.jsonl: file is empty/);
    expect(failure(file('blank.json', '')).code).toBe('BAD_FILE');
    const missing = failure(join(dir, 'nope.json'));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toMatch(/cannot read examples file .*nope\.json/);
  });
});
