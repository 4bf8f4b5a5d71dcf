import onnxPkg from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { readFileSync, writeFileSync } from 'node:fs';
const { onnx } = onnxPkg as any;
const n = 8192; // W: n x n floats = 256 MB
const rss = () => (process.memoryUsage().rss / 1e6).toFixed(0);
{
  const buf = Buffer.alloc(16 + n * n * 4);
  const f = new Float32Array(buf.buffer, buf.byteOffset + 16, n * n); for (let i = 0; i < n; i++) f[i * n + i] = 1;
  writeFileSync('/tmp/ortx/big.bin', buf);
}
console.log('start rss', rss());
const data = readFileSync('/tmp/ortx/big.bin');
console.log('read rss', rss());
const W = onnx.TensorProto.create({ name: 'W', dims: [n, n], dataType: 1, dataLocation: 1,
  externalData: [{ key: 'location', value: 'big.bin' }, { key: 'offset', value: '16' }, { key: 'length', value: String(n * n * 4) }] });
const g = onnx.GraphProto.create({ name: 'g', initializer: [W],
  node: [onnx.NodeProto.create({ opType: 'Gemm', input: ['x', 'W'], output: ['y'], attribute: [{ name: 'transB', i: 1, type: 2 }] })],
  input: [onnx.ValueInfoProto.create({ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'b' }, { dimValue: n }] } } } })],
  output: [onnx.ValueInfoProto.create({ name: 'y', type: { tensorType: { elemType: 1 } } })] });
const m = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 15 }], graph: g });
const bytes = onnx.ModelProto.encode(m).finish();
const prepack = process.argv[2] === 'noprepack';
const s = await ort.InferenceSession.create(Buffer.from(bytes), { externalData: [{ path: 'big.bin', data }], extra: prepack ? { session: { disable_prepacking: '1' } } : undefined } as any);
console.log('session rss', rss());
const x = new Float32Array(2 * n); x[5] = 3; x[n + 7] = 4;
const r = await s.run({ x: new ort.Tensor('float32', x, [2, n]) });
console.log('run rss', rss(), (r.y.data as Float32Array)[5], (r.y.data as Float32Array)[n + 7]);
(globalThis as any).keep = data;
