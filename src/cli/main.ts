/**
 * CLI entry point: the only place that prints usage, maps errors to one-line messages and sets
 * exit codes (STYLE.md §9). Each verb lives in src/cli/commands/<verb>.ts and exports `register`.
 */
import { Command, CommanderError } from 'commander';
import { LorahubError, exitCodeFor } from '../errors.ts';
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
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed usage/help; help and version exit 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    const verbose = argv.includes('--verbose');
    const message = err instanceof Error ? err.message : String(err);
    const prefix = err instanceof LorahubError ? 'error' : 'internal error';
    process.stderr.write(`lorahub: ${prefix}: ${message.split('\n')[0]}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}
