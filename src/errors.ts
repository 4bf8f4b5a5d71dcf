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

/** Delimits an option name inside a message template (see `opt`). */
const OPT = /\u0000([A-Za-z][A-Za-z0-9]*)\u0000/g;

/**
 * An option of the library's API (camelCase, e.g. 'numModules') named in an error message. The
 * library does not know how its caller spells options: `err.message` names it as the API does
 * (`numModules`), and the CLI renders the same error with its flag (`--num-modules`, see
 * `LorahubError.render`), so library code never writes CLI flags into its messages.
 */
export function opt(name: string): string {
  return `\u0000${name}\u0000`;
}

/** The CLI's spelling of an API option: numModules → --num-modules. */
export function flagOf(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export class LorahubError extends Error {
  readonly code: ErrorCode;
  /** The message with `opt` markers, for `render`. */
  private readonly template: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.replace(OPT, '$1'), options);
    this.name = 'LorahubError';
    this.code = code;
    this.template = message;
  }

  /** The message with every option spelled by `spell` (the CLI passes `flagOf`). */
  render(spell: (option: string) => string): string {
    return this.template.replace(OPT, (_, name: string) => spell(name));
  }
}

/** Exit codes the CLI uses: 2 for usage errors (fixed on the command line), 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof LorahubError) {
    return err.code === 'BAD_ARGUMENT' ? 2 : 1;
  }
  return 1;
}
