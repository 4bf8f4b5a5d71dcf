import onnxPkg from 'onnx-proto';
import * as ort from 'onnxruntime-node';
const { onnx } = onnxPkg as any;
const din = 512, dout = 1024, R = 300, L = 8;
function model(kind: string) {
  const inits: any[] = []; const nodes: any[] = [];
  let cur = 'x';
  for (let l = 0; l < L; l++) {
    const w = new Float32Array(din * dout).map(() => (Math.random() - 0.5) * 0.05);
    const w2 = new Float32Array(din * dout).map(() => (Math.random() - 0.5) * 0.05);
    const W = (name: string, dims: number[], f: Float32Array) => inits.push(onnx.TensorProto.create({ name, dims, dataType: 1, rawData: new Uint8Array(f.buffer) }));
    if (kind === 'gemm') { W(`w${l}`, [dout, din], w); W(`v${l}`, [din, dout], w2);
      nodes.push(onnx.NodeProto.create({ opType: 'Gemm', input: [cur, `w${l}`], output: [`h${l}`], attribute: [{ name: 'transB', i: 1, type: 2 }] }));
      nodes.push(onnx.NodeProto.create({ opType: 'Gemm', input: [`h${l}`, `v${l}`], output: [`o${l}`], attribute: [{ name: 'transB', i: 1, type: 2 }] }));
    } else if (kind === 'wx') { W(`w${l}`, [dout, din], w); W(`v${l}`, [din, dout], w2);
      nodes.push(onnx.NodeProto.create({ opType: 'MatMul', input: [`w${l}`, cur], output: [`h${l}`] }));
      nodes.push(onnx.NodeProto.create({ opType: 'MatMul', input: [`v${l}`, `h${l}`], output: [`o${l}`] }));
    } else { W(`w${l}`, [din, dout], w); W(`v${l}`, [dout, din], w2);
      nodes.push(onnx.NodeProto.create({ opType: 'MatMul', input: [cur, `w${l}`], output: [`h${l}`] }));
      nodes.push(onnx.NodeProto.create({ opType: 'MatMul', input: [`h${l}`, `v${l}`], output: [`o${l}`] }));
    }
    cur = `o${l}`;
  }
  const shape = kind === 'wx' ? [din, R] : [R, din];
  const g = onnx.GraphProto.create({ name: 'g', initializer: inits, node: nodes,
    input: [onnx.ValueInfoProto.create({ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: shape.map((d) => ({ dimValue: d })) } } } })],
    output: [onnx.ValueInfoProto.create({ name: cur, type: { tensorType: { elemType: 1 } } })] });
  return { bytes: onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 15 }], graph: g })).finish(), shape, out: cur };
}
for (const threads of [1, 2]) for (const kind of ['xw', 'gemm', 'wx']) {
  const m = model(kind);
  const s = await ort.InferenceSession.create(Buffer.from(m.bytes), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const x = new ort.Tensor('float32', new Float32Array(din * R).fill(0.1), m.shape);
  for (let i = 0; i < 3; i++) await s.run({ x });
  const n = 20; const t0 = performance.now();
  for (let i = 0; i < n; i++) await s.run({ x });
  const sec = (performance.now() - t0) / 1000 / n;
  console.log(threads, kind, (2 * 2 * L * din * dout * R / sec / 1e9).toFixed(1), 'GFLOP/s');
}
