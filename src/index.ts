// Public API: re-exports only.
export { LorahubError, type ErrorCode } from './errors.ts';
export { initBackend, backendInfo, availableBackends, type BackendInfo, type BackendName } from './backend.ts';

// Engines: every forward pass above this seam goes through these calls
export {
  openEngine,
  loadModel,
  resolveEngineOptions,
  ENGINE_NAMES,
  DEVICE_NAMES,
  type Engine,
  type EngineModel,
  type EngineInfo,
  type EngineOptions,
  type EngineName,
  type DeviceName,
  type ScoreBatch,
  type TokenLosses,
  type GenerateInput,
  type GenerateOptions,
} from './engine/index.ts';

// Formats
export { SafetensorsFile, readSafetensors, writeSafetensors, encodeSafetensors, type TensorToWrite } from './io/safetensors.ts';
export { readTorchBin } from './io/torch-bin.ts';
export { readAdapter, writeAdapter, parseLoraConfig, peftKey } from './io/peft.ts';

// Models
export { loadT5Config, t5ConfigFromHf, type T5Config } from './models/t5/config.ts';
export { t5LinearShape, t5Linears, t5Sublayer, t5WeightTable } from './models/t5/checkpoint.ts';
export { T5Model, type LoraDeltas, type EncoderInput } from './models/t5/model.ts';
export { generateGreedy } from './models/t5/generate.ts';
export { tokenCrossEntropy } from './models/t5/loss.ts';
export { exampleLosses, batchMeanLoss, checkLabels, IGNORE_INDEX } from './models/shared/batch.ts';
export { shiftRight, stripGenerated } from './models/t5/labels.ts';
export { writeRandomT5 } from './models/t5/random.ts';
export { ByteTokenizer, JsonTokenizer, LazyTokenizer, loadTokenizer } from './tokenizers/index.ts';
export type { Tokenizer } from './tokenizers/types.ts';

// LoRA
export type { LoraConfig, LoraModule, LoraTarget } from './lora/module.ts';
export { compose, planComposition, type Harmonize, type ComposeOptions } from './lora/compose.ts';
export { mergedWeight } from './lora/merge.ts';
export { mergeIntoCheckpoint } from './models/merge.ts';
export { moduleDeltas, groupDeltas, disposeDeltas } from './models/t5/deltas.ts';
export { checkModuleFitsModel, fitProblems, type LinearLayout } from './lora/fit.ts';

// Library
export { openLibrary, Library, resolveModules, modelFingerprint, loadBaseModel } from './library/index.ts';

// ADAPT
export {
  FewShotObjective,
  buildFewShotBatch,
  l1Regularization,
  normalizedLoss,
  type FewShotBatch,
  type LossNormalization,
  type ObjectiveOptions,
} from './adapt/objective.ts';

// Evaluation
export {
  scoreExamples,
  generateExamples,
  tokenizeExamples,
  lengthLimit,
  DEFAULT_MAX_LENGTH,
  type LengthLimit,
  type ScoreResult,
  type GenerateResult,
} from './eval/score.ts';
export type { Example, TextExample, TokenExample } from './tasks/types.ts';
export { evaluateExactMatch, maxNewTokensFor, answerAccuracy, type EvalOptions, type EvalResult } from './eval/evaluate.ts';
