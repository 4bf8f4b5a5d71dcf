// Public API: re-exports only.
export { LorahubError, type ErrorCode } from './errors.ts';
export { initBackend, backendInfo, availableBackends, type BackendInfo, type BackendName } from './backend.ts';
export type { LoraConfig, LoraModule, LoraTarget } from './lora/module.ts';
export type { Tokenizer } from './tokenizers/types.ts';
