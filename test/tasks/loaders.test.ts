import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { loadDataFile, loadExamplesFile, MAX_TEXT_BYTES } from '../../src/tasks/index.ts';
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
    expect(failure(file('m.jsonl', '{"input":"a"}')).message).toMatch(/m\.jsonl:1: missing "target" \(or "labels"\)/);
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

describe('loadDataFile', () => {
  function dataFailure(path: string, targets = true): string {
    try {
      loadDataFile(path, { targets });
    } catch (err) {
      expect(err).toBeInstanceOf(LorahubError);
      expect((err as LorahubError).code).toBe('BAD_FILE');
      return (err as LorahubError).message;
    }
    throw new Error('expected an error');
  }

  it('reads text and token-id lines, each side either way, with their source', () => {
    const f = file('ids.jsonl', ['{"input_ids":[5,6,1],"labels":[7,1,-100]}', '{"input":"a","labels":[7,1]}', '{"input_ids":[5,1],"target":"b"}'].join('\n'));
    expect(loadDataFile(f)).toEqual([
      { inputIds: [5, 6, 1], labels: [7, 1, -100], source: `${f}:1` },
      { input: 'a', labels: [7, 1], source: `${f}:2` },
      { inputIds: [5, 1], target: 'b', source: `${f}:3` },
    ]);
    // Generation input needs no target; BBH json names the example.
    expect(loadDataFile(file('gen.jsonl', '{"input_ids":[5,1]}'), { targets: false })).toEqual([{ inputIds: [5, 1], source: `${dir}/gen.jsonl:1` }]);
    expect(loadDataFile(file('b.json', '{"examples":[{"input_ids":[5,1],"labels":[1]}]}'))[0].source).toBe(`${dir}/b.json: examples[0]`);
  });

  it('refuses empty, non-integer and all-ignored ids, and empty inputs', () => {
    expect(dataFailure(file('e1.jsonl', '{"input_ids":[5,1],"labels":[]}'))).toMatch(/e1\.jsonl:1: "labels" is empty$/);
    expect(dataFailure(file('e2.jsonl', '{"input_ids":[],"labels":[1]}'))).toMatch(/e2\.jsonl:1: "input_ids" is empty$/);
    expect(dataFailure(file('e3.jsonl', '{"input":"","target":"x"}'), false)).toMatch(/e3\.jsonl:1: "input" is empty$/);
    expect(dataFailure(file('e4.jsonl', '{"input_ids":[5,"6"],"labels":[1]}'))).toMatch(/e4\.jsonl:1: "input_ids"\[1\] is "6", not an integer token id$/);
    expect(dataFailure(file('e5.jsonl', '{"input_ids":5,"labels":[1]}'))).toMatch(/"input_ids" must be an array of token ids, got number$/);
    expect(dataFailure(file('e6.jsonl', '{"input_ids":[5,1],"labels":[-100]}'))).toMatch(/"labels" has no token to score \(all -100\)$/);
    expect(dataFailure(file('e7.jsonl', '{"input_ids":[5,1]}'))).toMatch(/e7\.jsonl:1: missing "labels" \(or "target"\)$/);
    expect(dataFailure(file('e8.jsonl', '{"text":"a"}'))).toMatch(/e8\.jsonl:1: missing "input" \(or "input_ids"\)$/);
    // An empty target still scores eos.
    expect(loadDataFile(file('ok.jsonl', '{"input":"a","target":""}'))).toHaveLength(1);
  });

  it('refuses invalid UTF-8 by line, and keeps a BOM only off the first line', () => {
    const bad = join(dir, 'latin1.jsonl');
    writeFileSync(bad, Buffer.concat([Buffer.from('{"input":"a","target":"b"}\n\n{"input":"caf'), Buffer.from([0xe9]), Buffer.from('","target":"x"}')]));
    expect(dataFailure(bad)).toBe(`${bad}:3: not valid UTF-8 (data files are read as UTF-8)`);
    const bom = loadDataFile(file('bom.jsonl', '\ufeff{"input":"a","target":"b"}\n{"input":"\ufeffc","target":"d"}'));
    expect(bom.map((e) => e.input)).toEqual(['a', '\ufeffc']);
  });

  it('refuses a runaway line or text before parsing it', () => {
    const long = 'x'.repeat(MAX_TEXT_BYTES + 1);
    expect(dataFailure(file('long.jsonl', `{"input":"a","target":"b"}\n{"input":"${long}","target":"b"}`))).toMatch(/long\.jsonl:2: line is 4\.0 MB, over the 4\.0 MB a line may hold$/);
    expect(dataFailure(file('long.json', `{"examples":[{"input":"${long}","target":"b"}]}`))).toMatch(/long\.json: examples\[0\]: "input" is 4\.0 MB, over the 4\.0 MB a text may hold$/);
  });

  it('loadExamplesFile takes text examples only', () => {
    expect(failure(file('tok.jsonl', '{"input_ids":[5,1],"labels":[1]}')).message).toMatch(/tok\.jsonl:1: token ids are not accepted here; give text \{"input", "target"\}$/);
  });
});
