/**
 * Engine selection (src/engine/index.ts): flags and environment → the options an engine opens with.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { openEngine, resolveEngineOptions } from '../../src/engine/index.ts';
import { flagOf } from '../../src/errors.ts';
import { errorOf } from '../helpers.ts';

afterEach(() => vi.unstubAllEnvs());

describe('resolveEngineOptions', () => {
  it('auto by default; --backend alone picks tfjs (a tfjs backend was asked for)', () => {
    vi.stubEnv('LORAHUB_ENGINE', '');
    expect(resolveEngineOptions({ threads: 1 }).engine).toBeUndefined();
    expect(resolveEngineOptions({ threads: 1, backend: 'wasm' })).toEqual({ engine: 'tfjs', device: 'cpu', threads: 1, backend: 'wasm' });
    expect(resolveEngineOptions({ engine: 'tfjs', threads: 1, backend: 'cpu' }).engine).toBe('tfjs');
  });

  it('--backend with the ort engine (flag or LORAHUB_ENGINE) is a usage error', () => {
    const e = errorOf(() => resolveEngineOptions({ engine: 'ort', backend: 'wasm' }));
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.message).toBe('backend applies to the tfjs engine only; add engine tfjs');
    expect(e.render(flagOf)).toBe('--backend applies to the tfjs engine only; add --engine tfjs');
    vi.stubEnv('LORAHUB_ENGINE', 'ort');
    expect(errorOf(() => resolveEngineOptions({ backend: 'wasm' })).code).toBe('BAD_ARGUMENT');
  });

  it('LORAHUB_BACKEND alone picks no engine (it may be set for the trainers)', () => {
    vi.stubEnv('LORAHUB_ENGINE', '');
    vi.stubEnv('LORAHUB_BACKEND', 'wasm');
    expect(resolveEngineOptions({ threads: 1 }).engine).toBeUndefined();
  });
});

describe('--device cuda', () => {
  const cudaInstalled = (() => {
    const dir = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')), 'bin');
    const walk = (d: string): boolean => readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.startsWith('libonnxruntime_providers_cuda')));
    return walk(dir);
  })();

  it.skipIf(cudaInstalled)('without the CUDA provider installed: one clear error that says how to install it', async () => {
    await expect(openEngine({ engine: 'ort', device: 'cuda', threads: 1 })).rejects.toThrow(/CUDA provider is not installed.*ONNXRUNTIME_NODE_INSTALL=cuda12.*or use device cpu/);
  });

  it('is refused with the tfjs engine', () => {
    expect(errorOf(() => resolveEngineOptions({ engine: 'tfjs', device: 'cuda' })).code).toBe('BAD_ARGUMENT');
  });
});
