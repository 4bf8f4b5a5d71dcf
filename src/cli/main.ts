/**
 * CLI entry point: the only place that prints usage, maps errors to one-line messages and sets
 * exit codes (STYLE.md §9). Each verb lives in src/cli/commands/<verb>.ts and exports `register`.
 */
import { Command, CommanderError } from 'commander';
import { LorahubError, exitCodeFor, flagOf } from '../errors.ts';
import { COMMANDS } from './commands/index.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('lorahub')
    .description('Gradient-free LoRA composition (LoRAHub): compose PEFT LoRA modules for a new task from a few examples.')
    .option('--verbose', 'show the engine, timings and stack traces')
    .option('--engine <name>', 'forward engine: ort | tfjs (default: ort when it loads, else tfjs; env LORAHUB_ENGINE)')
    .option('--device <name>', 'cpu | cuda (cuda needs the ort engine; default cpu; env LORAHUB_DEVICE)')
    .option('--threads <n>', 'threads per forward pass (default: all cores)')
    .option('--backend <name>', 'tfjs backend: node-gpu | node | wasm | cpu (picks the tfjs engine; default: best available; env LORAHUB_BACKEND)')
    // Usage errors are one line (main below prints it, with commander's "did you mean" and where
    // the help is), not the whole help text: silence commander's own error output.
    .configureOutput({ outputError: () => {} })
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** The command line that `args` reached (`lorahub modules add`), to point at its help. */
function commandName(program: Command, args: string[]): string {
  const names = [program.name()];
  let cmd = program;
  for (const arg of args) {
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) continue;
    names.push(sub.name());
    cmd = sub;
  }
  return names.join(' ');
}

/**
 * commander's message as one line: "error: unknown option '--modles'\n(Did you mean --modules?)"
 * → "unknown option '--modles' (did you mean --modules?); see lorahub compose --help".
 */
function usageLine(err: CommanderError, command: string): string {
  const [first, ...rest] = err.message.replace(/^error: /, '').split('\n');
  const hint = rest.map((l) => l.trim().replace(/^\(Did you/, '(did you')).filter((l) => l !== '');
  return `${[first.replace(/\.$/, ''), ...hint].join(' ')}; see ${command} --help`;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; help shown for a missing sub-command was printed by commander.
      if (err.exitCode === 0) return 0;
      if (err.code !== 'commander.help') process.stderr.write(`lorahub: error: ${usageLine(err, commandName(program, argv.slice(2)))}\n`);
      return 2;
    }
    const verbose = argv.includes('--verbose');
    const message = err instanceof LorahubError ? err.render(flagOf) : err instanceof Error ? err.message : String(err);
    // An internal invariant (code INTERNAL, or anything not ours) is reported as ours to fix, never as the user's.
    const prefix = err instanceof LorahubError && err.code !== 'INTERNAL' ? 'error' : 'internal error';
    process.stderr.write(`lorahub: ${prefix}: ${message.split('\n')[0]}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}
