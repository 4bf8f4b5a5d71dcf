/**
 * The family seam: model_type picks the family, an unknown one is a one-line error listing the
 * supported ones; the causal-LM batch layout reproduces the fixtures' rows exactly; the checks,
 * causal table, loss sums and generation bookkeeping both engines share.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readAdapter } from '../../src/io/peft.ts';
import { padBatch } from '../../src/models/shared/batch.ts';
import { causalTable, checkRows, exampleSums, generationPrompts, greedyDecode, MASKED } from '../../src/models/causal/rows.ts';
import { checkModuleFitsModel } from '../../src/lora/fit.ts';
import { causalRows, leftPaddedPrompts, shiftedLabels } from '../../src/models/shared/family.ts';
import { archFromHfConfig, loadArch, supportedModelTypes } from '../../src/models/index.ts';
import { FIXTURES, T5_GATED, errorOf, readJson, type CausalCase } from '../helpers.ts';

type Case = CausalCase;

describe('model_type picks the family', () => {
  it('reads every fixture with its family', () => {
    expect(loadArch(`${T5_GATED}/model`).family).toBe('t5');
    const llama = loadArch(join(FIXTURES, 'llama-gqa', 'model'));
    expect([llama.family, llama.modelType, llama.layout]).toEqual(['llama', 'llama', 'causal']);
    const gpt2 = loadArch(join(FIXTURES, 'gpt2', 'model'));
    expect([gpt2.family, gpt2.modelType, gpt2.layout]).toEqual(['gpt2', 'gpt2', 'causal']);
  });

  it('maps mistral and qwen2 to the Llama family, and a config without model_type to T5', () => {
    expect(archFromHfConfig({ model_type: 'mistral' }).family).toBe('llama');
    expect(archFromHfConfig({ model_type: 'qwen2', eos_token_id: 1 }).family).toBe('llama');
    expect(archFromHfConfig({}).family).toBe('t5');
  });

  it('refuses an unknown model_type in one line listing the supported ones', () => {
    const e = errorOf(() => archFromHfConfig({ model_type: 'bert' }, 'x/config.json'));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toBe('x/config.json: model_type "bert" is not supported (supported: t5, llama, mistral, qwen2, gpt2)');
    expect(supportedModelTypes()).toEqual(['t5', 'llama', 'mistral', 'qwen2', 'gpt2']);
  });

  it('T5 keeps its own errors (config.json unreadable, bad JSON)', () => {
    expect(errorOf(() => loadArch('/nonexistent')).message).toBe('/nonexistent/config.json: cannot read model config');
  });
});

describe('LoRA targets by PEFT module path', () => {
  it('gives [out, in] per family, undefined outside the model', () => {
    const llama = loadArch(join(FIXTURES, 'llama-gqa', 'model'));
    expect(llama.linearShape('model.layers.0.self_attn.q_proj')).toEqual([64, 64]);
    // GQA: 2 key/value heads of 16.
    expect(llama.linearShape('model.layers.3.self_attn.k_proj')).toEqual([32, 64]);
    expect(llama.linearShape('model.layers.1.mlp.down_proj')).toEqual([64, 160]);
    expect(llama.linearShape('model.layers.4.self_attn.q_proj')).toBeUndefined();
    expect(llama.linearShape('lm_head')).toBeUndefined();
    const gpt2 = loadArch(join(FIXTURES, 'gpt2', 'model'));
    expect(gpt2.linearShape('transformer.h.0.attn.c_attn')).toEqual([192, 64]);
    expect(gpt2.linearShape('transformer.h.2.mlp.c_fc')).toEqual([256, 64]);
    expect(gpt2.linearShape('transformer.h.2.mlp.c_proj')).toEqual([64, 256]);
    expect(gpt2.fanInFanOut('transformer.h.0.attn.c_attn')).toBe(true);
    expect(llama.fanInFanOut('model.layers.0.self_attn.q_proj')).toBe(false);
  });

  it('checks modules against a model: targets, shapes, fan_in_fan_out', async () => {
    const llama = loadArch(join(FIXTURES, 'llama-gqa', 'model'));
    const gpt2 = loadArch(join(FIXTURES, 'gpt2', 'model'));
    const la = await readAdapter(join(FIXTURES, 'llama-gqa', 'adapters', 'a0'));
    const ga = await readAdapter(join(FIXTURES, 'gpt2', 'adapters', 'a0'));
    checkModuleFitsModel(la, llama);
    checkModuleFitsModel(ga, gpt2);
    expect(errorOf(() => checkModuleFitsModel(la, gpt2, 'gpt2-dir')).message).toMatch(/^module "a0" does not fit gpt2-dir: key model\.layers\.0\.self_attn\.q_proj: no such Linear in the base model \(and \d+ more\)$/);
    const noFlag = { ...ga, config: { ...ga.config, fan_in_fan_out: false } };
    expect(errorOf(() => checkModuleFitsModel(noFlag, gpt2)).code).toBe('INCOMPATIBLE');
  });
});

describe.each(['llama-gqa', 'gpt2'])('causal-LM batch layout reproduces the %s fixture', (fixture) => {
  const cases = readJson<{ cases: Case[] }>(join(FIXTURES, fixture, 'cases.json')).cases;

  it('prompt + target rows, right-padded, positions 0..S−1, labels −100 on prompt and padding', () => {
    for (const c of cases.filter((x) => x.padding_side !== 'left')) {
      const rows = causalRows(padBatch(c.prompt_ids, c.target_ids, 0), 0);
      expect(rows, c.name).toEqual({ inputIds: c.input_ids, attentionMask: c.attention_mask, positionIds: c.position_ids, labels: c.labels });
    }
  });

  it('left-padded prompts for generation, positions cumsum(mask) − 1 with padding at 1', () => {
    for (const c of cases) {
      const p = leftPaddedPrompts(padBatch(c.prompt_ids, [], 0), 0);
      expect([p.inputIds, p.attentionMask], c.name).toEqual([c.generate_input_ids, c.generate_attention_mask]);
      if (c.padding_side === 'left') {
        // The left-padded scoring rows use the same position rule.
        const q = leftPaddedPrompts({ inputIds: c.input_ids, attentionMask: c.attention_mask }, 0);
        expect(q.positionIds, c.name).toEqual(c.position_ids);
      }
    }
  });

  it('scores the shifted labels: one position per target token', () => {
    for (const c of cases) {
      const s = shiftedLabels(c.labels);
      expect(s.ids.length).toBe(c.target_ids.flat().length);
      expect(s.ids).toEqual(c.target_ids.flat());
    }
  });
});

describe('what both engines share around a causal forward (models/causal/rows.ts)', () => {
  const gpt2 = loadArch(join(FIXTURES, 'gpt2', 'model'));

  it('the causal table: query i of S after K − S cached keys sees keys up to K − S + i', () => {
    const M = MASKED;
    expect(Array.from(causalTable(3, 3))).toEqual([0, M, M, 0, 0, M, 0, 0, 0]);
    expect(Array.from(causalTable(1, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(causalTable(2, 4))).toEqual([0, 0, 0, M, 0, 0, 0, 0]);
  });

  it('per-example sums of token losses, per group or shared by every group', () => {
    // Two rows: tokens of row 0 at k = 0, 2; of row 1 at k = 1.
    expect(exampleSums([1, 2, 4, 10, 20, 40], [0, 1, 0], 2, 2, false)).toEqual([
      { sum: [5, 2], tokens: [2, 1] },
      { sum: [50, 20], tokens: [2, 1] },
    ]);
    expect(exampleSums([1, 2, 4], [0, 1, 0], 2, 2, true)).toEqual([
      { sum: [5, 2], tokens: [2, 1] },
      { sum: [5, 2], tokens: [2, 1] },
    ]);
    // No label at all: zero sums, zero tokens, for every group.
    expect(exampleSums([], [], 2, 3, true)).toEqual(Array.from({ length: 3 }, () => ({ sum: [0, 0], tokens: [0, 0] })));
  });

  it('checks causal rows, naming what is wrong', () => {
    if (gpt2.family === 't5') throw new Error('fixture is GPT-2');
    const ok = { inputIds: [[1, 5, 6]], attentionMask: [[1, 1, 1]], positionIds: [[0, 1, 2]], labels: [[-100, 6, 2]] };
    expect(checkRows(gpt2, ok, 'm')).toEqual([1, 3]);
    expect(errorOf(() => checkRows(gpt2, { ...ok, positionIds: [[0, 1]] }, 'm')).message).toBe('position_ids must match input_ids [B][S]');
    expect(errorOf(() => checkRows(gpt2, { ...ok, labels: [[-100, 600, 2]] }, 'm')).message).toMatch(/^labels\[0\]: token id 600 is outside the vocabulary/);
    expect(errorOf(() => checkRows(gpt2, { ...ok, positionIds: [[0, 1, 200]] }, 'm')).message).toMatch(/^m: the sequence \(prompt \+ target\) is 201 tokens, longer than this GPT-2 model's n_positions \(128\)/);
  });

  it('greedy bookkeeping: left-padded prompts, then one token per row with positions and masks growing, pad after eos', async () => {
    if (gpt2.family === 't5') throw new Error('fixture is GPT-2');
    const prompts = generationPrompts(gpt2, padBatch([[1, 7, 8], [1, 9]], [], 0), 'm');
    const seen: { ids: number[][]; pos: number[][]; mask: number[][]; S: number; K: number }[] = [];
    // Row 0 emits eos (2) first; row 1 emits 4 then 2.
    const script = [[2, 4], [5, 2]];
    const rows = await greedyDecode(gpt2, prompts, 5, 'm', async (s) => {
      seen.push({ ids: s.ids, pos: s.positionIds, mask: s.attentionMask.map((r) => [...r]), S: s.S, K: s.K });
      return { next: script[s.step], nonFinite: false };
    }, (what) => new Error(what));
    expect(rows).toEqual([[8, 2, 0], [9, 4, 2]]);
    expect(seen.map((s) => [s.S, s.K])).toEqual([[3, 3], [1, 4]]);
    expect(seen[0].ids).toEqual([[1, 7, 8], [0, 1, 9]]);
    expect(seen[0].pos).toEqual([[0, 1, 2], [1, 0, 1]]);
    expect(seen[1]).toMatchObject({ ids: [[2], [4]], pos: [[3], [2]], mask: [[1, 1, 1, 1], [0, 1, 1, 1]] });
    await expect(greedyDecode(gpt2, prompts, 5, 'm', async () => ({ next: [0, 0], nonFinite: true }), (what) => new Error(`bad: ${what}`))).rejects.toThrow('bad: a logit of generation step 1');
  });
});
