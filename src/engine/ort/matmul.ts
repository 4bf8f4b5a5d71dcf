/**
 * onnxruntime's own 2D matmul rate, for the forward benchmark's "fraction of the engine's matmul
 * rate": Gemm x [m, k] · W [n, k]ᵀ with W a constant initializer — exactly how the T5 graphs run
 * every base projection (t5-graph.ts `linear`). Eight products alternate [m,k]→[m,n]→[m,k]… in
 * one run, so the per-run cost of moving x in and y out (which a forward pays once for dozens of
 * products) does not count against the kernel.
 */
import type * as OrtTypes from 'onnxruntime-node';
import { Graph } from './onnx.ts';

const CHAIN = 8;

export async function ortMatmulGflops(ort: typeof OrtTypes, m: number, k: number, n: number, reps: number, threads: number, device: 'cpu' | 'cuda'): Promise<number> {
  const g = new Graph('matmul');
  let x = g.input('x', 'float', [m, k]);
  for (let i = 0; i < CHAIN; i++) {
    const [dOut, dIn] = i % 2 === 0 ? [n, k] : [k, n];
    x = g.op('Gemm', [x, g.f32(Array.from({ length: dOut * dIn }, (_, j) => Math.sin(i + j) * 0.02), [dOut, dIn])], { transB: 1 });
  }
  g.output('y', x);
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
  return (CHAIN * 2 * m * k * n) / times[Math.floor(times.length / 2)] / 1e9;
}
