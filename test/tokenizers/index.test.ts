import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { LazyTokenizer, loadTokenizer, modelMaxLength, requireTokenizer, tokenizerIfAny } from '../../src/tokenizers/index.ts';
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
    const big = modelDir('big', { 'config.json': { vocab_size: 32128 } });
    expect(() => loadTokenizer(big)).toThrow(`${big}: no tokenizer (tokenizer.json, or tokenizer_config.json for a ByT5 byte tokenizer)`);
    expect(() =>
      loadTokenizer(modelDir('t5slow', { 'config.json': { vocab_size: 32128 }, 'tokenizer_config.json': { tokenizer_class: 'T5Tokenizer' } })),
    ).toThrow(/T5Tokenizer.*needs a tokenizer\.json/);
  });

  it('reads model_max_length, taking transformers\' int(1e30) as no limit', () => {
    expect(modelMaxLength(MODEL)).toBeUndefined(); // the fixture says 1000000000000000019884624838656
    expect(modelMaxLength(modelDir('mml', { 'tokenizer_config.json': { model_max_length: 512 } }))).toBe(512);
    expect(modelMaxLength(modelDir('nomml', { 'config.json': { vocab_size: 259 } }))).toBeUndefined();
    expect(() => modelMaxLength(modelDir('badmml', { 'tokenizer_config.json': { model_max_length: -1 } }))).toThrow(/"model_max_length" must be a positive integer, got -1/);
  });
});

describe('LazyTokenizer', () => {
  const root = mkdtempSync(join(tmpdir(), 'lorahub-lazytok-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reads nothing until used, then the folder\'s tokenizer', () => {
    const dir = join(root, 'later');
    mkdirSync(dir);
    const tok = new LazyTokenizer(dir); // the folder is still empty: nothing is read yet
    cpSync(MODEL, dir, { recursive: true });
    expect(tok.encode('A:')).toEqual([68, 61, 1]);
    expect(tokenizerIfAny(tok)?.kind).toBe('bytes');
  });

  it('without tokenizer files: ids need none, text says what to give', () => {
    const dir = join(root, 'none');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ vocab_size: 32128 }));
    const tok = new LazyTokenizer(dir);
    expect(tokenizerIfAny(tok)).toBeUndefined();
    const message = `${dir}: no tokenizer (tokenizer.json, or tokenizer_config.json for a ByT5 byte tokenizer) — give token ids ({"input_ids","labels"}) or add the tokenizer files`;
    expect(() => tok.encode('a')).toThrow(message);
    expect(() => requireTokenizer(tok)).toThrow(LorahubError);
    // A slow tokenizer class without tokenizer.json is as good as none for ids.
    const slow = join(root, 'slow');
    mkdirSync(slow);
    writeFileSync(join(slow, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'T5Tokenizer' }));
    expect(tokenizerIfAny(new LazyTokenizer(slow))).toBeUndefined();
    expect(() => new LazyTokenizer(slow).decode([1])).toThrow(/T5Tokenizer.*needs a tokenizer\.json .* — give token ids/);
  });

  it('reports broken tokenizer files even when only ids are run', () => {
    const dir = join(root, 'broken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tokenizer.json'), '{ oops');
    expect(() => tokenizerIfAny(new LazyTokenizer(dir))).toThrow(/tokenizer\.json: invalid JSON/);
  });
});
