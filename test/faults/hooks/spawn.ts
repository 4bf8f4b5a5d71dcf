/**
 * Running the real CLI (node bin/lorahub.mjs) with a fault from fs-faults.mjs: the test side of
 * the preload hook. Not a test file.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CliResult } from '../../library/helpers.ts';
import { REPO } from '../../library/helpers.ts';

const HOOK = fileURLToPath(new URL('./fs-faults.mjs', import.meta.url));

/** One fault; see fs-faults.mjs. `match` is a RegExp whose source the child compiles. */
export interface Fault {
  op: 'rename' | 'copyFile' | 'write' | 'rm';
  match: RegExp;
  nth?: number;
  when?: 'before' | 'after';
  action: 'stop' | 'enospc';
  bytes?: number;
}

/** The environment that loads the hook into a child and describes `fault` to it. */
export function faultEnv(fault: Fault): Record<string, string> {
  const options = [process.env.NODE_OPTIONS, `--import=${pathToFileURL(HOOK).href}`].filter(Boolean).join(' ');
  return { NODE_OPTIONS: options, LORAHUB_FAULT: JSON.stringify({ ...fault, match: fault.match.source }) };
}

export interface FaultedRun {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the hook's marker line once the child stopped at the fault; rejects if it exits first. */
  stopped: Promise<string>;
  /** Resolves when the child has exited (killed or not), with what it printed. */
  exited: Promise<CliResult>;
}

/** Starts `lorahub ...args` with `fault` injected. */
export function startWithFault(args: string[], fault: Fault): FaultedRun {
  const child = spawn(process.execPath, [join(REPO, 'bin/lorahub.mjs'), ...args], {
    cwd: REPO,
    env: { ...process.env, ...faultEnv(fault) },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<CliResult>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
  const stopped = new Promise<string>((res, rej) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const line = stderr.split('\n').find((l) => l.startsWith('lorahub-fault: stopped'));
      if (line) res(line);
    });
    void exited.then((r) => rej(new Error(`lorahub ${args.join(' ')} exited (${r.code ?? r.signal}) before the fault: ${r.stderr}`)));
  });
  // A test that fails before it kills the child must not leave it stopped forever.
  stopped.catch(() => {});
  return { child, stopped, exited };
}

/**
 * Runs `lorahub ...args` until the fault stops it, then SIGKILLs it there (a crash at exactly that
 * point). Returns the marker line.
 */
export async function killAtFault(args: string[], fault: Fault): Promise<string> {
  const run = startWithFault(args, fault);
  try {
    const line = await run.stopped;
    run.child.kill('SIGKILL');
    const r = await run.exited;
    if (r.signal !== 'SIGKILL') throw new Error(`expected SIGKILL, got ${r.code ?? r.signal}`);
    return line;
  } finally {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  }
}

/** The lines of `stderr` that lorahub itself printed (not the progress bar), and no stack trace. */
export function lorahubLines(stderr: string): string[] {
  return stderr.split(/[\r\n]+/).filter((l) => l.startsWith('lorahub') || /^\s+at /.test(l));
}
