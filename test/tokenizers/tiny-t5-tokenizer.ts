/** Test helper (not a test file): a tiny FLAN-T5-style tokenizer.json. */
/**
 * A miniature of FLAN-T5's tokenizer.json: Unigram model (pad 0, eos 1, unk 2), T5's whitespace
 * normalizer (collapse runs of spaces; the real file precedes it with a Precompiled charsmap),
 * WhitespaceSplit + Metaspace pre-tokenizer, a TemplateProcessing post-processor appending </s>,
 * and a Metaspace decoder.
 */
export function tinyT5TokenizerJson(): Record<string, unknown> {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'WhitespaceSplit' },
        { type: 'Metaspace', replacement: '▁', add_prefix_space: true, prepend_scheme: 'always' },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', add_prefix_space: true, prepend_scheme: 'always' },
    model: {
      type: 'Unigram',
      unk_id: 2,
      vocab: [
        ['<pad>', 0],
        ['</s>', 0],
        ['<unk>', 0],
        ['▁', -2], // 3
        ['▁a', -1.5], // 4
        ['b', -3], // 5
        ['▁ab', -1], // 6
        ['a', -3], // 7
        ['c', -3], // 8
        ['▁c', -2.5], // 9
        ['▁.', -2], // 10
        ['.', -2.5], // 11
      ],
    },
  };
}
