import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import { ByteTokenizer, decodeUtf8Ignore } from '../../src/tokenizers/bytes.ts';

const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/t5-gated/', import.meta.url));

interface ObjectiveExamples {
  inputs: string[];
  outputs: string[];
  input_ids: number[][];
  labels: number[][];
}

function badToken(fn: () => unknown, id: number): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LorahubError);
    expect((err as LorahubError).code).toBe('BAD_TOKEN');
    expect((err as Error).message).toContain(String(id));
    return;
  }
  throw new Error('expected BAD_TOKEN');
}

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('maps bytes to b + 3 and appends eos', () => {
    expect(tok.vocabSize).toBe(259);
    expect(tok.padId).toBe(0);
    expect(tok.eosId).toBe(1);
    expect(tok.encode('hi')).toEqual([104 + 3, 105 + 3, 1]);
    expect(tok.encode('')).toEqual([1]);
    // é = C3 A9 in UTF-8
    expect(tok.encode('é')).toEqual([0xc3 + 3, 0xa9 + 3, 1]);
  });

  it('matches the ids HF ByT5Tokenizer produced for the fixture examples', () => {
    const cases = JSON.parse(readFileSync(`${FIXTURES}adapter_cases.json`, 'utf8')) as {
      objective: { examples: ObjectiveExamples };
    };
    const ex = cases.objective.examples;
    ex.inputs.forEach((text, i) => {
      const ids = tok.encode(text);
      expect(ids).toEqual(ex.input_ids[i].slice(0, ids.length));
      expect(ex.input_ids[i].slice(ids.length).every((x) => x === 0)).toBe(true);
      expect(tok.decode(ex.input_ids[i])).toBe(text);
    });
    ex.outputs.forEach((text, i) => {
      const ids = tok.encode(text);
      expect(ids).toEqual(ex.labels[i].filter((x) => x !== -100));
      expect(tok.decode(ids)).toBe(text);
    });
  });

  it('treats literal special-token strings as HF does (no-split tokens, eos not doubled)', () => {
    expect(tok.encode('a</s>b')).toEqual([100, 1, 101, 1]);
    expect(tok.encode('a</s>')).toEqual([100, 1]);
    expect(tok.encode('<pad><unk>')).toEqual([0, 2, 1]);
    const withSentinels = new ByteTokenizer({ extraIds: 2 });
    expect(withSentinels.vocabSize).toBe(261);
    // <extra_id_0> is the LAST id of the vocabulary (ByT5Tokenizer: vocab_size + i - n).
    expect(withSentinels.encode('<extra_id_0>x<extra_id_1>')).toEqual([260, 120 + 3, 259, 1]);
    expect(withSentinels.decode([260, 123, 259, 1])).toBe('x');
  });

  it('round-trips unicode and skips special tokens', () => {
    const text = 'Grüße, 世界! 🙂\n(A) yes';
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode([0, 107, 2, 108, 1, 0, 0])).toBe('hi');
    expect(tok.decode([])).toBe('');
  });

  it('drops ill-formed UTF-8 like Python errors="ignore"', () => {
    // A 3-byte sequence cut after 2 bytes, then "A": Python gives "A".
    expect(tok.decode([0xe2 + 3, 0x82 + 3, 65 + 3])).toBe('A');
    // A truncated character at the end (generation stopped mid-character) is dropped.
    expect(tok.decode([104 + 3, 0xf0 + 3, 0x9f + 3, 0x99 + 3])).toBe('h');
    // Lone continuation byte, overlong C0 80, surrogate ED A0 80, F5 lead: all dropped.
    expect(decodeUtf8Ignore(Uint8Array.from([0x80, 0x61, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x62, 0xf5, 0x63]))).toBe('abc');
    // The byte after a broken lead is re-examined, not swallowed: E2 then "x".
    expect(decodeUtf8Ignore(Uint8Array.from([0xe2, 0x78]))).toBe('x');
    // A genuine U+FFFD survives.
    expect(decodeUtf8Ignore(Uint8Array.from([0xef, 0xbf, 0xbd]))).toBe('\ufffd');
  });

  it('accepts ids of a padded model vocabulary and rejects ids outside it', () => {
    const padded = new ByteTokenizer({ extraIds: 0, modelVocabSize: 384 });
    expect(padded.vocabSize).toBe(384);
    expect(padded.decode([107, 300, 383, 108])).toBe('hi');
    badToken(() => padded.decode([107, 384]), 384);
    badToken(() => tok.decode([259]), 259);
    badToken(() => tok.decode([-1]), -1);
    badToken(() => tok.decode([1.5]), 1.5);
  });
});
