import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/tokenizers/index.ts';
import { tinyT5TokenizerJson } from './tiny-t5-tokenizer.ts';

const MODEL = fileURLToPath(new URL('../../../shared/fixtures/t5-gated/model', import.meta.url));

describe('loadTokenizer', () => {
  const root = mkdtempSync(join(tmpdir(), 'lorahub-loadtok-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function modelDir(name: string, files: Record<string, unknown>): string {
    const dir = join(root, name);
    mkdirSync(dir);
    for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), JSON.stringify(v));
    return dir;
  }

  it('picks the ByT5 byte tokenizer for the fixture model', () => {
    const tok = loadTokenizer(MODEL);
    expect(tok.kind).toBe('bytes');
    expect(tok.vocabSize).toBe(259);
    expect(tok.encode('A:')).toEqual([68, 61, 1]);
  });

  it('prefers tokenizer.json and uses the model vocab_size', () => {
    const dir = join(root, 'json');
    cpSync(MODEL, dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyT5TokenizerJson()));
    const tok = loadTokenizer(dir);
    expect(tok.kind).toBe('tokenizer.json');
    expect(tok.vocabSize).toBe(259); // config.json vocab_size > the 12 tokens
    expect(tok.encode('ab c')).toEqual([6, 9, 1]);
  });

  it('uses extra_ids and the padded model vocabulary of a ByT5 config', () => {
    const dir = modelDir('byt5', {
      'config.json': { vocab_size: 384 },
      'tokenizer_config.json': { tokenizer_class: 'ByT5Tokenizer' },
    });
    const tok = loadTokenizer(dir);
    expect(tok.vocabSize).toBe(384);
    // default extra_ids 125: <extra_id_0> = 383
    expect(tok.encode('<extra_id_0>')).toEqual([383, 1]);
  });

  it('falls back to bytes for a byte-sized model without tokenizer files', () => {
    const tok = loadTokenizer(modelDir('bare', { 'config.json': { vocab_size: 259 } }));
    expect(tok.kind).toBe('bytes');
  });

  it('explains what is missing otherwise', () => {
    expect(() => loadTokenizer(modelDir('big', { 'config.json': { vocab_size: 32128 } }))).toThrow(/no tokenizer found/);
    expect(() =>
      loadTokenizer(modelDir('t5slow', { 'config.json': { vocab_size: 32128 }, 'tokenizer_config.json': { tokenizer_class: 'T5Tokenizer' } })),
    ).toThrow(/T5Tokenizer.*needs a tokenizer\.json/);
  });
});
