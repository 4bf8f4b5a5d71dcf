/**
 * A Hugging Face folder without tokenizer files (config.json + model.safetensors, what
 * `model.save_pretrained(dir)` alone writes) runs token ids through score, generate, eval and
 * compose on both engines at fixture parity; the tokenizer is read only when a text needs it, and a text for
 * such a folder fails in one line naming the files it lacks.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineName } from '../../src/engine/types.ts';
import { stripGenerated } from '../../src/models/t5/labels.ts';
import { T5_GATED, t5Cases, variant } from '../helpers.ts';
import { runCli } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-token-ids-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FIXTURE_VOCAB = 259;
/**
 * The fixture's vocabulary is byte-sized, which lorahub reads as ByT5 bytes when there are no
 * tokenizer files; padded to 512 it is not, like a FLAN-T5 checkpoint without its tokenizer. The
 * extra rows are zero, so their logits are exactly 0: greedy ids stay the fixture's (its top logit
 * is positive at every step), and each token's loss gains exp(0) = 1 per extra row in the softmax
 * denominator, which the expected sums below add to the fixture's own logits.
 */
const VOCAB = 512;
const padRows = (data: Float32Array, dModel: number) => {
  const out = new Float32Array(VOCAB * dModel);
  out.set(data);
  return out;
};
const BARE = variant(
  tmp,
  'bare',
  (c) => (c.vocab_size = VOCAB),
  (t) => t.map((x) => (x.name === 'shared.weight' || x.name === 'lm_head.weight' ? { ...x, shape: [VOCAB, x.shape[1]], data: padRows(x.data as Float32Array, x.shape[1]) } : x)),
);
/** The fixture as it is, without tokenizer files (its byte-sized vocabulary still reads as ByT5 bytes). */
const BARE_BYTES = variant(tmp, 'bare-bytes', () => {}, (t) => t);
for (const dir of [BARE, BARE_BYTES]) for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) rmSync(join(dir, f));

const cases = t5Cases();
interface Line {
  input_ids: number[];
  labels: number[];
}
/** Every example of every case as one data line (encoder padding dropped). */
const examples: { line: Line; logits: number[][]; lossSum: number; generated: number[] }[] = cases.flatMap((c) =>
  c.input_ids.map((ids, b) => ({
    line: { input_ids: ids.filter((_, s) => c.attention_mask[b][s] === 1), labels: c.labels[b] },
    logits: c.expected.logits[b],
    lossSum: c.expected.per_example_loss_sum[b],
    generated: stripGenerated(c.expected.generate_max_new_tokens_8[b], 1),
  })),
);
const IDS = join(tmp, 'ids.jsonl');
writeFileSync(IDS, examples.map((e) => JSON.stringify(e.line)).join('\n'));
const TEXT = join(tmp, 'text.jsonl');
writeFileSync(TEXT, `${JSON.stringify({ input: 'not ( True ) and ( True ) is', target: 'False' })}\n`);

/** The token-loss sum the padded model gives: the fixture's logits plus VOCAB − 259 logits of 0. */
function paddedLossSum(logits: number[][], labels: number[]): number {
  let sum = 0;
  labels.forEach((label, t) => {
    if (label === -100) return;
    const row = logits[t];
    const z = row.reduce((s, l) => s + Math.exp(l), 0) + (VOCAB - FIXTURE_VOCAB);
    sum += Math.log(z) - row[label];
  });
  return sum;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
const NO_TOKENIZER = `${BARE}: no tokenizer (tokenizer.json, or tokenizer_config.json for a ByT5 byte tokenizer) — give token ids ({"input_ids","labels"}) or add the tokenizer files`;

describe.each<EngineName>(['ort', 'tfjs'])('a folder without tokenizer files, engine %s', (engine) => {
  it('scores token ids at fixture parity', async () => {
    const r = await runCli(['--engine', engine, 'score', '--model', BARE, '--data', IDS, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { loss: number; tokens: number; engine: string });
    expect(rows).toHaveLength(examples.length);
    rows.forEach((row, i) => {
      const { line, logits, lossSum } = examples[i];
      expect(row.engine).toBe(engine);
      expect(row.tokens).toBe(line.labels.filter((l) => l !== -100).length);
      const want = paddedLossSum(logits, line.labels);
      expect(want).toBeGreaterThan(lossSum); // the padding counts: this is not the unpadded model
      expect(rel(row.loss * row.tokens, want), `example ${i}`).toBeLessThan(1e-5);
    });
    const bytes = await runCli(['--engine', engine, 'score', '--model', BARE_BYTES, '--data', IDS, '--json']);
    const sums = bytes.stdout.trim().split('\n').map((l) => JSON.parse(l) as { loss: number; tokens: number });
    expect(sums).toHaveLength(examples.length);
    sums.forEach((row, i) => expect(rel(row.loss * row.tokens, examples[i].lossSum), `example ${i}`).toBeLessThan(1e-5));
  });

  it('generates the fixture ids, without text (--json) or as ids (plain)', async () => {
    const r = await runCli(['--engine', engine, 'generate', '--model', BARE, '--data', IDS, '--max-new-tokens', '8', '--json']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((row) => row.output_ids)).toEqual(examples.map((e) => e.generated));
    for (const row of rows) expect(row).not.toHaveProperty('text');
    const plain = await runCli(['--engine', engine, 'generate', '--model', BARE, '--data', IDS, '--max-new-tokens', '8']);
    expect(plain.stdout.trim().split('\n')).toEqual(examples.map((e) => e.generated.join(' ')));
  });
});

describe('a folder without tokenizer files', () => {
  it('evaluates token-id labels by exact ids', async () => {
    // The model's own greedy answers as labels: all correct; one changed id: that one wrong.
    const lines = examples.map((e, i) => ({ input_ids: e.line.input_ids, labels: i === 0 ? [5, 1] : e.generated }));
    const f = join(tmp, 'eval.jsonl');
    writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n'));
    const r = await runCli(['eval', '--model', BARE, '--data', f, '--max-new-tokens', '8', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ correct: examples.length - 1, total: examples.length });
  });

  it('composes from token-id few-shot data, its base objective at fixture parity', async () => {
    const adapters = ['a0', 'a1', 'a2'].map((a) => `${T5_GATED}/adapters/${a}`).join(',');
    const r = await runCli(['compose', '--model', BARE, '--modules', adapters, '--data', IDS, '--examples', String(examples.length), '--test', IDS, '--budget', '7', '--workers', '1', '--out', join(tmp, 'compose'), '--json']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { base_objective: number; objective: number; zero_shot_accuracy: number };
    // mean-token normalisation at w = 0 (no L1 term): all label tokens' loss over their count.
    const sum = examples.reduce((s, e) => s + paddedLossSum(e.logits, e.line.labels), 0);
    const tokens = examples.reduce((n, e) => n + e.line.labels.filter((l) => l !== -100).length, 0);
    expect(rel(report.base_objective, sum / tokens)).toBeLessThan(1e-5);
    expect(report.objective).toBeLessThanOrEqual(report.base_objective);
    // Test labels without a tokenizer are compared as ids: an accuracy, not a refusal.
    expect(typeof report.zero_shot_accuracy).toBe('number');
  });

  it('refuses text in one line naming the missing files', async () => {
    for (const args of [
      ['score', '--model', BARE, '--data', TEXT],
      ['generate', '--model', BARE, '--input', 'True and False is'],
      ['eval', '--model', BARE, '--data', TEXT],
      ['compose', '--model', BARE, '--modules', `${T5_GATED}/adapters/a0`, '--data', TEXT, '--budget', '7', '--no-eval', '--out', join(tmp, 'compose-text')],
    ]) {
      const r = await runCli(args);
      expect(r.code, args[0]).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`lorahub: error: ${NO_TOKENIZER}\n`);
    }
  });

  it('keeps printing text where the tokenizer exists', async () => {
    const r = await runCli(['generate', '--model', `${T5_GATED}/model`, '--data', IDS, '--max-new-tokens', '8', '--json']);
    expect(r.code).toBe(0);
    const row = JSON.parse(r.stdout.trim().split('\n')[0]) as { output_ids: number[]; text: string };
    expect(row.output_ids).toEqual(examples[0].generated);
    expect(typeof row.text).toBe('string');
  });
});
