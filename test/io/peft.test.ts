import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LorahubError } from '../../src/errors.ts';
import {
  parseLoraConfig,
  peftKey,
  pythonJsonDumps,
  readAdapter,
  writeAdapter,
  type ReadAdapterOptions,
} from '../../src/io/peft.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.ts';
import type { LoraModule } from '../../src/lora/module.ts';

const T5 = fileURLToPath(new URL('../../../shared/fixtures/t5-gated/', import.meta.url));
const ADAPTERS = path.join(T5, 'adapters');
const A0 = path.join(ADAPTERS, 'a0');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorahub-peft-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => path.join(tmp, `d${counter++}`);

async function rejection(p: Promise<unknown>): Promise<LorahubError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LorahubError);
    return err as LorahubError;
  }
  throw new Error('expected a rejection');
}

const fixtureConfig = (): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(A0, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
const fixtureTensors = (): Map<string, { shape: number[]; data: Float32Array }> =>
  readSafetensors(path.join(A0, 'adapter_model.safetensors')).tensors;

/** Writes an adapter folder by hand: config object + tensors (F32). */
function makeAdapter(config: Record<string, unknown>, tensors: Map<string, { shape: number[]; data: Float32Array }>): string {
  const dir = freshDir();
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config));
  const list: TensorToWrite[] = [...tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: t.data }));
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), list, { format: 'pt' });
  return dir;
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function expectSameModule(x: LoraModule, y: LoraModule): void {
  expect([...x.targets.keys()]).toEqual([...y.targets.keys()]);
  for (const [k, t] of x.targets) {
    const u = y.targets.get(k);
    expect(u).toBeDefined();
    if (!u) continue;
    expect([u.path, u.r, u.dIn, u.dOut, u.scaling]).toEqual([t.path, t.r, t.dIn, t.dOut, t.scaling]);
    expect(sameBytes(t.a, u.a)).toBe(true);
    expect(sameBytes(t.b, u.b)).toBe(true);
  }
}

const read = (dir: string, opts?: ReadAdapterOptions) => readAdapter(dir, opts);

describe('reading the fixture adapters', () => {
  const stateDictKeys = (
    JSON.parse(fs.readFileSync(path.join(T5, 'adapter_cases.json'), 'utf8')) as { state_dict_keys: string[] }
  ).state_dict_keys;

  for (const name of ['a0', 'a1', 'a2']) {
    it(`${name}: .bin and .safetensors give the identical module`, async () => {
      const dir = path.join(ADAPTERS, name);
      const st = await read(dir);
      const bin = await read(dir, { weights: 'bin' });
      expect(st.name).toBe(name);
      expect(st.config).toEqual(bin.config);
      expectSameModule(st, bin);
      expect(st.config.r).toBe(4);
      expect(st.config.lora_alpha).toBe(32);
      expect(st.config.target_modules).toEqual(['q', 'v']);
      // 2 encoder blocks × (q, v) + 2 decoder blocks × (self q, v + cross q, v) = 12 targets, 24 keys.
      expect(st.targets.size).toBe(12);
      const keys = [...st.targets.keys()].flatMap((p) => [peftKey(p, 'A'), peftKey(p, 'B')]);
      expect(keys.sort()).toEqual([...stateDictKeys].sort());
      for (const t of st.targets.values()) {
        expect([t.r, t.dIn, t.dOut, t.scaling]).toEqual([4, 64, 64, 8]);
        expect(t.a.length).toBe(4 * 64);
      }
      expect([...st.targets.keys()]).toEqual([...st.targets.keys()].sort());
    });
  }

  it('peftKey builds PEFT save keys', () => {
    expect(peftKey('encoder.block.0.layer.0.SelfAttention.q', 'A')).toBe(
      'base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight',
    );
  });
});

describe('writeAdapter', () => {
  it('reproduces the fixture files byte for byte (PEFT json.dumps and safetensors layout)', async () => {
    const m = await read(A0);
    const dir = freshDir();
    await writeAdapter(dir, m);
    expect(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')).toBe(
      fs.readFileSync(path.join(A0, 'adapter_config.json'), 'utf8'),
    );
    expect(fs.readFileSync(path.join(dir, 'adapter_model.safetensors')).equals(fs.readFileSync(path.join(A0, 'adapter_model.safetensors')))).toBe(
      true,
    );
    const written = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(written).sort()).toEqual(Object.keys(fixtureConfig()).sort());
    expect(written).toEqual(fixtureConfig());
    expect(fs.readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  });

  it('write then read back is bit-identical (from .bin too), and keeps metadata and extra fields', async () => {
    const m = await read(A0, { weights: 'bin' });
    m.metadata = { lorahub_weights: '[0.5,-0.3,1.2]' };
    m.config.extra.custom_field = { nested: [1, 2.5, 'x'] };
    const dir = freshDir();
    await writeAdapter(dir, m);
    const back = await read(dir, { name: 'a0' });
    expect(back.config).toEqual(m.config);
    expect(back.metadata).toEqual(m.metadata);
    expectSameModule(m, back);
    expect(readSafetensors(path.join(dir, 'adapter_model.safetensors')).metadata).toEqual({
      format: 'pt',
      lorahub_weights: '[0.5,-0.3,1.2]',
    });
  });

  it('overwrites an existing folder, keeps other files, removes a stale adapter_model.bin', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'README.md'), 'card');
    fs.copyFileSync(path.join(A0, 'adapter_model.bin'), path.join(dir, 'adapter_model.bin'));
    const a1 = await read(path.join(ADAPTERS, 'a1'));
    await writeAdapter(dir, a1);
    expect(fs.readdirSync(dir).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    expectSameModule(await read(dir), a1);
  });

  it('refuses a module whose arrays do not match its shapes, or hold NaN', async () => {
    const m = await read(A0);
    const [first] = m.targets.values();
    const broken: LoraModule = { ...m, targets: new Map([[first.path, { ...first, a: new Float32Array(3) }]]) };
    expect((await rejection(writeAdapter(freshDir(), broken))).code).toBe('SHAPE_MISMATCH');
    const nan = Float32Array.from(first.b);
    nan[5] = NaN;
    const bad: LoraModule = { ...m, targets: new Map([[first.path, { ...first, b: nan }]]) };
    const e = await rejection(writeAdapter(freshDir(), bad));
    expect(e.code).toBe('NUMERIC');
    expect(e.message).toContain(first.path);
  });

  it('pythonJsonDumps writes floats, unicode and empty containers as Python does', () => {
    expect(pythonJsonDumps({ b: 1e-5, a: 0.1, lora_dropout: 0, c: [], d: {}, e: 'é', f: 1e16, g: 2.5e-4 })).toBe(
      '{\n  "a": 0.1,\n  "b": 1e-05,\n  "c": [],\n  "d": {},\n  "e": "\\u00e9",\n  "f": 10000000000000000,\n  "g": 0.00025,\n  "lora_dropout": 0.0\n}',
    );
  });
});

describe('config variants', () => {
  it('regex target_modules: PEFT re.fullmatch semantics', async () => {
    const ok = makeAdapter({ ...fixtureConfig(), target_modules: '.*(SelfAttention|EncDecAttention)\\.(q|v)' }, fixtureTensors());
    const m = await read(ok);
    expect(m.config.target_modules).toBe('.*(SelfAttention|EncDecAttention)\\.(q|v)');
    expect(m.targets.size).toBe(12);
    // Only self-attention: the cross-attention keys are not targets of this config.
    const narrow = makeAdapter({ ...fixtureConfig(), target_modules: '.*SelfAttention\\.(q|v)' }, fixtureTensors());
    const e = await rejection(read(narrow));
    expect(e.code).toBe('INCOMPATIBLE');
    expect(e.message).toContain('EncDecAttention');
    // fullmatch, not search: a pattern matching only a suffix does not match.
    const partial = makeAdapter({ ...fixtureConfig(), target_modules: 'SelfAttention\\.(q|v)' }, fixtureTensors());
    expect((await rejection(read(partial))).code).toBe('INCOMPATIBLE');
    const invalid = makeAdapter({ ...fixtureConfig(), target_modules: '(q|v' }, fixtureTensors());
    expect((await rejection(read(invalid))).code).toBe('BAD_CONFIG');
  });

  it('list target_modules: a module must end with ".<name>"', async () => {
    const e = await rejection(read(makeAdapter({ ...fixtureConfig(), target_modules: ['q'] }, fixtureTensors())));
    expect(e.code).toBe('INCOMPATIBLE');
    expect(e.message).toMatch(/SelfAttention\.v\.lora_[AB]\.weight/);
  });

  it('layers_to_transform / layers_pattern restrict the targets', async () => {
    const e = await rejection(
      read(makeAdapter({ ...fixtureConfig(), layers_to_transform: [0], layers_pattern: 'block' }, fixtureTensors())),
    );
    expect(e.code).toBe('INCOMPATIBLE');
    expect(e.message).toContain('block.1');
    const m = await read(makeAdapter({ ...fixtureConfig(), layers_to_transform: [0, 1], layers_pattern: 'block' }, fixtureTensors()));
    expect(m.targets.size).toBe(12);
  });

  it('rank_pattern / alpha_pattern set r and alpha per module', async () => {
    // Cross-attention q at rank 2: keep the first 2 rows of A and columns of B.
    const tensors = fixtureTensors();
    for (const [key, t] of tensors) {
      if (!key.includes('EncDecAttention.q.')) continue;
      if (key.endsWith('lora_A.weight')) tensors.set(key, { shape: [2, 64], data: t.data.slice(0, 2 * 64) });
      else tensors.set(key, { shape: [64, 2], data: Float32Array.from({ length: 128 }, (_, i) => t.data[Math.floor(i / 2) * 4 + (i % 2)]) });
    }
    const config = {
      ...fixtureConfig(),
      rank_pattern: { 'EncDecAttention.q': 2 },
      alpha_pattern: { v: 16, 'decoder.block.1.layer.0.SelfAttention.q': 12 },
    };
    const m = await read(makeAdapter(config, tensors));
    const t = (p: string) => m.targets.get(p);
    expect(t('decoder.block.0.layer.1.EncDecAttention.q')?.r).toBe(2);
    expect(t('decoder.block.0.layer.1.EncDecAttention.q')?.scaling).toBe(16); // 32 / 2
    expect(t('encoder.block.0.layer.0.SelfAttention.v')?.scaling).toBe(4); // 16 / 4
    expect(t('decoder.block.1.layer.0.SelfAttention.q')?.scaling).toBe(3); // full-path key: 12 / 4
    expect(t('decoder.block.0.layer.0.SelfAttention.q')?.scaling).toBe(8);
    // Round trip keeps the patterns.
    const dir = freshDir();
    await writeAdapter(dir, m);
    const written = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(written.rank_pattern).toEqual({ 'EncDecAttention.q': 2 });
    expectSameModule(m, await read(dir));
    // A pattern rank that the tensors do not have.
    const e = await rejection(read(makeAdapter({ ...fixtureConfig(), rank_pattern: { 'EncDecAttention.q': 8 } }, fixtureTensors())));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toContain('expected rank 8');
    expect(e.message).toContain('EncDecAttention.q');
  });

  it('use_rslora: scaling = alpha / sqrt(r)', async () => {
    const m = await read(makeAdapter({ ...fixtureConfig(), use_rslora: true }, fixtureTensors()));
    for (const t of m.targets.values()) expect(t.scaling).toBe(16);
    const dir = freshDir();
    await writeAdapter(dir, m);
    expect((JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as { use_rslora: boolean }).use_rslora).toBe(true);
  });

  it('keys carrying an adapter name (".lora_A.default.weight") read the same', async () => {
    const named = new Map([...fixtureTensors()].map(([k, t]) => [k.replace(/\.lora_([AB])\.weight$/, '.lora_$1.default.weight'), t]));
    const m = await read(makeAdapter(fixtureConfig(), named), { name: 'a0' });
    expectSameModule(await read(A0), m);
    // Mixing adapter names is ambiguous.
    const mixed = new Map(named);
    const [k0, t0] = [...mixed][0];
    mixed.delete(k0);
    mixed.set(k0.replace('.default.', '.other.'), t0);
    const e = await rejection(read(makeAdapter(fixtureConfig(), mixed)));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toContain('"other"');
  });

  it('fan_in_fan_out: A/B are read as stored (PEFT never transposes them) and the flag round-trips', async () => {
    const m = await read(makeAdapter({ ...fixtureConfig(), fan_in_fan_out: true }, fixtureTensors()));
    expect(m.config.fan_in_fan_out).toBe(true);
    expectSameModule(await read(A0), m);
    const dir = freshDir();
    await writeAdapter(dir, m);
    const back = await read(dir);
    expect(back.config.fan_in_fan_out).toBe(true);
    expectSameModule(m, back);
  });

  it('parseLoraConfig keeps unknown fields in extra and fills PEFT defaults', () => {
    const c = parseLoraConfig({ peft_type: 'LORA', target_modules: ['q'], foo: [1] }, 'x.json');
    expect(c.r).toBe(8);
    expect(c.lora_alpha).toBe(8);
    expect(c.extra).toEqual({ foo: [1] });
    expect(c.task_type).toBeNull();
  });
});

describe('adapter errors', () => {
  it('missing weights file → NOT_FOUND naming the path', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(A0, 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
    const e = await rejection(read(dir));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain(path.join(dir, 'adapter_model.safetensors'));
    expect(e.message).toContain(path.join(dir, 'adapter_model.bin'));
  });

  it('missing config → NOT_FOUND; invalid JSON → BAD_CONFIG', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    const e = await rejection(read(dir));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('adapter_config.json');
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), '{"r": 4,');
    expect((await rejection(read(dir))).code).toBe('BAD_CONFIG');
  });

  it('truncated safetensors → BAD_FILE naming the file', async () => {
    const dir = makeAdapter(fixtureConfig(), fixtureTensors());
    const p = path.join(dir, 'adapter_model.safetensors');
    const bytes = fs.readFileSync(p);
    fs.writeFileSync(p, bytes.subarray(0, bytes.length - 100));
    const e = await rejection(read(dir));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toContain(p);
    expect(e.message).toContain('truncated');
  });

  it('refuses DoRA, bias, modules_to_save and other PEFT types by name', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ use_dora: true }, 'DoRA is not supported'],
      [{ bias: 'all' }, 'bias "all"'],
      [{ bias: 'lora_only' }, 'bias "lora_only"'],
      [{ modules_to_save: ['classifier'] }, 'modules_to_save'],
      [{ peft_type: 'ADALORA' }, 'peft_type "ADALORA"'],
      [{ lora_bias: true }, 'lora_bias'],
    ];
    for (const [patch, text] of cases) {
      const e = await rejection(read(makeAdapter({ ...fixtureConfig(), ...patch }, fixtureTensors())));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toContain(text);
    }
  });

  it('refuses non-LoRA keys in the weights file by name', async () => {
    const base = fixtureTensors();
    const cases: [string, string][] = [
      ['base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_magnitude_vector', 'DoRA'],
      ['base_model.model.shared.lora_embedding_A', 'embedding'],
      ['base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.bias', 'bias'],
      ['base_model.model.lm_head.weight', 'not a LoRA weight'],
    ];
    for (const [key, text] of cases) {
      const tensors = new Map(base);
      tensors.set(key, { shape: [4], data: new Float32Array(4) });
      const e = await rejection(read(makeAdapter(fixtureConfig(), tensors)));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toContain(`"${key}"`);
      expect(e.message).toContain(text);
    }
    const noPrefix = new Map([...base].map(([k, t]) => [k.replace('base_model.model.', ''), t]));
    expect((await rejection(read(makeAdapter(fixtureConfig(), noPrefix)))).message).toContain('prefix');
  });

  it('NaN / Inf in weights → NUMERIC naming module and key', async () => {
    const tensors = fixtureTensors();
    const key = 'base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight';
    const t = tensors.get(key);
    if (!t) throw new Error('fixture key missing');
    const data = Float32Array.from(t.data);
    data[17] = NaN;
    tensors.set(key, { shape: t.shape, data });
    const e = await rejection(read(makeAdapter(fixtureConfig(), tensors)));
    expect(e.code).toBe('NUMERIC');
    expect(e.message).toContain('decoder.block.1.layer.1.EncDecAttention.v');
    expect(e.message).toContain(key);
    expect(e.message).toContain('index 17');
    data[17] = Infinity;
    expect((await rejection(read(makeAdapter(fixtureConfig(), tensors)))).code).toBe('NUMERIC');
  });

  it('lora_A without lora_B → BAD_FILE naming the module and the missing half', async () => {
    const tensors = fixtureTensors();
    tensors.delete('base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_B.weight');
    const e = await rejection(read(makeAdapter(fixtureConfig(), tensors)));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toContain('module encoder.block.1.layer.0.SelfAttention.v has lora_A but no lora_B');
  });

  it('rank mismatches: config r vs tensors, and A vs B', async () => {
    const e = await rejection(read(makeAdapter({ ...fixtureConfig(), r: 8 }, fixtureTensors())));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/expected rank 8 \(config\), got 4/);
    const tensors = fixtureTensors();
    const key = 'base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight';
    tensors.set(key, { shape: [64, 3], data: new Float32Array(192) });
    const e2 = await rejection(read(makeAdapter(fixtureConfig(), tensors)));
    expect(e2.code).toBe('SHAPE_MISMATCH');
    expect(e2.message).toContain('encoder.block.0.layer.0.SelfAttention.q');
  });
});

describe('writeAdapter dtype', () => {
  it('F16 storage halves the file and reads back within half precision', async () => {
    const { readAdapter: read, writeAdapter: write } = await import('../../src/io/peft.ts');
    const os = await import('node:os');
    const fsm = await import('node:fs');
    const pathm = await import('node:path');
    const src = await read(new URL('../../../shared/fixtures/t5-gated/adapters/a0', import.meta.url).pathname);
    const dir = fsm.mkdtempSync(pathm.join(os.tmpdir(), 'lorahub-f16-'));
    try {
      await write(pathm.join(dir, 'f32'), src);
      await write(pathm.join(dir, 'f16'), src, { dtype: 'F16' });
      const size = (d: string) => fsm.statSync(pathm.join(dir, d, 'adapter_model.safetensors')).size;
      expect(size('f16')).toBeLessThan(0.6 * size('f32'));
      const back = await read(pathm.join(dir, 'f16'));
      for (const [p, t] of src.targets) {
        const b = back.targets.get(p);
        let m = 0;
        t.a.forEach((v, i) => (m = Math.max(m, Math.abs(v - (b?.a[i] ?? Number.NaN)) / Math.max(Math.abs(v), 1e-3))));
        expect(m).toBeLessThan(1e-3);
      }
    } finally {
      fsm.rmSync(dir, { recursive: true, force: true });
    }
  });
});
