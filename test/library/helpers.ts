/** Test helpers (not a test file): fixture paths, temp folders, running the real CLI. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repo is /work/main and shared is /work/shared: `../shared` from the repo root. */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/t5-gated/', import.meta.url));
export const MODEL = join(FIXTURES, 'model');
export const adapterDir = (k: number): string => join(FIXTURES, 'adapters', `a${k}`);

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `lorahub-${prefix}-`));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node bin/lorahub.mjs ...args` from the repo root. `timeoutMs`: SIGKILL it after that long
 * (a command that must not hang; the result then has signal SIGKILL).
 */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bin/lorahub.mjs'), ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}
