/**
 * The forward verbs on the ort engine never load @tensorflow/tfjs (pure code keeps tensor
 * libraries out; the trainers import theirs in their action). Proven on a real process: the CLI
 * runs under a module-resolution hook that reports every @tensorflow/tfjs* import.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, T5_GATED } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-no-tfjs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MARK = 'TFJS-IMPORTED';
const hooks = join(tmp, 'hooks.mjs');
writeFileSync(
  hooks,
  `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@tensorflow/tfjs')) process.stderr.write('${MARK} ' + specifier + ' from ' + context.parentURL + '\\n');
  return next(specifier, context);
}
`,
);
const register = join(tmp, 'register.mjs');
writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
const DATA = join(tmp, 'data.jsonl');
writeFileSync(DATA, `${JSON.stringify({ input: 'not ( True ) and ( True ) is', target: 'False' })}\n`);

function lorahub(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, join(REPO, 'bin', 'lorahub.mjs'), ...args], { cwd: tmp, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('an ort-only process', () => {
  it('`lorahub --engine ort score --adapter` never imports @tensorflow/tfjs', () => {
    const r = lorahub(['--engine', 'ort', 'score', '--model', `${T5_GATED}/model`, '--adapter', `${T5_GATED}/adapters/a0`, '--data', DATA, '--json']);
    expect(r.stderr).not.toContain(MARK);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ engine: 'ort' });
  });

  it('the hook sees tfjs when it is imported (--engine tfjs)', () => {
    const r = lorahub(['--engine', 'tfjs', 'score', '--model', `${T5_GATED}/model`, '--data', DATA, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${MARK} @tensorflow/tfjs`);
  });
});
