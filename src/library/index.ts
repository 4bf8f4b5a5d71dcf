/** The module library: manifest, integrity, locking, base fingerprints, module resolution. */
export {
  BASE_FOLDER,
  DEFAULT_LIBRARY_DIR,
  defaultReadLibraryDir,
  LIBRARY_ENV,
  Library,
  SHIPPED_LIBRARY_DIR,
  openLibrary,
  openLibraryIfExists,
  samplingConflictError,
  validateModuleName,
  writableLibraryDir,
  type AddOptions,
  type AddResult,
} from './library.ts';
export {
  BASE_FINGERPRINT_METADATA_KEY,
  compatibilityProblems,
  loadBaseModel,
  modelFingerprint,
  shapeProblems,
  shortFingerprint,
  type BaseModel,
} from './fingerprint.ts';
export type { LibraryReader } from './reader.ts';
export type { DefaultBase, FileRecord, Manifest, MetricValue, ModuleEntry } from './manifest.ts';
export { resolveModules, sampleCompatible, samplePool, type ResolveOptions } from './resolve.ts';
export { verifyLibrary, type ModuleReport, type VerifyReport } from './verify.ts';
export { shippedBytes } from './files.ts';
