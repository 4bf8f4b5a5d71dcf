import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { JsonTokenizer } from '../../src/tokenizers/sentencepiece.ts';
import { tinyT5TokenizerJson } from './tiny-t5-tokenizer.ts';

describe('JsonTokenizer (Unigram tokenizer.json)', () => {
  const tok = new JsonTokenizer(tinyT5TokenizerJson());

  it('reads the special ids and vocabulary size', () => {
    expect(tok.eosId).toBe(1);
    expect(tok.padId).toBe(0);
    expect(tok.unkId).toBe(2);
    expect(tok.vocabSize).toBe(12);
  });

  it('encodes like SentencePiece Unigram (best-scoring segmentation) and appends </s>', () => {
    // "▁ab" (-1) beats "▁a"+"b" (-4.5); "▁c" (-2.5) beats "▁"+"c" (-5).
    expect(tok.encode('ab c')).toEqual([6, 9, 1]);
    // "▁aab": "▁a"+"a"+"b" = -7.5 beats "▁"+"a"+"a"+"b" = -11.
    expect(tok.encode('aab')).toEqual([4, 7, 5, 1]);
    // Runs of spaces collapse, leading/trailing whitespace vanishes.
    expect(tok.encode('  ab   c ')).toEqual([6, 9, 1]);
    // "z" is not in the vocabulary: "▁" then <unk>.
    expect(tok.encode('z')).toEqual([3, 2, 1]);
    expect(tok.encode('')).toEqual([1]);
  });

  it('decodes skipping special tokens, with HF clean-up of spaces before punctuation', () => {
    expect(tok.decode([6, 9, 1])).toBe('ab c');
    expect(tok.decode([0, 4, 7, 5, 1, 0])).toBe('aab');
    // "▁ab" "▁." → "ab ." → clean_up_tokenization_spaces → "ab."
    expect(tok.decode([6, 10, 1])).toBe('ab.');
    expect(tok.decode([0, 1])).toBe('');
    expect(tok.decode([])).toBe('');
  });

  it('decodes embedding-padding ids as nothing and rejects ids outside the model vocabulary', () => {
    const padded = new JsonTokenizer(tinyT5TokenizerJson(), { modelVocabSize: 16 });
    expect(padded.vocabSize).toBe(16);
    expect(padded.decode([6, 14, 9])).toBe('ab c');
    expect(() => padded.decode([16])).toThrow(/token id 16/);
    expect(() => tok.decode([-3])).toThrow(LorahubError);
  });

  describe('fromDir', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lorahub-tok-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reads tokenizer.json and tokenizer_config.json from a local folder', () => {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyT5TokenizerJson()));
      writeFileSync(
        join(dir, 'tokenizer_config.json'),
        JSON.stringify({ eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', clean_up_tokenization_spaces: false }),
      );
      const t = JsonTokenizer.fromDir(dir, 32);
      expect(t.vocabSize).toBe(32);
      expect(t.encode('ab c')).toEqual([6, 9, 1]);
      // clean-up disabled by the config
      expect(t.decode([6, 10])).toBe('ab .');
    });

    it('names the file when the JSON is broken', () => {
      writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
      expect(() => JsonTokenizer.fromDir(dir)).toThrow(/tokenizer\.json: invalid JSON/);
    });
  });
});
