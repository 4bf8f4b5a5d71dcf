/** onnxruntime-node engine (in progress in this working tree). */
import { LorahubError } from '../../errors.ts';
import type { Engine } from '../types.ts';

export async function createOrtEngine(_r: { device: string; threads: number }): Promise<Engine> {
  throw new LorahubError('BACKEND', 'the ort engine is not available yet');
}
