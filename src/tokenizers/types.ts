/** What the model code needs from a tokenizer. */
export interface Tokenizer {
  readonly kind: 'bytes' | 'tokenizer.json';
  readonly vocabSize: number;
  readonly padId: number;
  readonly eosId: number;
  /** Token ids for `text`, with the trailing eos appended (as HF T5 tokenizers do). */
  encode(text: string): number[];
  /** Text for `ids`; special tokens (pad, eos, unk) are skipped. Throws BAD_TOKEN on ids outside the vocabulary. */
  decode(ids: number[]): string;
}
