/**
 * Text for a causal LM (eval/score.ts's TextLayout): the prompt as the tokenizer's post-processor
 * encodes it, the target after one space (unless the prompt ends with, or the target starts with,
 * whitespace) without special tokens, then the model's eos. Checked on a byte-level BPE
 * tokenizer.json (GPT-2's pre-tokenizer and decoder; ids fit the gpt2 fixture's 256-token vocabulary).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenizeExamples } from '../../src/eval/score.ts';
import { JsonTokenizer } from '../../src/tokenizers/sentencepiece.ts';
import { FIXTURES } from '../helpers.ts';
import { runCli } from '../cli/run.ts';

/** pad 0, bos 1 ("<s>"), eos 2 ("</s>"), then printable ASCII in GPT-2's byte-to-unicode spelling (space is "Ġ"). */
function byteLevelTokenizer(withBos: boolean): Record<string, unknown> {
  const vocab: Record<string, number> = { '<pad>': 0, '<s>': 1, '</s>': 2 };
  for (let c = 32; c < 127; c++) vocab[c === 32 ? 'Ġ' : String.fromCharCode(c)] = c - 29;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: withBos
      ? { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [{ Sequence: { id: 'A', type_id: 0 } }], special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } }
      : null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}
const bytes = (s: string) => [...s].map((c) => c.charCodeAt(0) - 29);
const CAUSAL = { layout: 'causal' as const, eosTokenId: 2 };

describe('causal text layout', () => {
  it('encodes the prompt with the post-processor’s bos, the target after one space and before eos', () => {
    const tok = new JsonTokenizer(byteLevelTokenizer(true), { modelVocabSize: 256 });
    const [e] = tokenizeExamples([{ input: 'Q: 2 > 1? A:', target: 'yes' }], tok, { vocabSize: 256, text: CAUSAL, targets: true });
    expect(e.inputIds).toEqual([1, ...bytes('Q: 2 > 1? A:')]);
    expect(e.labels).toEqual([...bytes(' yes'), 2]);
  });

  it('adds no space after a prompt ending in whitespace, or before a target starting with one', () => {
    const tok = new JsonTokenizer(byteLevelTokenizer(false), { modelVocabSize: 256 });
    const ids = tokenizeExamples(
      [
        { input: 'A: ', target: 'no' },
        { input: 'A:', target: ' no' },
      ],
      tok,
      { vocabSize: 256, text: CAUSAL, targets: true },
    );
    // No post-processor (GPT-2): no bos.
    expect(ids.map((e) => e.inputIds)).toEqual([bytes('A: '), bytes('A:')]);
    expect(ids.map((e) => e.labels)).toEqual([[...bytes('no'), 2], [...bytes(' no'), 2]]);
  });

  it('keeps T5’s layout for seq2seq models (input and target each end with eos)', () => {
    const tok = new JsonTokenizer(byteLevelTokenizer(false), { modelVocabSize: 256 });
    const [e] = tokenizeExamples([{ input: 'A:', target: 'no' }], tok, { vocabSize: 256, targets: true });
    expect(e.inputIds).toEqual([...bytes('A:'), 2]);
    expect(e.labels).toEqual([...bytes('no'), 2]);
  });
});

describe('a GPT-2 folder with a tokenizer.json, through the CLI', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lorahub-causal-text-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const model = join(tmp, 'model');
  cpSync(join(FIXTURES, 'gpt2', 'model'), model, { recursive: true });
  writeFileSync(join(model, 'tokenizer.json'), JSON.stringify(byteLevelTokenizer(false)));
  const lines = [
    { input: 'Q: 2 > 1? A:', target: 'yes' },
    { input: 'not ( True ) is', target: 'False' },
  ];
  const text = join(tmp, 'text.jsonl');
  writeFileSync(text, lines.map((l) => JSON.stringify(l)).join('\n'));
  const ids = join(tmp, 'ids.jsonl');
  writeFileSync(ids, lines.map((l) => JSON.stringify({ input_ids: bytes(l.input), labels: [...bytes(` ${l.target}`), 2] })).join('\n'));

  it('scores text exactly as the ids the layout says it becomes', async () => {
    const a = await runCli(['--engine', 'ort', 'score', '--model', model, '--data', text, '--json']);
    const b = await runCli(['--engine', 'ort', 'score', '--model', model, '--data', ids, '--json']);
    expect(a.stderr).toBe('');
    const loss = (out: string) => out.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number; tokens: number }));
    expect(loss(a.stdout)).toEqual(loss(b.stdout));
    expect(loss(a.stdout).map((r) => r.tokens)).toEqual([5, 7]);
  });

  it('generates a continuation and decodes it as text', async () => {
    const r = await runCli(['--engine', 'ort', 'generate', '--model', model, '--input', 'Q: 2 > 1? A:', '--max-new-tokens', '4', '--json']);
    expect(r.stderr).toBe('');
    const row = JSON.parse(r.stdout) as { output_ids: number[]; text: string };
    expect(row.output_ids.length).toBeGreaterThan(0);
    expect(row.output_ids.length).toBeLessThanOrEqual(4);
    expect(typeof row.text).toBe('string');
  });
});
