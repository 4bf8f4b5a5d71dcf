import type { Command } from 'commander';

/** Every CLI verb. Each module exports `register(program)`; add one line per verb. */
export const COMMANDS: Array<(program: Command) => void> = [];
