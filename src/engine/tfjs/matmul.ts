/**
 * tfjs's own 2D matmul rate (plain untransposed products, the wasm fast path the forward is
 * built around; see models/ops.ts), for the forward benchmark.
 */
import * as tf from '@tensorflow/tfjs';

export async function tfjsMatmulGflops(m: number, k: number, n: number, reps: number): Promise<number> {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const times: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    const t0 = performance.now();
    // Not inside tf.tidy: tidy would walk a returned TypedArray element by element.
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    if (i >= 2) times.push((performance.now() - t0) / 1000);
  }
  tf.dispose([a, b]);
  times.sort((x, y) => x - y);
  return (2 * m * k * n) / times[Math.floor(times.length / 2)] / 1e9;
}
