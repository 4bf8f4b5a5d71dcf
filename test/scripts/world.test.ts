/**
 * Random worlds (scripts/lib/world.ts, scripts/make-random-world.ts): the size presets have the
 * shapes of the released checkpoints they are named after; a decoder-only world is an HF folder
 * every engine reads, PEFT modules that fit it (fan_in_fan_out on GPT-2's Conv1D), and a token-id
 * task whose targets are the teacher composition's greedy continuations on either engine; a T5 world keeps its
 * format; the script refuses unknown architectures and sizes before writing anything.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/engine/index.ts';
import { readAdapter } from '../../src/io/peft.ts';
import { compose } from '../../src/lora/compose.ts';
import { padBatch } from '../../src/models/shared/batch.ts';
import { randomCausalHfConfig } from '../../src/models/causal/random.ts';
import { checkModuleFitsModel } from '../../src/lora/fit.ts';
import { archFromHfConfig, loadArch, type CausalArch } from '../../src/models/index.ts';
import { loadDataFile } from '../../src/tasks/index.ts';
import { writeWorld } from '../../scripts/lib/world.ts';
import { readJson, REPO } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-world-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const params = (raw: Record<string, unknown>) => archFromHfConfig(raw).weightTable().reduce((s, e) => s + e.hfShape.reduce((a, b) => a * b, 1), 0);

describe('size presets', () => {
  it('have the parameter counts of the checkpoints they are shaped after', () => {
    expect(params(randomCausalHfConfig('qwen2', '0.5b'))).toBe(494_032_768); // Qwen2.5-0.5B
    expect(params(randomCausalHfConfig('llama', '1b'))).toBe(1_235_814_400); // Llama-3.2-1B
    expect(params(randomCausalHfConfig('gpt2', 'small'))).toBe(124_439_808); // GPT-2 small
  });

  it('carry the real configs’ attention and rope settings', () => {
    expect(archFromHfConfig(randomCausalHfConfig('qwen2', '0.5b')).config).toMatchObject({ numHeads: 14, numKvHeads: 2, qkvBias: true, tieWordEmbeddings: true, ropeTheta: 1e6, eosTokenId: 151643 });
    expect(archFromHfConfig(randomCausalHfConfig('llama', '1b')).config).toMatchObject({ numHeads: 32, numKvHeads: 8, headDim: 64, ropeScaling: { type: 'llama3', factor: 32 }, eosTokenId: 128001 });
  });
});

describe.each(['llama', 'qwen2', 'gpt2'] as const)('a tiny %s world', (arch) => {
  const out = join(tmp, arch);
  let written: Awaited<ReturnType<typeof writeWorld>>;

  it('is an HF folder, modules that fit it, and a token-id task ending in eos', async () => {
    written = await writeWorld({ arch, size: 'tiny', modules: 3, rank: 4, seed: 7, out, engine: 'ort' });
    const base = loadArch(written.base) as CausalArch;
    expect(base.modelType).toBe(arch);
    expect(readJson<Record<string, unknown>>(join(out, 'world.json'))).toMatchObject({ arch, size: 'tiny', rank: 4, seed: 7, modules: ['modules/m00', 'modules/m01', 'modules/m02'] });
    for (const dir of written.modules) {
      const m = await readAdapter(dir);
      expect(m.config).toMatchObject({ task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, fan_in_fan_out: arch === 'gpt2', target_modules: arch === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'] });
      expect(() => checkModuleFitsModel(m, base)).not.toThrow();
    }
    expect(written.task).toBe(join(out, 'task.jsonl'));
    const examples = loadDataFile(written.task);
    expect(examples).toHaveLength(5);
    for (const e of examples) {
      expect(e.labels?.at(-1)).toBe(base.config.eosTokenId);
      // Llama's tokenizer adds bos; GPT-2's and Qwen2's do not.
      expect(e.inputIds?.[0] === base.config.bosTokenId).toBe(arch === 'llama');
    }
  });

  it.each(['ort', 'tfjs'])('the targets are the teacher composition’s greedy continuations (%s engine)', async (engine) => {
    const model = await loadModel(written.base, { engine, threads: 2 });
    try {
      const modules = await Promise.all(written.modules.map((d) => readAdapter(d)));
      const examples = loadDataFile(written.task);
      const prompts = examples.map((e) => e.inputIds as number[]);
      const gen = await model.generate(padBatch(prompts, [], model.config.padTokenId), { maxNewTokens: 6, adapter: compose(modules, written.teacher) });
      examples.forEach((e, i) => {
        const target = (e.labels as number[]).slice(0, -1);
        expect(gen[i].slice(1, 1 + target.length), `example ${i}`).toEqual(target);
      });
    } finally {
      await model.dispose();
    }
  });
});

describe('make-random-world', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/make-random-world.ts'), ...args], { cwd: REPO, encoding: 'utf8' });

  it('a T5 world keeps its format: task.json, world.json without an arch', () => {
    const out = join(tmp, 't5');
    const r = run('--size', 'tiny', '--modules', '2', '--rank', '2', '--out', out);
    expect(r.stdout).toBe(`wrote ${out}: base/, 2 modules (rank 2), task.json (teacher weights in world.json)\n`);
    expect(Object.keys(readJson<Record<string, unknown>>(join(out, 'world.json')))).toEqual(['size', 'modules', 'rank', 'seed', 'out', 'teacher_weights']);
    expect(JSON.parse(readFileSync(join(out, 'task.json'), 'utf8')).examples).toHaveLength(5);
  });

  it.each([
    [['--arch', 'bert', '--size', 'tiny'], /^make-random-world: unknown --arch "bert" \(t5, llama, qwen2, gpt2\)/],
    [['--arch', 'qwen2', '--size', '1b'], /^make-random-world: unknown --size "1b" \(tiny, small, 0\.5b\)/],
  ])('refuses %j before writing anything', (args, message) => {
    const out = join(tmp, 'refused');
    const r = run(...args, '--out', out);
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
