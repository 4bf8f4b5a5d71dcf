// The task system's public API: re-exports only.
export type { AnswerFormat, Example, TextExample, Split, TaskDef, TaskKind } from './types.ts';
export { DEFAULT_BBH_DIR, DEFAULT_TASKS_DIR, getTask, getTasks, listTasks, loadTaskFile } from './registry.ts';
export { drawExamples, fewShot, sampleExamples, taskExamples, withFormats, FEW_SHOT_DRAWS, type FewShotDraw } from './dataset.ts';
export { MAX_TEXT_BYTES, loadDataFile, loadExamplesFile } from './loaders.ts';
export { validateTask } from './schema.ts';
export { LeakIndex, findLeaks, instanceCore, type Leak, type UpstreamText } from './leakage.ts';
export { GENERATORS, getGenerator, type GeneratorSpec } from './generators/index.ts';
export { canGenerateBbhBoolean, evalBoolean } from './generators/boolean.ts';
