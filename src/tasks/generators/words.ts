/**
 * Alphabetical order. BBH's word_sorting sorts with Python's `sorted`, i.e. by code point; our
 * words are lower-case ASCII, where JavaScript's default sort agrees.
 */
import { z } from 'zod';
import { defineGenerator } from './define.ts';
import { TARGET_WORDS, UPSTREAM_WORDS } from './vocab.ts';

/** Code-point order, as Python's sorted() (explicit, so no locale can creep in). */
export function sortWords(words: readonly string[]): string[] {
  return words.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const count = z.strictObject({ min: z.number().int().min(1), max: z.number().int().max(40) }).refine((c) => c.min <= c.max, {
  message: 'min must be <= max',
});

export const bbhWordSorting = defineGenerator({
  name: 'bbh_word_sorting',
  description: 'BBH word_sorting: sort 2–20 distinct words (target-only vocabulary).',
  fields: ['words'],
  defaultTemplate: 'Sort the following words alphabetically: List: {words}',
  core: { field: 'words', rule: 'substring' },
  params: z.strictObject({ words: count.default({ min: 2, max: 20 }) }),
  sample(rng, p) {
    const words = rng.sample(TARGET_WORDS, rng.int(p.words.min, p.words.max));
    return { fields: { words: words.join(' ') }, target: sortWords(words).join(' ') };
  },
});

export const sortWordsShort = defineGenerator({
  name: 'sort_words',
  description: 'Sort a few distinct words alphabetically (upstream vocabulary).',
  fields: ['words'],
  defaultTemplate: 'Sort these words in alphabetical order: {words}\nAnswer:',
  params: z.strictObject({ words: count }),
  sample(rng, p) {
    const words = rng.sample(UPSTREAM_WORDS, rng.int(p.words.min, p.words.max));
    return { fields: { words: words.join(' ') }, target: sortWords(words).join(' ') };
  },
});

export const firstAlphabetical = defineGenerator({
  name: 'first_alphabetical',
  description: 'Which of a few words comes first alphabetically.',
  fields: ['words'],
  defaultTemplate: 'Which word comes first in alphabetical order: {words}?',
  params: z.strictObject({ words: count }),
  sample(rng, p) {
    const words = rng.sample(UPSTREAM_WORDS, rng.int(Math.max(2, p.words.min), p.words.max));
    return { fields: { words: words.join(', ') }, target: sortWords(words)[0] };
  },
});

const LETTERS = 'abcdefghijklmnopqrstuvwxyz'.split('');

export const letterOrder = defineGenerator({
  name: 'letter_order',
  description: 'Which of two letters comes first in the alphabet.',
  fields: ['a', 'b'],
  defaultTemplate: 'Which letter comes first in the alphabet: {a} or {b}?',
  params: z.strictObject({}),
  sample(rng) {
    const [a, b] = rng.sample(LETTERS, 2);
    return { fields: { a, b }, target: a < b ? a : b };
  },
});
