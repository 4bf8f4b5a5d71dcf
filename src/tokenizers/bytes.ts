/**
 * The ByT5 byte vocabulary (transformers/models/byt5/tokenization_byt5.py, v4.31):
 *   0 <pad>, 1 </s>, 2 <unk>, UTF-8 byte b → b + 3,
 *   then `extra_ids` sentinels at the END of the vocabulary (<extra_id_0> is the last id).
 * The fixture model and lorahub's own small model use it.
 */
import { LorahubError } from '../errors.ts';
import type { Tokenizer } from './types.ts';

const PAD = 0;
const EOS = 1;
const UNK = 2;
/** pad, eos, unk come before the bytes (ByT5Tokenizer._num_special_tokens). */
const NUM_SPECIAL = 3;
const UTF_VOCAB = 256;

export interface ByteTokenizerOptions {
  /** Sentinel tokens after the bytes (tokenizer_config.json `extra_ids`; HF's default is 125). */
  extraIds?: number;
  /**
   * The model's `vocab_size` when larger than the tokenizer's (ByT5 checkpoints pad the embedding,
   * e.g. 384): ids in between are valid model outputs that decode to nothing.
   */
  modelVocabSize?: number;
}

export class ByteTokenizer implements Tokenizer {
  readonly kind = 'bytes' as const;
  readonly vocabSize: number;
  readonly padId = PAD;
  readonly eosId = EOS;
  /** Ids of the tokenizer itself (bytes, specials, sentinels); vocabSize may be larger. */
  readonly tokenizerVocabSize: number;
  readonly extraIds: number;
  /** Special-token strings HF never splits when they appear literally in the text. */
  private readonly specialText: Map<string, number>;
  private readonly specialPattern: RegExp;

  constructor(opts: ByteTokenizerOptions = {}) {
    const extraIds = opts.extraIds ?? 0;
    if (!Number.isInteger(extraIds) || extraIds < 0) {
      throw new LorahubError('BAD_CONFIG', `ByteTokenizer: extra_ids must be a non-negative integer, got ${extraIds}`);
    }
    this.extraIds = extraIds;
    this.tokenizerVocabSize = UTF_VOCAB + NUM_SPECIAL + extraIds;
    const modelVocab = opts.modelVocabSize ?? this.tokenizerVocabSize;
    if (!Number.isInteger(modelVocab) || modelVocab < UTF_VOCAB + NUM_SPECIAL) {
      throw new LorahubError(
        'BAD_CONFIG',
        `ByteTokenizer: model vocab_size ${modelVocab} is smaller than the byte vocabulary (${UTF_VOCAB + NUM_SPECIAL})`,
      );
    }
    this.vocabSize = Math.max(modelVocab, this.tokenizerVocabSize);
    this.specialText = new Map([
      ['<pad>', PAD],
      ['</s>', EOS],
      ['<unk>', UNK],
    ]);
    // HF: special_tokens_encoder[token] = vocab_size + i - n, so <extra_id_0> is the last id.
    for (let i = 0; i < extraIds; i++) this.specialText.set(`<extra_id_${i}>`, this.tokenizerVocabSize - 1 - i);
    const alternatives = [...this.specialText.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.specialPattern = new RegExp(`(${alternatives.join('|')})`);
  }

  /**
   * UTF-8 bytes + 3, then eos. As in HF, special-token strings written literally in the text
   * ("</s>", "<extra_id_0>") become their ids (they are no-split tokens), and eos is not added
   * a second time when the text already ends with it (ByT5Tokenizer._add_eos_if_not_present).
   */
  encode(text: string): number[] {
    const ids = this.encodeRaw(text, false);
    if (ids.length === 0 || ids[ids.length - 1] !== EOS) ids.push(EOS);
    return ids;
  }

  /** UTF-8 bytes + 3 (special-token strings as their ids); a byte vocabulary adds no special tokens of its own. */
  encodeRaw(text: string, _specialTokens: boolean): number[] {
    const ids: number[] = [];
    const utf8 = new TextEncoder();
    // split with a capturing group keeps the separators at odd indices.
    const parts = text.split(this.specialPattern);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i % 2 === 1) {
        ids.push(this.specialText.get(part) as number);
        continue;
      }
      for (const b of utf8.encode(part)) ids.push(b + NUM_SPECIAL);
    }
    return ids;
  }

  /**
   * Skips pad/eos/unk, sentinels and the model's padding ids; bytes that do not form valid UTF-8
   * are dropped, as HF does (`bstring.decode("utf-8", errors="ignore")`), so a generation cut in
   * the middle of a multi-byte character decodes to its complete prefix.
   */
  decode(ids: number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new LorahubError('BAD_TOKEN', `token id ${id} is outside the byte vocabulary [0, ${this.vocabSize})`);
      }
      if (id < NUM_SPECIAL || id >= NUM_SPECIAL + UTF_VOCAB) continue;
      bytes.push(id - NUM_SPECIAL);
    }
    return decodeUtf8Ignore(Uint8Array.from(bytes));
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Python's `bytes.decode("utf-8", errors="ignore")`: well-formed sequences are kept, every
 * maximal ill-formed subpart is dropped (Unicode 15 §3.9, Table 3-7 gives the valid second-byte
 * ranges; CPython and WHATWG TextDecoder both follow the maximal-subpart practice, so keeping
 * exactly the well-formed sequences reproduces Python's output).
 */
export function decodeUtf8Ignore(bytes: Uint8Array): string {
  const kept: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i];
    let len: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b0 < 0x80) len = 1;
    else if (b0 >= 0xc2 && b0 <= 0xdf) len = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      if (b0 === 0xe0) lo = 0xa0; // no overlongs
      if (b0 === 0xed) hi = 0x9f; // no surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      if (b0 === 0xf0) lo = 0x90; // no overlongs
      if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else {
      i += 1; // a continuation byte or an invalid lead (C0, C1, F5..FF)
      continue;
    }
    let j = i + 1;
    let ok = true;
    for (let k = 1; k < len; k++, j++) {
      const lower = k === 1 ? lo : 0x80;
      const upper = k === 1 ? hi : 0xbf;
      if (j >= bytes.length || bytes[j] < lower || bytes[j] > upper) {
        ok = false;
        break;
      }
    }
    if (ok) {
      for (let k = i; k < i + len; k++) kept.push(bytes[k]);
      i += len;
    } else {
      // Drop the maximal subpart and resume at the first byte that could not continue it.
      i = j;
    }
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(kept));
}
