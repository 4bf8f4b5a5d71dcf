/**
 * No silent failures: a checkpoint with one NaN weight makes score, generate, eval and compose
 * exit 1 with one line naming the model, the result, the engine and the other engine to try —
 * never a NaN/null result with exit 0 — on both engines.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineName } from '../../src/engine/types.ts';
import { T5_GATED, variant } from '../helpers.ts';
import { runCli } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-nonfinite-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// One NaN in the first encoder query weight reaches every position through attention.
const NAN_MODEL = variant(tmp, 'nan', () => {}, (t) =>
  t.map((x) => (x.name === 'encoder.block.0.layer.0.SelfAttention.q.weight' ? { ...x, data: Float32Array.from(x.data as Float32Array, (v, i) => (i === 0 ? Number.NaN : v)) } : x)),
);
const DATA = join(tmp, 'data.jsonl');
writeFileSync(DATA, `${JSON.stringify({ input: 'not ( True ) and ( True ) is', target: 'False' })}\n`);
const A = `${T5_GATED}/adapters`;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Exit 1, and as the last stderr line (compose draws a progress bar above it) the one-line error. */
async function expectNonFinite(engine: EngineName, args: string[], what: string, oneLine = true): Promise<void> {
  const r = await runCli(['--engine', engine, ...args]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  if (oneLine) expect(lines).toHaveLength(1);
  const other = engine === 'ort' ? 'tfjs' : 'ort';
  expect(lines.at(-1)).toMatch(
    new RegExp(
      `^lorahub: error: ${escape(NAN_MODEL)}: ${escape(what)} is NaN/∞ on the ${engine} engine \\(cpu\\): the checkpoint may hold NaN/∞ weights or the backend ran out of memory; try --engine ${other}$`,
    ),
  );
}

describe.each(['ort', 'tfjs'] as const)('a NaN weight on the %s engine', (engine) => {
  it('score', async () => {
    await expectNonFinite(engine, ['score', '--model', NAN_MODEL, '--data', DATA, '--json'], 'the loss of example 1');
  });
  it('generate', async () => {
    await expectNonFinite(engine, ['generate', '--model', NAN_MODEL, '--data', DATA, '--json'], 'a logit of generation step 1');
  });
  it('eval', async () => {
    await expectNonFinite(engine, ['eval', '--model', NAN_MODEL, '--data', DATA, '--json'], 'a logit of generation step 1');
  });
  it('compose (the base objective)', async () => {
    const args = ['compose', '--model', NAN_MODEL, '--modules', `${A}/a0,${A}/a1`, '--data', DATA, '--examples', '1', '--optimizer', 'cmaes', '--popsize', '2', '--budget', '5'];
    await expectNonFinite(engine, [...args, '--workers', '1', '--no-eval', '--out', join(tmp, `run-${engine}`)], "the base model's few-shot objective (w = 0)", false);
  });
});
