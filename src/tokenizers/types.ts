/** What the model code needs from a tokenizer. */
export interface Tokenizer {
  readonly kind: 'bytes' | 'tokenizer.json';
  readonly vocabSize: number;
  readonly padId: number;
  readonly eosId: number;
  /** Token ids for `text`, with the trailing eos appended (as HF T5 tokenizers do). */
  encode(text: string): number[];
  /**
   * Token ids for `text` as the tokenizer's own `encode` gives them, nothing appended: with its
   * post-processor's special tokens (a Llama tokenizer: a leading bos; GPT-2's: none) or, with
   * `specialTokens` false, none at all. A causal LM's prompt and target are encoded this way.
   */
  encodeRaw(text: string, specialTokens: boolean): number[];
  /** Text for `ids`; special tokens (pad, eos, unk) are skipped. Throws BAD_TOKEN on ids outside the vocabulary. */
  decode(ids: number[]): string;
}
