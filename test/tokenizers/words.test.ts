import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadExamplesFile } from '../../src/tasks/index.ts';
import { listTasks } from '../../src/tasks/registry.ts';
import { taskExamples } from '../../src/tasks/dataset.ts';
import { JsonTokenizer } from '../../src/tokenizers/sentencepiece.ts';
import { buildWordTokenizer, wordTokenizerConfigs } from '../../src/tokenizers/words.ts';
import { upstreamMixture, upstreamTasks } from '../../src/train/base.ts';
import { BBH_DIR, HAVE_BBH } from '../tasks/oracles.ts';

type Vocab = [string, number][];
const vocabOf = (json: Record<string, unknown>): Vocab => (json.model as { vocab: Vocab }).vocab;
const tokenizer = (json: Record<string, unknown>): JsonTokenizer => new JsonTokenizer(json, { config: wordTokenizerConfigs(125).config });
const pieces = (tok: JsonTokenizer, text: string): string[] =>
  tok.encodeRaw(text, false).map((id) => (tok as unknown as { hf: { id_to_token(i: number): string } }).hf.id_to_token(id));

describe('buildWordTokenizer', () => {
  const texts = ['Sam lies. Ana says Sam tells the truth.', 'Sam lies. Does Ana tell the truth? Yes', 'Sam says 12 + 30 = 42.'];
  const json = buildWordTokenizer(texts, { minCount: 2, extraIds: 3 });
  const tok = tokenizer(json);

  it('lays the vocabulary out as T5: pad, eos, unk first, sentinels at the top', () => {
    const vocab = vocabOf(json);
    expect(vocab.slice(0, 3).map(([p]) => p)).toEqual(['<pad>', '</s>', '<unk>']);
    expect(vocab.slice(-3).map(([p]) => p)).toEqual(['<extra_id_2>', '<extra_id_1>', '<extra_id_0>']);
    expect(tok.eosId).toBe(1);
    expect(tok.padId).toBe(0);
    expect(tok.vocabSize).toBe(vocab.length);
    expect(new Set(vocab.map(([p]) => p)).size).toBe(vocab.length);
  });

  it('keeps words seen minCount times as one piece, by count then spelling', () => {
    const words = vocabOf(json)
      .slice(3)
      .filter(([p]) => /^▁?[A-Za-z]+$/.test(p) && p.replace('▁', '').length > 1)
      .map(([p]) => p);
    // ▁Sam ×3; ▁Ana, ▁lies, ▁says, ▁the, ▁truth ×2 (alphabetical); "Does", "tells", "tell" once: not kept.
    expect(words).toEqual(['▁Sam', '▁Ana', '▁lies', '▁says', '▁the', '▁truth']);
    expect(pieces(tok, 'Sam lies.')).toEqual(['▁Sam', '▁lies', '.']);
  });

  it('never merges digits, spells unseen words in characters and decodes back exactly', () => {
    expect(pieces(tok, 'Sam 42')).toEqual(['▁Sam', '▁4', '2']);
    expect(pieces(tok, 'Zed lies')).toEqual(['▁', 'Z', 'e', 'd', '▁lies']);
    for (const s of ['Zed says (A) 7 * -3 = -21.\nOptions:\n- Yes', 'two  spaces', '[ { < > } ]']) expect(tok.decode(tok.encode(s))).toBe(s);
    // As SentencePiece: the ▁ the pre-tokenizer prepends is dropped, and with it one leading space.
    expect(tok.decode(tok.encode(' x'))).toBe('x');
    // Outside ASCII there is no piece: unk, which decoding drops.
    expect(tok.encodeRaw('é', false)).toContain(2);
  });

  it('is deterministic', () => {
    expect(JSON.stringify(buildWordTokenizer(texts, { minCount: 2, extraIds: 3 }))).toBe(JSON.stringify(json));
  });
});

describe('the base vocabulary counted from the upstream mixture', () => {
  const mixture = upstreamMixture(upstreamTasks());
  const json = buildWordTokenizer(mixture.flatMap((e) => [e.input, e.target]));
  const tok = tokenizer(json);

  it('holds no word that only a target task uses (targets stay held out)', () => {
    const words = (s: string): string[] => s.match(/[A-Za-z]+/g) ?? [];
    const upstream = new Set(mixture.flatMap((e) => [...words(e.input), ...words(e.target)]));
    const targetOnly = new Set<string>();
    for (const t of listTasks().filter((t) => t.kind !== 'upstream')) {
      for (const e of taskExamples(t, 'test')) for (const w of [...words(e.input), ...words(e.target)]) if (!upstream.has(w)) targetOnly.add(w);
    }
    expect(targetOnly.size).toBeGreaterThan(0);
    const leaked = vocabOf(json).filter(([p]) => p.length > 2 && targetOnly.has(p.replace('▁', '')));
    expect(leaked).toEqual([]);
  });

  it('round-trips the upstream texts (every tenth example)', () => {
    const bad = mixture.filter((_, i) => i % 10 === 0).filter((e) => tok.decode(tok.encode(e.input)) !== e.input || tok.decode(tok.encode(e.target)) !== e.target);
    expect(bad.slice(0, 3)).toEqual([]);
  });

  it.skipIf(!HAVE_BBH)('round-trips every real BBH example of the target tasks, in fewer tokens than bytes', () => {
    const targets = new Set(listTasks().filter((t) => t.kind !== 'upstream').map((t) => `${t.name}.json`));
    const files = readdirSync(BBH_DIR).filter((f) => targets.has(f));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) {
      const examples = loadExamplesFile(`${BBH_DIR}/${f}`);
      for (const e of examples) {
        expect(tok.decode(tok.encode(e.input))).toBe(e.input);
        expect(tok.decode(tok.encode(e.target))).toBe(e.target);
      }
      const tokens = examples.reduce((s, e) => s + tok.encode(e.input).length, 0);
      const bytes = examples.reduce((s, e) => s + Buffer.byteLength(e.input) + 1, 0);
      expect(tokens, f).toBeLessThan(bytes);
    }
  });
});
