/**
 * onnxruntime's own 2D matmul rate, for the forward benchmark's "fraction of the machine's
 * matmul rate": one Gemm x [m, k] · W [n, k]ᵀ with W a constant initializer — exactly how the
 * T5 graphs run every base projection (t5-graph.ts `linear`).
 */
import type * as OrtTypes from 'onnxruntime-node';
import { Graph } from './onnx.ts';

export async function ortMatmulGflops(ort: typeof OrtTypes, m: number, k: number, n: number, reps: number, threads: number, device: 'cpu' | 'cuda'): Promise<number> {
  const g = new Graph('matmul');
  const x = g.input('x', 'float', [m, k]);
  const w = g.f32(Array.from({ length: n * k }, (_, i) => Math.sin(i) * 0.01), [n, k]);
  g.output('y', g.op('Gemm', [x, w], { transB: 1 }));
  const s = await ort.InferenceSession.create(g.encode(), {
    executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const feed = { x: new ort.Tensor('float32', Float32Array.from({ length: m * k }, (_, i) => Math.cos(i) * 0.1), [m, k]) };
  for (let i = 0; i < 2; i++) await s.run(feed);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await s.run(feed);
    times.push((performance.now() - t0) / 1000);
  }
  await s.release();
  times.sort((a, b) => a - b);
  return (2 * m * k * n) / times[Math.floor(times.length / 2)] / 1e9;
}
