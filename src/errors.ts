/**
 * Typed errors. The library throws these; only the CLI entry point turns them into
 * one-line messages and exit codes (STYLE.md §9).
 */
export type ErrorCode =
  | 'BAD_ARGUMENT'
  | 'BAD_CONFIG'
  | 'BAD_FILE'
  | 'NOT_FOUND'
  | 'SHAPE_MISMATCH'
  | 'INCOMPATIBLE'
  | 'UNSUPPORTED'
  | 'BAD_TOKEN'
  | 'NUMERIC'
  | 'LOCKED'
  | 'INTEGRITY'
  | 'BACKEND'
  | 'INTERRUPTED'
  /**
   * An invariant of lorahub's own code broke (a bug, or the library API called wrongly): never
   * a usage error, since nothing on the command line can fix it.
   */
  | 'INTERNAL';

export class LorahubError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LorahubError';
    this.code = code;
  }
}

/** Exit codes the CLI uses: 2 for usage errors (fixed on the command line), 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof LorahubError) {
    return err.code === 'BAD_ARGUMENT' ? 2 : 1;
  }
  return 1;
}
