/**
 * Picks the tokenizer of a model folder, the way `AutoTokenizer.from_pretrained(dir)` would: a
 * `tokenizer.json` (FLAN-T5's Unigram, Llama/Mistral/Qwen2 BPE, GPT-2 byte-level BPE) wins;
 * otherwise a ByT5 byte vocabulary (tokenizer_config.json says ByT5Tokenizer, or the folder has no
 * tokenizer files at all and the model's vocabulary is byte-sized, like our own small model).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LorahubError } from '../errors.ts';
import { ByteTokenizer } from './bytes.ts';
import { JsonTokenizer, readJsonObject } from './sentencepiece.ts';
import type { Tokenizer } from './types.ts';

export type { Tokenizer } from './types.ts';
export { ByteTokenizer, decodeUtf8Ignore } from './bytes.ts';
export { JsonTokenizer } from './sentencepiece.ts';

/**
 * ByT5 checkpoints pad the embedding to a multiple of 128 (google/byt5-small: 384 = 259 + 125
 * sentinels), so a model without tokenizer files counts as byte-sized up to that.
 */
const MAX_BYTE_VOCAB = 384;
const BYTE_VOCAB = 259;

export function loadTokenizer(modelDir: string): Tokenizer {
  const modelVocabSize = readModelVocabSize(modelDir);
  if (existsSync(join(modelDir, 'tokenizer.json'))) {
    return JsonTokenizer.fromDir(modelDir, modelVocabSize, readModelIds(modelDir));
  }
  const configFile = join(modelDir, 'tokenizer_config.json');
  if (existsSync(configFile)) {
    const config = readJsonObject(configFile);
    const cls = config.tokenizer_class;
    if (cls === 'ByT5Tokenizer') {
      const extra = config.extra_ids ?? 125; // ByT5Tokenizer's default
      if (typeof extra !== 'number') {
        throw new LorahubError('BAD_CONFIG', `${configFile}: "extra_ids" must be a number, got ${JSON.stringify(extra)}`);
      }
      return new ByteTokenizer({ extraIds: extra, modelVocabSize });
    }
    throw new LorahubError(
      'UNSUPPORTED',
      `${modelDir}: tokenizer_class ${JSON.stringify(cls)} needs a tokenizer.json (only ByT5Tokenizer works without one)`,
    );
  }
  const hasSentencePiece = existsSync(join(modelDir, 'spiece.model'));
  if (!hasSentencePiece && modelVocabSize !== undefined && modelVocabSize >= BYTE_VOCAB && modelVocabSize <= MAX_BYTE_VOCAB) {
    return new ByteTokenizer({ extraIds: 0, modelVocabSize });
  }
  throw new LorahubError(
    'NOT_FOUND',
    `${modelDir}: no tokenizer (tokenizer.json, or tokenizer_config.json for a ByT5 byte tokenizer)` +
      (hasSentencePiece ? '; spiece.model alone is not supported: convert it to tokenizer.json' : ''),
  );
}

/**
 * A model folder's tokenizer, read on first use. Token ids need no tokenizer (transformers runs
 * them without one), so `score`, `eval` and `generate` hold this and load the tokenizer only when
 * a text must be encoded or ids decoded; a folder with none fails only then, saying what to give.
 */
export class LazyTokenizer implements Tokenizer {
  /** The tokenizer, or why the folder has none lorahub can use; undefined until first asked. */
  private loaded: Tokenizer | LorahubError | undefined;

  constructor(readonly modelDir: string) {}

  /**
   * The tokenizer, or undefined when the folder has none lorahub can use (no files, or a class
   * that needs a tokenizer.json): ids then print without text. Malformed tokenizer files throw.
   */
  find(): Tokenizer | undefined {
    if (this.loaded === undefined) {
      try {
        this.loaded = loadTokenizer(this.modelDir);
      } catch (err) {
        if (!(err instanceof LorahubError && (err.code === 'NOT_FOUND' || err.code === 'UNSUPPORTED'))) throw err;
        this.loaded = err;
      }
    }
    return this.loaded instanceof LorahubError ? undefined : this.loaded;
  }

  /** The tokenizer; a folder without one is an error that says what to give instead. */
  get(): Tokenizer {
    const tok = this.find();
    if (tok) return tok;
    const why = this.loaded as LorahubError;
    throw new LorahubError(why.code, `${why.message} — give token ids ({"input_ids","labels"}) or add the tokenizer files`, { cause: why });
  }

  get kind(): Tokenizer['kind'] {
    return this.get().kind;
  }
  get vocabSize(): number {
    return this.get().vocabSize;
  }
  get padId(): number {
    return this.get().padId;
  }
  get eosId(): number {
    return this.get().eosId;
  }
  encode(text: string): number[] {
    return this.get().encode(text);
  }
  encodeRaw(text: string, specialTokens: boolean): number[] {
    return this.get().encodeRaw(text, specialTokens);
  }
  decode(ids: number[]): string {
    return this.get().decode(ids);
  }
}

/** `tok`, or undefined when it is a LazyTokenizer of a folder without one (ids print without text). */
export function tokenizerIfAny(tok: Tokenizer): Tokenizer | undefined {
  return tok instanceof LazyTokenizer ? tok.find() : tok;
}

/** `tok`, loaded now if it is a LazyTokenizer: for work that will need it, so that it fails before, not after. */
export function requireTokenizer(tok: Tokenizer): Tokenizer {
  return tok instanceof LazyTokenizer ? tok.get() : tok;
}

/**
 * tokenizer_config.json's `model_max_length`, or undefined when the folder has none or says "no
 * limit": transformers writes int(1e30) (VERY_LARGE_INTEGER) for that, which is no safe integer.
 */
export function modelMaxLength(modelDir: string): number | undefined {
  const file = join(modelDir, 'tokenizer_config.json');
  if (!existsSync(file)) return undefined;
  const v = readJsonObject(file).model_max_length;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new LorahubError('BAD_CONFIG', `${file}: "model_max_length" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return Number.isSafeInteger(v) ? v : undefined;
}

/** config.json's eos (the first, where it lists several) and pad ids, where given as ids. */
function readModelIds(modelDir: string): { eos?: number; pad?: number } {
  const file = join(modelDir, 'config.json');
  if (!existsSync(file)) return {};
  const raw = readJsonObject(file);
  const first = (v: unknown) => (Array.isArray(v) ? v[0] : v);
  const id = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
  return { eos: id(first(raw.eos_token_id)), pad: id(raw.pad_token_id) };
}

/** config.json's vocab_size, or undefined when the folder has no readable config. */
function readModelVocabSize(modelDir: string): number | undefined {
  const file = join(modelDir, 'config.json');
  if (!existsSync(file)) return undefined;
  const v = readJsonObject(file).vocab_size;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new LorahubError('BAD_CONFIG', `${file}: "vocab_size" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}
