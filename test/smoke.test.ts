import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';

describe('backend', () => {
  it('initialises wasm when no native backend is installed', async () => {
    const info = await initBackend();
    expect(['tensorflow', 'wasm']).toContain(info.name);
    expect(tf.getBackend()).toBe(info.name);
  });
  it('rejects unknown backend names', async () => {
    await expect(initBackend('nope')).rejects.toThrow(/unknown backend "nope"/);
  });
});
