/**
 * A Hugging Face `tokenizer.json` (FLAN-T5 ships a SentencePiece Unigram model with a Precompiled
 * normalizer, a Metaspace pre-tokenizer and a TemplateProcessing post-processor that appends
 * `</s>`), run by the pure-JS `@huggingface/tokenizers`. Everything is read from local files: the
 * library is given the parsed JSON objects and never fetches anything.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { LorahubError } from '../errors.ts';
import type { Tokenizer } from './types.ts';

export interface JsonTokenizerOptions {
  /** The parsed tokenizer_config.json (special-token names, clean_up_tokenization_spaces); {} if absent. */
  config?: Record<string, unknown>;
  /** The model's `vocab_size` (T5 pads its embedding, 32128 > 32100): ids in between decode to nothing. */
  modelVocabSize?: number;
  /** Names the source in error messages. */
  file?: string;
  /**
   * config.json's eos/pad ids, for tokenizers whose special tokens are not T5's names: a
   * decoder-only tokenizer.json (GPT-2's "<|endoftext|>", no pad token at all) names them only
   * in tokenizer_config.json, if anywhere. A missing pad falls back to eos, as transformers does.
   */
  modelIds?: { eos?: number; pad?: number };
}

export class JsonTokenizer implements Tokenizer {
  readonly kind = 'tokenizer.json' as const;
  readonly vocabSize: number;
  readonly padId: number;
  readonly eosId: number;
  readonly unkId: number | undefined;
  /** Number of ids the tokenizer itself knows (model vocabulary plus added tokens). */
  readonly tokenizerVocabSize: number;
  private readonly hf: HfTokenizer;
  private readonly file: string;

  constructor(json: Record<string, unknown>, opts: JsonTokenizerOptions = {}) {
    this.file = opts.file ?? 'tokenizer.json';
    const config = opts.config ?? {};
    try {
      this.hf = new HfTokenizer(json, config);
    } catch (cause) {
      throw new LorahubError('BAD_FILE', `${this.file}: cannot build the tokenizer (${(cause as Error).message})`, { cause });
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.tokenizerVocabSize = maxId + 1;
    const modelVocab = opts.modelVocabSize ?? this.tokenizerVocabSize;
    this.vocabSize = Math.max(modelVocab, this.tokenizerVocabSize);
    this.eosId = this.specialId(config, 'eos_token', '</s>', opts.modelIds?.eos);
    this.padId = this.specialId(config, 'pad_token', '<pad>', opts.modelIds?.pad ?? this.eosId);
    this.unkId = this.hf.token_to_id(tokenName(config.unk_token) ?? '<unk>');
  }

  /** Reads `<dir>/tokenizer.json` (+ tokenizer_config.json when present). */
  static fromDir(dir: string, modelVocabSize?: number, modelIds?: JsonTokenizerOptions['modelIds']): JsonTokenizer {
    const file = join(dir, 'tokenizer.json');
    const json = readJsonObject(file);
    const configFile = join(dir, 'tokenizer_config.json');
    let config: Record<string, unknown> = {};
    try {
      config = readJsonObject(configFile);
    } catch (err) {
      if (!(err instanceof LorahubError && err.code === 'NOT_FOUND')) throw err;
    }
    return new JsonTokenizer(json, { config, modelVocabSize, file, modelIds });
  }

  /** The id of tokenizer_config.json's `key` token, else of `fallback`'s name, else `fallbackId`. */
  private specialId(config: Record<string, unknown>, key: string, fallback: string, fallbackId?: number): number {
    const named = tokenName(config[key]);
    const name = named ?? fallback;
    const id = this.hf.token_to_id(name);
    if (id === undefined && named === undefined && fallbackId !== undefined) return fallbackId;
    if (id === undefined) {
      throw new LorahubError('BAD_FILE', `${this.file}: ${key} "${name}" is not in the vocabulary`);
    }
    return id;
  }

  /**
   * Ids with the post-processor's special tokens (T5: a trailing `</s>`). When the tokenizer.json
   * has no post-processor, eos is appended here, as the slow T5Tokenizer does
   * (`_add_eos_if_not_present`), so every model input ends with eos.
   */
  encode(text: string): number[] {
    const ids = this.encodeRaw(text, true);
    if (ids.length === 0 || ids[ids.length - 1] !== this.eosId) ids.push(this.eosId);
    return ids;
  }

  encodeRaw(text: string, specialTokens: boolean): number[] {
    return this.hf.encode(text, { add_special_tokens: specialTokens }).ids;
  }

  /**
   * HF `decode(ids, skip_special_tokens=True)`: special tokens (pad, eos, unk, sentinels) are
   * skipped, and the tokenizer_config's clean_up_tokenization_spaces applies (default true, as in
   * transformers 4.31). Ids the model has but the tokenizer lacks (embedding padding) decode to nothing.
   */
  decode(ids: number[]): string {
    const known: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new LorahubError('BAD_TOKEN', `token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      if (id < this.tokenizerVocabSize && this.hf.id_to_token(id) !== undefined) known.push(id);
    }
    // The library rejects an empty list; an empty decode is simply "".
    if (known.length === 0) return '';
    return this.hf.decode(known, { skip_special_tokens: true });
  }
}

/** A special-token entry of tokenizer_config.json: a string or an AddedToken object. */
function tokenName(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return undefined;
}

export function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new LorahubError('NOT_FOUND', `${file}: cannot read (${(cause as Error).message})`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new LorahubError('BAD_FILE', `${file}: invalid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LorahubError('BAD_FILE', `${file}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}
