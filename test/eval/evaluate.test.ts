import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { T5_GATED } from '../helpers.ts';
import { runCli } from '../cli/run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = `${T5_GATED}/model`;
const A0 = `${T5_GATED}/adapters/a0`;

describe('lorahub eval', () => {
  it("scores the model's own greedy outputs as 100% and perturbed targets as 0%", async () => {
    const inputs = ['not ( True ) and ( True ) is', '2 + 2 * 3 =', 'Sort: pear apple fig'];
    const data = join(tmp, 'in.jsonl');
    writeFileSync(data, inputs.map((input) => JSON.stringify({ input })).join('\n'));
    const gen = await runCli(['generate', '--model', MODEL, '--adapter', A0, '--data', data, '--max-new-tokens', '12', '--json']);
    expect(gen.code).toBe(0);
    const texts = gen.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
    const own = join(tmp, 'own.json');
    writeFileSync(own, JSON.stringify({ examples: inputs.map((input, i) => ({ input, target: texts[i] })) }));
    const r = await runCli(['eval', '--data', own, '--model', MODEL, '--adapter', A0, '--max-new-tokens', '12', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ accuracy: 1, correct: 3, total: 3, engine: expect.stringMatching(/^(ort|tfjs)$/), device: 'cpu' });
    const wrong = join(tmp, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ examples: inputs.map((input, i) => ({ input, target: `${texts[i]}x` })) }));
    const w = await runCli(['eval', '--data', wrong, '--model', MODEL, '--adapter', A0, '--max-new-tokens', '12', '--json']);
    expect(JSON.parse(w.stdout)).toMatchObject({ accuracy: 0, correct: 0, total: 3 });
  });

  it('unknown task names list the available ones', async () => {
    const r = await runCli(['eval', '--task', 'nope', '--model', MODEL]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown task "nope" \(available: .*boolean_expressions/);
  });
});
