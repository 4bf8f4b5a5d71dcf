import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAdapter } from '../../src/io/peft.ts';
import {
  BASE_FINGERPRINT_METADATA_KEY,
  compatibilityProblems,
  loadBaseModel,
  modelFingerprint,
  shapeProblems,
  shortFingerprint,
} from '../../src/library/fingerprint.ts';
import { loadT5Config, t5ConfigFromHf } from '../../src/models/t5/config.ts';
import { t5LinearShape } from '../../src/models/t5/checkpoint.ts';
import { adapterDir, MODEL, tempDir } from './helpers.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('modelFingerprint', () => {
  const root = tempDir('fp');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('is the sha256 of the weights file', async () => {
    const expected = `sha256:${sha256(readFileSync(join(MODEL, 'model.safetensors')))}`;
    expect(await modelFingerprint(MODEL)).toBe(expected);
    expect(shortFingerprint(expected)).toBe(expected.slice(7, 19));
  });

  it('hashes every shard of a sharded checkpoint', async () => {
    const dir = join(root, 'sharded');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), 'one');
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), 'two');
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { x: 'model-00002-of-00002.safetensors', y: 'model-00001-of-00002.safetensors' } }),
    );
    const lines = `model-00001-of-00002.safetensors ${sha256('one')}\nmodel-00002-of-00002.safetensors ${sha256('two')}\n`;
    expect(await modelFingerprint(dir)).toBe(`sha256:${sha256(lines)}`);
  });

  it('names the folder when there are no weights', async () => {
    const dir = join(root, 'empty');
    mkdirSync(dir);
    await expect(modelFingerprint(dir)).rejects.toThrow(/no model weights/);
  });
});

describe('compatibility', () => {
  it('accepts the fixture adapters on the fixture model', async () => {
    const base = await loadBaseModel(MODEL);
    for (const k of [0, 1, 2]) expect(compatibilityProblems(await readAdapter(adapterDir(k)), base)).toEqual([]);
  });

  it('names the key and both shapes when the base differs', async () => {
    const raw = loadT5Config(MODEL).raw;
    // d_model 64 → 32: q is then [64, 32] (inner = heads·d_kv stays 64) while the module has [64, 64].
    const cfg = t5ConfigFromHf({ ...raw, d_model: 32 });
    const problems = shapeProblems(await readAdapter(adapterDir(0)), { linearShape: (p) => t5LinearShape(cfg, p) });
    expect(problems).toHaveLength(12);
    expect(problems[0]).toBe(
      'key decoder.block.0.layer.0.SelfAttention.q: expected [dOut, dIn] = [64, 32] (base), got [64, 64] (module)',
    );
    // fewer layers: the extra block does not exist in the base
    const shallow = t5ConfigFromHf({ ...raw, num_layers: 1, num_decoder_layers: 1 });
    expect(shapeProblems(await readAdapter(adapterDir(0)), { linearShape: (p) => t5LinearShape(shallow, p) })).toContain(
      'key encoder.block.1.layer.0.SelfAttention.q: no such Linear in the base model',
    );
  });

  it('compares a declared base fingerprint', async () => {
    const base = await loadBaseModel(MODEL);
    const m = await readAdapter(adapterDir(1));
    m.metadata = { [BASE_FINGERPRINT_METADATA_KEY]: 'sha256:feed' };
    expect(compatibilityProblems(m, base)).toEqual([`made for base sha256:feed, but the base is ${base.fingerprint} (${MODEL})`]);
    m.metadata = { [BASE_FINGERPRINT_METADATA_KEY]: base.fingerprint };
    expect(compatibilityProblems(m, base)).toEqual([]);
  });

  it('uses a copy of the weights as the same base', async () => {
    const root = tempDir('fpcopy');
    try {
      for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(MODEL, f), join(root, f));
      expect(await modelFingerprint(root)).toBe(await modelFingerprint(MODEL));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
