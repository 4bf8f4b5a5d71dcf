import type { Command } from 'commander';
import { initBackend, type BackendInfo } from '../backend.ts';

export interface GlobalOptions {
  verbose?: boolean;
  backend?: string;
}

/** The global options of the root program, from any sub-command. */
export function globalOptions(cmd: Command): GlobalOptions {
  let root = cmd;
  while (root.parent) root = root.parent;
  return root.opts<GlobalOptions>();
}

/** Initialises the backend a command asked for, printing it to stderr with --verbose. */
export async function setupBackend(cmd: Command): Promise<BackendInfo> {
  const g = globalOptions(cmd);
  const info = await initBackend(g.backend);
  if (g.verbose) process.stderr.write(`lorahub: backend ${info.name} (${info.provider})\n`);
  return info;
}
