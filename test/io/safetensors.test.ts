import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorOf } from '../helpers.ts';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  encodeSafetensors,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  readSafetensors,
  SafetensorsFile,
  writeSafetensors,
} from '../../src/io/safetensors.ts';

const T5 = fileURLToPath(new URL('../../../shared/fixtures/t5-gated/', import.meta.url));
const MODEL = path.join(T5, 'model', 'model.safetensors');
const ADAPTER = path.join(T5, 'adapters', 'a0', 'adapter_model.safetensors');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorahub-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
function tmpFile(bytes?: Uint8Array): string {
  const p = path.join(tmp, `t${counter++}.safetensors`);
  if (bytes) fs.writeFileSync(p, bytes);
  return p;
}

/** A hand-made file: header JSON as given (padded), then the data bytes. */
function rawFile(header: unknown, data: Uint8Array): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return tmpFile(Buffer.concat([len, json, data]));
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('half / bfloat16 conversions', () => {
  it('f16: every bit pattern survives decode → encode', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = f16BitsToF32(h);
      if (Number.isNaN(x)) expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(x)))).toBe(true);
      else expect(f32ToF16Bits(x)).toBe(h);
    }
  });

  it('f16: rounds to nearest, ties to even, with overflow and subnormals', () => {
    expect(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11))).toBe(1); // tie → even (1.0)
    expect(f16BitsToF32(f32ToF16Bits(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // tie → even
    expect(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20))).toBe(1 + 2 ** -10); // above tie
    expect(f16BitsToF32(f32ToF16Bits(65504))).toBe(65504);
    expect(f16BitsToF32(f32ToF16Bits(65519))).toBe(65504);
    expect(f16BitsToF32(f32ToF16Bits(65520))).toBe(Infinity); // tie with the odd max → Inf
    expect(f16BitsToF32(f32ToF16Bits(2 ** -24))).toBe(2 ** -24);
    expect(f16BitsToF32(f32ToF16Bits(2 ** -25))).toBe(0); // tie → even (0)
    expect(f16BitsToF32(f32ToF16Bits(1.5 * 2 ** -25))).toBe(2 ** -24);
    expect(f16BitsToF32(f32ToF16Bits(3 * 2 ** -25))).toBe(2 ** -23); // tie between 1 and 2 ulps → 2
    expect(Object.is(f16BitsToF32(f32ToF16Bits(-0)), -0)).toBe(true);
    expect(f16BitsToF32(f32ToF16Bits(-Infinity))).toBe(-Infinity);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });

  it('bf16: round to nearest even, NaN stays NaN', () => {
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20))).toBe(1 + 2 ** -7);
    expect(bf16BitsToF32(f32ToBf16Bits(-3.140625))).toBe(-3.140625);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    expect(bf16BitsToF32(f32ToBf16Bits(Infinity))).toBe(Infinity);
  });
});

describe('safetensors round trip', () => {
  const special = Float32Array.from([0, -0, 1.5, -2.25, 1e-40, 3.4028234663852886e38, Infinity, -Infinity, NaN, Math.PI]);

  it('F32 is bit-exact, including -0, subnormals, Inf and NaN', () => {
    const p = tmpFile();
    writeSafetensors(p, [{ name: 'x', dtype: 'F32', shape: [2, 5], data: special }], { a: 'b' });
    const f = SafetensorsFile.open(p);
    expect(f.metadata).toEqual({ a: 'b' });
    expect(f.info('x')).toEqual({ dtype: 'F32', shape: [2, 5], begin: 0, end: 40 });
    expect(bytesOf(f.readFloat32('x')).equals(bytesOf(special))).toBe(true);
    f.close();
  });

  it('F16 and BF16 store the rounded values and read them back exactly', () => {
    const p = tmpFile();
    const data = Float32Array.from([1, -2.5, 1 + 2 ** -11, 65520, 0.1, NaN]);
    writeSafetensors(p, [
      { name: 'h', dtype: 'F16', shape: [6], data },
      { name: 'b', dtype: 'BF16', shape: [2, 3], data },
    ]);
    const { tensors } = readSafetensors(p);
    const h = tensors.get('h');
    const b = tensors.get('b');
    expect(h?.dtype).toBe('F16');
    expect(b?.shape).toEqual([2, 3]);
    expect(Array.from(h?.data ?? []).slice(0, 5)).toEqual([1, -2.5, 1, Infinity, f16BitsToF32(0x2e66)]);
    expect(Array.from(b?.data ?? []).slice(0, 5)).toEqual([1, -2.5, 1, 65536, bf16BitsToF32(0x3dcd)]);
    expect(Number.isNaN(h?.data[5])).toBe(true);
    expect(Number.isNaN(b?.data[5])).toBe(true);
  });

  it('I32 and I64 (from BigInt64Array or Int32Array)', () => {
    const p = tmpFile();
    const big = BigInt64Array.from([0n, -1n, 2n ** 40n, -(2n ** 62n)]);
    writeSafetensors(p, [
      { name: 'i32', dtype: 'I32', shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) },
      { name: 'i64', dtype: 'I64', shape: [2, 2], data: big },
      { name: 'small64', dtype: 'I64', shape: [2], data: Int32Array.from([-5, 7]) },
    ]);
    const f = SafetensorsFile.open(p);
    expect(Array.from(f.readInt32('i32'))).toEqual([-2147483648, 0, 2147483647]);
    expect(Array.from(f.readBigInt64('i64'))).toEqual(Array.from(big));
    expect(Array.from(f.readInt32('small64'))).toEqual([-5, 7]);
    const e = errorOf(() => f.readInt32('i64'));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toContain('"i64"');
    expect(errorOf(() => f.readFloat32('i32')).code).toBe('UNSUPPORTED');
    f.close();
  });

  it('reads F64, I16, I8, U8 and BOOL written by another writer', () => {
    const data = Buffer.alloc(16 + 4 + 2 + 2 + 2);
    data.writeDoubleLE(0.1, 0);
    data.writeDoubleLE(-1e300, 8);
    data.writeInt16LE(-300, 16);
    data.writeInt16LE(300, 18);
    data.writeInt8(-7, 20);
    data.writeInt8(7, 21);
    data.writeUInt8(255, 22);
    data.writeUInt8(1, 23);
    data.writeUInt8(1, 24);
    data.writeUInt8(0, 25);
    const p = rawFile(
      {
        f64: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
        i16: { dtype: 'I16', shape: [2], data_offsets: [16, 20] },
        i8: { dtype: 'I8', shape: [2], data_offsets: [20, 22] },
        u8: { dtype: 'U8', shape: [2], data_offsets: [22, 24] },
        flag: { dtype: 'BOOL', shape: [2], data_offsets: [24, 26] },
      },
      data,
    );
    const f = SafetensorsFile.open(p);
    expect(Array.from(f.readFloat32('f64'))).toEqual([Math.fround(0.1), -Infinity]);
    expect(Array.from(f.readInt32('i16'))).toEqual([-300, 300]);
    expect(Array.from(f.readInt32('i8'))).toEqual([-7, 7]);
    expect(Array.from(f.readInt32('u8'))).toEqual([255, 1]);
    expect(Array.from(f.readInt32('flag'))).toEqual([1, 0]);
    expect(f.names()).toEqual(['f64', 'i16', 'i8', 'u8', 'flag']);
    f.close();
  });

  it('writes the Rust layout: metadata first, dtype-descending then name order, padded header', () => {
    const buf = encodeSafetensors(
      [
        { name: 'b', dtype: 'F32', shape: [1], data: Float32Array.of(1) },
        { name: 'a', dtype: 'F16', shape: [1], data: Float32Array.of(1) },
        { name: 'c', dtype: 'I64', shape: [1], data: BigInt64Array.of(1n) },
        { name: 'a2', dtype: 'F32', shape: [0], data: new Float32Array(0) },
        { name: 'd', dtype: 'BF16', shape: [], data: Float32Array.of(2) },
        { name: 'e', dtype: 'I32', shape: [1], data: Int32Array.of(3) },
      ],
      { z: '1', format: 'pt' },
    );
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = buf.subarray(8, 8 + n).toString('utf8');
    expect(header.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt","z":"1"},' +
        '"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
        '"a2":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},' +
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
        '"e":{"dtype":"I32","shape":[1],"data_offsets":[12,16]},' +
        '"d":{"dtype":"BF16","shape":[],"data_offsets":[16,18]},' +
        '"a":{"dtype":"F16","shape":[1],"data_offsets":[18,20]}}',
    );
    expect(/^ *$/.test(header.slice(header.trimEnd().length))).toBe(true);
    expect(buf.length).toBe(8 + n + 20);
    // No metadata → no __metadata__ key at all.
    const bare = encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data: Float32Array.of(0) }]);
    expect(bare.subarray(8).toString('utf8')).toMatch(/^\{"x":/);
  });

  it('refuses inconsistent tensors to write', () => {
    const bad = () => encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]);
    expect(errorOf(bad).message).toContain('"x"');
    const dup = () =>
      encodeSafetensors([
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]);
    expect(errorOf(dup).message).toContain('duplicate');
    expect(errorOf(() => encodeSafetensors([{ name: 'x', dtype: 'I32', shape: [1], data: new Float32Array(1) }])).code).toBe('INTERNAL');
  });

  it('writes atomically: no temporary files left behind', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'atomic-'));
    const p = path.join(dir, 'x.safetensors');
    writeSafetensors(p, [{ name: 'x', dtype: 'F32', shape: [1], data: Float32Array.of(1) }]);
    writeSafetensors(p, [{ name: 'x', dtype: 'F32', shape: [1], data: Float32Array.of(2) }]);
    expect(fs.readdirSync(dir)).toEqual(['x.safetensors']);
    expect(readSafetensors(p).tensors.get('x')?.data[0]).toBe(2);
  });
});

describe('safetensors fixtures', () => {
  it('reads the T5 model: shared.weight [259, 64], metadata format pt', () => {
    const f = SafetensorsFile.open(MODEL);
    try {
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(f.has('shared.weight')).toBe(true);
      const info = f.info('shared.weight');
      expect(info.dtype).toBe('F32');
      expect(info.shape).toEqual([259, 64]);
      const w = f.readFloat32('shared.weight');
      expect(w.length).toBe(259 * 64);
      // Same bytes as a plain slice of the file.
      const raw = fs.readFileSync(MODEL).subarray(f.dataStart + info.begin, f.dataStart + info.end);
      expect(bytesOf(w).equals(raw)).toBe(true);
      expect(f.names()).toContain('lm_head.weight');
    } finally {
      f.close();
    }
  });

  it('re-encoding the a0 adapter from its tensors and metadata is byte-identical', () => {
    const { metadata, tensors } = readSafetensors(ADAPTER);
    const encoded = encodeSafetensors(
      [...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })),
      metadata,
    );
    expect(encoded.equals(fs.readFileSync(ADAPTER))).toBe(true);
  });
});

describe('broken safetensors files', () => {
  const good = fs.readFileSync(ADAPTER);
  const headerLen = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  const data = good.subarray(8 + headerLen);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const last = names[names.length - 1];

  function expectBad(p: string, ...parts: string[]): void {
    const e = errorOf(() => SafetensorsFile.open(p));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toContain(p);
    for (const part of parts) expect(e.message).toContain(part);
  }

  it('missing file → NOT_FOUND', () => {
    const p = path.join(tmp, 'nope.safetensors');
    const e = errorOf(() => SafetensorsFile.open(p));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain(p);
  });

  it('shorter than 8 bytes', () => {
    expectBad(tmpFile(Buffer.from([1, 2, 3])), 'shorter than the 8-byte');
  });

  it('truncated in the data: names the tensor that no longer fits', () => {
    expectBad(tmpFile(good.subarray(0, good.length - 10)), `tensor "${last}"`, 'exceed the data size', 'truncated');
  });

  it('truncated in the header', () => {
    expectBad(tmpFile(good.subarray(0, 8 + 100)), 'header length', 'exceeds the file size');
  });

  it('header length larger than the file', () => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(10n ** 12n, 0);
    expectBad(tmpFile(b), 'header length 1000000000000');
  });

  it('garbled JSON', () => {
    const b = Buffer.from(good);
    expect(String.fromCharCode(b[8 + 15])).toBe(':');
    b[8 + 15] = 0x23; // '{"__metadata__":' → '{"__metadata__"#'
    expectBad(tmpFile(b), 'not valid JSON');
  });

  it('header that is not an object', () => {
    expectBad(rawFile([1, 2], new Uint8Array(0)), 'not a JSON object');
  });

  it('unknown dtype', () => {
    expectBad(rawFile({ w: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), 'tensor "w"', 'unknown dtype "F17"');
  });

  it('lying header: shape does not match the offsets', () => {
    const lying = { ...header, [names[0]]: { dtype: 'F32', shape: [4, 65], data_offsets: [0, 1024] } };
    expectBad(rawFile(lying, data), `tensor "${names[0]}"`, 'needs 1040 bytes', 'span 1024');
  });

  it('overlapping offsets', () => {
    const h = {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      empty: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
    };
    expectBad(rawFile(h, new Uint8Array(24)), 'tensor "b"', 'overlap tensor "a"');
  });

  it('begin after end, negative or fractional shapes, non-string metadata', () => {
    expectBad(rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, new Uint8Array(8)), 'tensor "w"', 'begin after end');
    expectBad(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), 'tensor "w"', 'shape');
    expectBad(rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, new Uint8Array(4)), 'tensor "w"', 'shape');
    expectBad(rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0)), '"__metadata__" entry "a"');
  });

  it('a missing tensor name → NOT_FOUND naming it', () => {
    const f = SafetensorsFile.open(ADAPTER);
    const e = errorOf(() => f.readFloat32('nope'));
    f.close();
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('"nope"');
  });
});
