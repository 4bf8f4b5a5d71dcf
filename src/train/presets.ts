/**
 * The base model's shapes, apart from the trainer (base.ts) so that the CLI can list them without
 * loading tfjs.
 */
export type BaseSize = 'tiny' | 'compact' | 'default';

/**
 * Model shapes (T5 v1.1: gated-gelu FFN, untied head; ByT5 vocabulary 384).
 * - `default`: 6.5 M parameters (13 MB in F16). Measured on one wasm thread: one CMA-ES
 *   generation (12 candidates × 5 few-shot examples, 20 modules r16 q,v) takes 1.1 s on
 *   boolean_expressions (42 bytes), 3.6 s on navigate (160), 18 s on tracking_shuffled_objects (514).
 * - `compact`: 2.8 M parameters, half of that time (0.53 s, 1.6 s, 8.1 s) and 2.3× the training
 *   throughput (1 300 vs 560 tokens/s), for when the default is too slow for the targets' lengths.
 * - `tiny`: 0.25 M parameters, ~7 200 tokens/s of training on one wasm thread: the shipped default's
 *   base (at a fixed build budget it learns more than `compact`: README, "The shipped default"), and tests.
 */
export const BASE_PRESETS: Readonly<Record<BaseSize, Readonly<Record<string, number>>>> = Object.freeze({
  tiny: { d_model: 64, d_kv: 16, num_heads: 4, d_ff: 128, num_layers: 2, num_decoder_layers: 2 },
  compact: { d_model: 192, d_kv: 32, num_heads: 6, d_ff: 384, num_layers: 3, num_decoder_layers: 3 },
  default: { d_model: 256, d_kv: 32, num_heads: 8, d_ff: 512, num_layers: 4, num_decoder_layers: 4 },
});

/**
 * AdamW's decoupled weight decay for base training. 0.1, not 0: on the upstream mixture (tiny,
 * 14,000 steps) it raised the mean test exact match of the modules trained on the seed-0 base from
 * 45.0% to 53.2% (27 of 33 tasks up) and the seed-1 base's own from 43.2% to 47.9%; a base trained
 * on truth_claim alone learned it in 3,000 steps (91%) where plain Adam stayed at chance (README,
 * "The shipped default"). The shipped base used 0, which scripts/build-default.ts passes.
 */
export const DEFAULT_BASE_WEIGHT_DECAY = 0.1;

/** The base's vocabulary: ByT5's bytes, or words counted from the upstream mixture (tokenizers/words.ts). */
export type BaseTokenizerKind = 'bytes' | 'words';
export const BASE_TOKENIZERS: readonly BaseTokenizerKind[] = ['bytes', 'words'];
/** train-base's default vocabulary (README, "The shipped default"). */
export const DEFAULT_BASE_TOKENIZER: BaseTokenizerKind = 'words';
