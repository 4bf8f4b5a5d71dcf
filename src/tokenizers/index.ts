/**
 * Picks the tokenizer of a model folder, the way `AutoTokenizer.from_pretrained(dir)` would for
 * the two families lorahub supports: a `tokenizer.json` (FLAN-T5 and other fast tokenizers) wins;
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
    return JsonTokenizer.fromDir(modelDir, modelVocabSize);
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
    `${modelDir}: no tokenizer found (expected tokenizer.json, or a ByT5 tokenizer_config.json` +
      (hasSentencePiece ? '; spiece.model alone is not supported: convert it to tokenizer.json' : '') +
      ')',
  );
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
