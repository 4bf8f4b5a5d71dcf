import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import { errorOf } from '../helpers.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { f32ToBf16Bits, f32ToF16Bits, readSafetensors } from '../../src/io/safetensors.ts';
import { readTorchBin } from '../../src/io/torch-bin.ts';

const ADAPTERS = fileURLToPath(new URL('../../../shared/fixtures/t5-gated/adapters/', import.meta.url));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorahub-bin-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
function tmpFile(bytes: Uint8Array): string {
  const p = path.join(tmp, `t${counter++}.bin`);
  fs.writeFileSync(p, bytes);
  return p;
}

// --- a minimal protocol-2 pickle assembler (opcodes from CPython Lib/pickletools.py) --------------
const op = {
  PROTO2: [0x80, 2],
  EMPTY_DICT: [0x7d],
  EMPTY_TUPLE: [0x29],
  MARK: [0x28],
  TUPLE: [0x74],
  TUPLE2: [0x86],
  BINPERSID: [0x51],
  NEWFALSE: [0x89],
  REDUCE: [0x52],
  SETITEMS: [0x75],
  STOP: [0x2e],
};
const str = (s: string): number[] => {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  return [0x58, ...len, ...b]; // BINUNICODE
};
const int = (n: number): number[] => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return [0x4a, ...b]; // BININT
};
const global = (module: string, name: string): number[] => [0x63, ...Buffer.from(`${module}\n${name}\n`)];
const tuple = (...items: number[][]): number[] => [...op.MARK, ...items.flat(), ...op.TUPLE];

interface FakeTensor {
  key: string;
  storageType: string;
  storageKey: string;
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
}

/** What torch.save writes for {key: tensor, ...} (see the fixture's data.pkl). */
function statePickle(tensors: FakeTensor[]): Uint8Array {
  const items = tensors.flatMap((t) => [
    ...str(t.key),
    ...global('torch._utils', '_rebuild_tensor_v2'),
    ...tuple(
      [...tuple(str('storage'), global('torch', t.storageType), str(t.storageKey), str('cpu'), int(t.numel)), ...op.BINPERSID],
      int(t.offset),
      tuple(...t.size.map(int)),
      tuple(...t.stride.map(int)),
      op.NEWFALSE,
      [...global('collections', 'OrderedDict'), ...op.EMPTY_TUPLE, ...op.REDUCE],
    ),
    ...op.REDUCE,
  ]);
  return Uint8Array.from([...op.PROTO2, ...op.EMPTY_DICT, ...op.MARK, ...items, ...op.SETITEMS, ...op.STOP]);
}

function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array>, extra: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Record<string, Uint8Array> = { 'archive/data.pkl': pkl, 'archive/version': Buffer.from('3\n'), ...extra };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = v;
  return zipSync(files, { level: 0 });
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

describe('readTorchBin on the fixtures', () => {
  for (const name of ['a0', 'a1', 'a2']) {
    it(`${name}: adapter_model.bin equals adapter_model.safetensors bit for bit`, () => {
      const bin = readTorchBin(path.join(ADAPTERS, name, 'adapter_model.bin'));
      const st = readSafetensors(path.join(ADAPTERS, name, 'adapter_model.safetensors')).tensors;
      expect([...bin.keys()].sort()).toEqual([...st.keys()].sort());
      expect(bin.size).toBe(24);
      for (const [key, t] of bin) {
        const s = st.get(key);
        expect(t.dtype).toBe('float32');
        expect(t.shape).toEqual(s?.shape);
        expect(Buffer.from(t.data.buffer).equals(Buffer.from((s?.data ?? new Float32Array()).buffer))).toBe(true);
      }
    });
  }
});

describe('readTorchBin on crafted archives', () => {
  it('gathers strided views with storage offsets, and converts half / bfloat16', () => {
    // storage 0: a 2x3 float32 matrix [[0,1,2],[3,4,5]]; storage 1: float16; storage 2: bfloat16.
    const half = new Uint8Array(8);
    const halfView = new DataView(half.buffer);
    [1.5, -2, 0.099975586, 65504].forEach((v, i) => halfView.setUint16(2 * i, f32ToF16Bits(v), true));
    const bf = new Uint8Array(4);
    const bfView = new DataView(bf.buffer);
    [3.140625, -0.5].forEach((v, i) => bfView.setUint16(2 * i, f32ToBf16Bits(v), true));
    const pkl = statePickle([
      { key: 'transposed', storageType: 'FloatStorage', storageKey: '0', numel: 6, offset: 0, size: [3, 2], stride: [1, 3] },
      { key: 'tail', storageType: 'FloatStorage', storageKey: '0', numel: 6, offset: 4, size: [2], stride: [1] },
      { key: 'half', storageType: 'HalfStorage', storageKey: '1', numel: 4, offset: 1, size: [3], stride: [1] },
      { key: 'bf', storageType: 'BFloat16Storage', storageKey: '2', numel: 2, offset: 0, size: [1, 2], stride: [2, 1] },
      { key: 'scalar', storageType: 'FloatStorage', storageKey: '0', numel: 6, offset: 5, size: [], stride: [] },
    ]);
    const p = tmpFile(torchZip(pkl, { '0': f32Bytes([0, 1, 2, 3, 4, 5]), '1': half, '2': bf }, { 'archive/byteorder': Buffer.from('little') }));
    const out = readTorchBin(p);
    expect([...out.keys()]).toEqual(['transposed', 'tail', 'half', 'bf', 'scalar']);
    expect(out.get('transposed')?.shape).toEqual([3, 2]);
    expect(Array.from(out.get('transposed')?.data ?? [])).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(out.get('tail')?.data ?? [])).toEqual([4, 5]);
    expect(out.get('half')?.dtype).toBe('float16');
    expect(Array.from(out.get('half')?.data ?? [])).toEqual([-2, 0.099975586, 65504].map(Math.fround));
    expect(out.get('bf')?.dtype).toBe('bfloat16');
    expect(Array.from(out.get('bf')?.data ?? [])).toEqual([3.140625, -0.5]);
    expect(Array.from(out.get('scalar')?.data ?? [])).toEqual([5]);
  });

  it('refuses a pickle that calls os.system, naming the file and the global', () => {
    // pickle.dumps(os.system-reduce) by hand: GLOBAL 'os\nsystem\n', ('echo pwned',), REDUCE.
    const evil = Uint8Array.from([...op.PROTO2, ...global('os', 'system'), ...tuple(str('echo pwned')), ...op.REDUCE, ...op.STOP]);
    const p = tmpFile(torchZip(evil, {}));
    const e = errorOf(() => readTorchBin(p));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toBe(`${p}: refuses pickle global os.system (only tensor state dicts are loaded)`);
  });

  it('refuses builtins.eval reached through STACK_GLOBAL (protocol 4)', () => {
    const evil = Uint8Array.from([
      0x80, 4, ...str('builtins'), ...str('eval'), 0x93 /* STACK_GLOBAL */, ...tuple(str('1+1')), ...op.REDUCE, ...op.STOP,
    ]);
    const e = errorOf(() => readTorchBin(tmpFile(torchZip(evil, {}))));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toContain('builtins.eval');
  });

  it('refuses a tensor global smuggled among the allowed ones', () => {
    const pkl = Uint8Array.from([
      ...op.PROTO2, ...op.EMPTY_DICT, ...op.MARK, ...str('x'), ...global('__builtin__', 'getattr'), ...op.SETITEMS, ...op.STOP,
    ]);
    const e = errorOf(() => readTorchBin(tmpFile(torchZip(pkl, {}))));
    expect(e.message).toContain('__builtin__.getattr');
  });

  it('refuses non-tensor entries, integer tensors and out-of-bounds views', () => {
    const notTensor = Uint8Array.from([...op.PROTO2, ...op.EMPTY_DICT, ...op.MARK, ...str('n'), ...int(3), ...op.SETITEMS, ...op.STOP]);
    expect(errorOf(() => readTorchBin(tmpFile(torchZip(notTensor, {})))).message).toContain('"n" is not a tensor');

    const ints = statePickle([{ key: 'ids', storageType: 'LongStorage', storageKey: '0', numel: 2, offset: 0, size: [2], stride: [1] }]);
    const e = errorOf(() => readTorchBin(tmpFile(torchZip(ints, { '0': new Uint8Array(16) }))));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toContain('tensor "ids" has dtype int64');

    const oob = statePickle([{ key: 'w', storageType: 'FloatStorage', storageKey: '0', numel: 4, offset: 2, size: [2, 2], stride: [2, 1] }]);
    const e2 = errorOf(() => readTorchBin(tmpFile(torchZip(oob, { '0': f32Bytes([0, 1, 2, 3]) }))));
    expect(e2.code).toBe('BAD_FILE');
    expect(e2.message).toContain('tensor "w"');

    const short = statePickle([{ key: 'w', storageType: 'FloatStorage', storageKey: '0', numel: 4, offset: 0, size: [4], stride: [1] }]);
    expect(errorOf(() => readTorchBin(tmpFile(torchZip(short, { '0': f32Bytes([0, 1]) })))).message).toContain('truncated');
    expect(errorOf(() => readTorchBin(tmpFile(torchZip(short, {})))).message).toContain('data/0 missing');
  });

  it('truncated zip → BAD_FILE', () => {
    const good = fs.readFileSync(path.join(ADAPTERS, 'a0', 'adapter_model.bin'));
    const p = tmpFile(good.subarray(0, Math.floor(good.length / 2)));
    const e = errorOf(() => readTorchBin(p));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toContain(p);
    expect(e.message).toContain('zip');
  });

  it('legacy (pre-1.6) torch.save format is refused clearly', () => {
    // torch < 1.6 starts with pickle protocol 2 and a magic number (LONG1).
    const p = tmpFile(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
    const e = errorOf(() => readTorchBin(p));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toContain('legacy');
  });

  it('not a zip at all, missing file, big-endian archive', () => {
    expect(errorOf(() => readTorchBin(tmpFile(Buffer.from('hello world')))).code).toBe('BAD_FILE');
    expect(errorOf(() => readTorchBin(path.join(tmp, 'none.bin'))).code).toBe('NOT_FOUND');
    const pkl = statePickle([]);
    const e = errorOf(() => readTorchBin(tmpFile(torchZip(pkl, {}, { 'archive/byteorder': Buffer.from('big') }))));
    expect(e.message).toContain('big-endian');
  });
});
