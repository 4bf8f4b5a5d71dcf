/**
 * A word-level vocabulary for the built-in base, written as a T5-style `tokenizer.json`
 * (SentencePiece Unigram model, Metaspace pre-tokenizer, a post-processor that appends `</s>`),
 * so `T5TokenizerFast` / `AutoTokenizer` load it in Python and JsonTokenizer runs it here.
 *
 * Why words: with byte tokens a five-person truth chain is ~180 tokens and a tiny two-layer
 * encoder spends its layers assembling words before it can relate them. The same tiny model,
 * trained for 6,000 steps on truth_chain + truth_claim, scores 43.6% on BBH web_of_lies with
 * bytes and 62.4% with this vocabulary (README, "The shipped default").
 *
 * The vocabulary is counted, not trained: every run of ASCII letters seen at least `minCount`
 * times in the texts, as SentencePiece would spell it (`▁word` after a space or at the start,
 * `word` after punctuation), scored by its log frequency. Digits are never merged (each is its own
 * piece, as Llama's and Qwen's tokenizers split numbers), so arithmetic keeps one token per digit.
 * Every printable ASCII character, `▁` followed by any non-letter, `▁`, newline and tab are
 * fallback pieces scored far below any word, so unseen words (BBH's names) fall apart into
 * characters rather than into `<unk>`; only characters outside ASCII become `<unk>`.
 * Layout as T5: `<pad>` 0, `</s>` 1, `<unk>` 2, and `extraIds` sentinels at the top of the
 * vocabulary (`<extra_id_0>` is the last id), which span corruption uses.
 */

export interface WordTokenizerOptions {
  /** Most words kept, by count (default 4000). */
  maxWords?: number;
  /** Fewest occurrences for a word to become a piece (default 3). */
  minCount?: number;
  /** Sentinel tokens at the top of the vocabulary (default 125, as the byte base). */
  extraIds?: number;
}

export const WORD_TOKENIZER_DEFAULTS = Object.freeze({ maxWords: 4000, minCount: 3, extraIds: 125 });

const SPACE = '▁';
// Far below any word's log frequency (a word seen 3 times in 10⁷ is ≈ −15), so a known word is
// always one piece; among fallbacks, `▁(` beats `▁` + `(`.
const SPACE_SCORE = -20;
const SPACE_SYMBOL_SCORE = -25;
const CHAR_SCORE = -30;

/** The tokenizer.json object for `texts` (deterministic: ties are broken by the piece's spelling). */
export function buildWordTokenizer(texts: Iterable<string>, opts: WordTokenizerOptions = {}): Record<string, unknown> {
  const { maxWords, minCount, extraIds } = { ...WORD_TOKENIZER_DEFAULTS, ...opts };
  const counts = new Map<string, number>();
  let total = 0;
  for (const text of texts) {
    // Metaspace (prepend "always") reads the text as " " + text, with spaces as ▁.
    for (const m of ` ${text}`.matchAll(/([^A-Za-z]?)([A-Za-z]+)/g)) {
      const piece = m[1] === ' ' ? `${SPACE}${m[2]}` : m[2];
      counts.set(piece, (counts.get(piece) ?? 0) + 1);
      total += 1;
    }
  }
  const words = [...counts]
    .filter(([, c]) => c >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, maxWords);
  const vocab: [string, number][] = [['<pad>', 0], ['</s>', 0], ['<unk>', 0]];
  const known = new Set(vocab.map(([p]) => p));
  const add = (piece: string, score: number): void => {
    if (known.has(piece)) return;
    known.add(piece);
    vocab.push([piece, score]);
  };
  for (const [w, c] of words) add(w, Math.log(c / total));
  add(SPACE, SPACE_SCORE);
  add('\n', SPACE_SCORE);
  add('\t', SPACE_SCORE);
  for (let code = 33; code < 127; code++) {
    const ch = String.fromCharCode(code);
    add(ch, CHAR_SCORE);
    if (!/[A-Za-z]/.test(ch)) add(`${SPACE}${ch}`, SPACE_SYMBOL_SCORE);
  }
  const firstSentinel = vocab.length;
  for (let i = extraIds - 1; i >= 0; i--) vocab.push([`<extra_id_${i}>`, 0]);
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const eos = { SpecialToken: { id: '</s>', type_id: 0 } };
  const metaspace = { type: 'Metaspace', replacement: SPACE, prepend_scheme: 'always', split: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      special(0, '<pad>'),
      special(1, '</s>'),
      special(2, '<unk>'),
      ...vocab.slice(firstSentinel).map(([p], j) => special(firstSentinel + j, p)),
    ],
    normalizer: null,
    pre_tokenizer: metaspace,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, eos],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, eos, { Sequence: { id: 'B', type_id: 0 } }, eos],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: metaspace,
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
}

/** tokenizer_config.json and special_tokens_map.json for a word tokenizer with `extraIds` sentinels. */
export function wordTokenizerConfigs(extraIds: number): { config: Record<string, unknown>; specialTokens: Record<string, unknown> } {
  const additional = Array.from({ length: extraIds }, (_, i) => `<extra_id_${i}>`);
  const specialTokens = { eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', additional_special_tokens: additional };
  return {
    config: { ...specialTokens, extra_ids: extraIds, model_max_length: 1024, tokenizer_class: 'T5Tokenizer', clean_up_tokenization_spaces: false },
    specialTokens,
  };
}
