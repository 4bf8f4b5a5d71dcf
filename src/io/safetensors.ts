/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors, format described in its
 * README): an 8-byte little-endian u64 header length N, N bytes of JSON header, then the data buffer.
 *
 *   header = {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
 *
 * Offsets are relative to the start of the data buffer. Tensors are read one at a time BY OFFSET
 * (fs.readSync at a position), so a multi-GB checkpoint never has to sit in one Buffer.
 *
 * The writer reproduces the Rust library's layout byte for byte (safetensors/src/tensor.rs `prepare`
 * and `serialize`): `__metadata__` first, tensors sorted by descending dtype then by name, compact JSON,
 * header padded with spaces to a multiple of 8, raw little-endian data in the same order.
 * NaN/Inf checks are deliberately not done here: this layer moves bytes, the PEFT layer judges values.
 */
import fs from 'node:fs';
import os from 'node:os';
import { LorahubError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';

/** Every dtype of the format with a whole number of bytes per element, in the Rust enum's order. */
export const DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;
export type DType = (typeof DTYPES)[number];

const BYTES_PER_ELEMENT: Record<DType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F16', 'BF16', 'F32', 'F64']);
const INT_DTYPES: ReadonlySet<DType> = new Set<DType>(['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64']);

/** The Rust library refuses headers above 100 MB (safetensors/src/tensor.rs MAX_HEADER_SIZE). */
export const MAX_HEADER_SIZE = 100_000_000;
/** fs.readSync reads at most 2 GiB at once; read big tensors in 1 GiB pieces. */
const READ_CHUNK = 1 << 30;
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function bytesPerElement(dtype: DType): number {
  return BYTES_PER_ELEMENT[dtype];
}

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the data buffer (after the header). */
  begin: number;
  end: number;
}

// ---------------------------------------------------------------------------------------------
// half / bfloat16 conversions

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary16 bits → number (exact: every half is a float32). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero / subnormal
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** number → binary16 bits, rounding the float32 value to nearest, ties to even (as torch's .half()). */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow → ±Inf
  if (e <= 0) {
    // Result is subnormal (or zero): value = m · 2^-24 with m = M >> (14 - e), M the 24-bit significand.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to ±0
    const full = mant | 0x800000;
    const shift = 14 - e;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    let m = full >>> shift;
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    return sign | m; // m may carry into the exponent field: the smallest normal, correctly
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // may carry up to Inf, correctly
  return sign | h;
}

/** bfloat16 bits → number: the upper half of a float32. */
export function bf16BitsToF32(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0];
}

/** number → bfloat16 bits, round to nearest even (as torch's .bfloat16()); NaN stays a quiet NaN. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// header parsing and validation

function fail(file: string, message: string, cause?: unknown): never {
  throw new LorahubError('BAD_FILE', `${file}: ${message}`, cause === undefined ? undefined : { cause });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Number of elements; Infinity when the product leaves the safe-integer range (always a mismatch then). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/** Validates a decoded header against the data size. Exported for tests of the rules themselves. */
export function parseHeader(file: string, headerText: string, dataSize: number): ParsedHeader {
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch (err) {
    fail(file, `header is not valid JSON (${(err as Error).message}); file corrupt or not safetensors`, err);
  }
  if (!isPlainObject(json)) fail(file, 'header is not a JSON object; file corrupt or not safetensors');

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail(file, '"__metadata__" is not an object of strings');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') fail(file, `"__metadata__" entry "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isPlainObject(entry)) fail(file, `${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDType(dtype)) fail(file, `${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail(file, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      fail(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(file, `${where}: data_offsets [${begin}, ${end}] begin after end`);
    if (end > dataSize) {
      fail(file, `${where}: data_offsets [${begin}, ${end}] exceed the data size ${dataSize} (file truncated?)`);
    }
    const expected = numel(shape as number[]) * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== expected) {
      fail(
        file,
        `${where}: shape ${JSON.stringify(shape)} ${dtype} needs ${expected} bytes but data_offsets ` +
          `[${begin}, ${end}] span ${end - begin}`,
      );
    }
    tensors.set(name, { dtype, shape: [...(shape as number[])], begin, end });
  }

  // Overlapping tensors would alias each other's bytes: a sign of a forged or corrupt header.
  const byOffset = [...tensors.entries()].sort((x, y) => x[1].begin - y[1].begin || x[1].end - y[1].end);
  // Empty tensors occupy no bytes and may sit anywhere; compare each tensor with the furthest-reaching
  // earlier one, not just its predecessor.
  let reach: [string, TensorInfo] | undefined;
  for (const [name, cur] of byOffset) {
    if (cur.end === cur.begin) continue;
    if (reach !== undefined && cur.begin < reach[1].end) {
      const [otherName, other] = reach;
      fail(
        file,
        `tensor "${name}": data_offsets [${cur.begin}, ${cur.end}] overlap tensor "${otherName}" ` +
          `[${other.begin}, ${other.end}]`,
      );
    }
    if (reach === undefined || cur.end > reach[1].end) reach = [name, cur];
  }
  return { metadata, tensors: new Map(byOffset) };
}

// ---------------------------------------------------------------------------------------------
// reading

function readFully(fd: number, target: Uint8Array, position: number, file: string, what: string): void {
  let done = 0;
  while (done < target.byteLength) {
    const n = fs.readSync(fd, target, done, Math.min(READ_CHUNK, target.byteLength - done), position + done);
    if (n === 0) fail(file, `${what}: unexpected end of file (file truncated or changed while reading?)`);
    done += n;
  }
}

/** An open safetensors file. Header validated on open; tensor bytes read on demand. */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Byte position of the data buffer in the file (8 + header length). */
  readonly dataStart: number;
  private readonly infos: Map<string, TensorInfo>;
  private fd: number | undefined;

  private constructor(path: string, fd: number, dataStart: number, header: ParsedHeader) {
    this.path = path;
    this.fd = fd;
    this.dataStart = dataStart;
    this.metadata = header.metadata;
    this.infos = header.tensors;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new LorahubError('NOT_FOUND', `${path}: file not found`, { cause: err });
      throw new LorahubError('BAD_FILE', `${path}: cannot open (${(err as Error).message})`, { cause: err });
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) fail(path, `file is ${size} bytes, shorter than the 8-byte header length (not safetensors)`);
      const lenBuf = Buffer.alloc(8);
      readFully(fd, lenBuf, 0, path, 'header length');
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(size - 8)) {
        fail(path, `header length ${headerLen} exceeds the file size ${size} minus 8 (file truncated or not safetensors)`);
      }
      if (headerLen >= BigInt(MAX_HEADER_SIZE)) {
        fail(path, `header length ${headerLen} is above the ${MAX_HEADER_SIZE}-byte limit (not safetensors)`);
      }
      const n = Number(headerLen);
      const headerBuf = Buffer.alloc(n);
      readFully(fd, headerBuf, 8, path, 'header');
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(headerBuf);
      } catch (err) {
        fail(path, 'header is not valid UTF-8 (file corrupt or not safetensors)', err);
      }
      const header = parseHeader(path, text, size - 8 - n);
      return new SafetensorsFile(path, fd, 8 + n, header);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Tensor names in file (data offset) order. */
  names(): string[] {
    return [...this.infos.keys()];
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.infos.get(name);
    if (info === undefined) throw new LorahubError('NOT_FOUND', `${this.path}: no tensor "${name}"`);
    return { ...info, shape: [...info.shape] };
  }

  /** The raw little-endian bytes of one tensor. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    const out = new Uint8Array(info.end - info.begin);
    this.readInto(name, info, out);
    return out;
  }

  /** Any float dtype, converted to float32 (F64 is rounded to nearest). */
  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new LorahubError(
        'UNSUPPORTED',
        `${this.path}: tensor "${name}" has dtype ${info.dtype}; readFloat32 reads F32/F16/BF16/F64 only`,
      );
    }
    const n = (info.end - info.begin) / BYTES_PER_ELEMENT[info.dtype];
    if (info.dtype === 'F32' && LITTLE_ENDIAN_HOST) {
      // Read straight into the result's memory: no second copy of a possibly huge tensor.
      const out = new Float32Array(n);
      this.readInto(name, info, new Uint8Array(out.buffer));
      return out;
    }
    const bytes = new Uint8Array(info.end - info.begin);
    this.readInto(name, info, bytes);
    return decodeFloat(info.dtype, bytes, n);
  }

  /** Integer / bool dtypes as int32; an I64/U64/U32 value outside the int32 range is an error. */
  readInt32(name: string): Int32Array {
    const { info, n, view } = this.readIntRaw(name);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = readIntElement(info.dtype, view, i);
      if (v < -2147483648n || v > 2147483647n) {
        throw new LorahubError(
          'UNSUPPORTED',
          `${this.path}: tensor "${name}" (${info.dtype}) element ${i} = ${v} does not fit in int32; use readBigInt64`,
        );
      }
      out[i] = Number(v);
    }
    return out;
  }

  /** Integer / bool dtypes as int64 (U64 values above 2^63-1 are an error). */
  readBigInt64(name: string): BigInt64Array {
    const { info, n, view } = this.readIntRaw(name);
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const v = readIntElement(info.dtype, view, i);
      if (v > 9223372036854775807n) {
        throw new LorahubError('UNSUPPORTED', `${this.path}: tensor "${name}" (U64) element ${i} = ${v} does not fit in int64`);
      }
      out[i] = v;
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** An integer tensor's raw bytes, element count and dtype, after checking the dtype. */
  private readIntRaw(name: string): { info: TensorInfo; n: number; view: DataView } {
    const info = this.info(name);
    this.requireInt(name, info);
    const bytes = new Uint8Array(info.end - info.begin);
    this.readInto(name, info, bytes);
    return { info, n: bytes.length / BYTES_PER_ELEMENT[info.dtype], view: new DataView(bytes.buffer) };
  }

  private requireInt(name: string, info: TensorInfo): void {
    if (!INT_DTYPES.has(info.dtype)) {
      throw new LorahubError(
        'UNSUPPORTED',
        `${this.path}: tensor "${name}" has dtype ${info.dtype}; integer reads take BOOL/U8/I8/I16/U16/I32/U32/I64/U64`,
      );
    }
  }

  private readInto(name: string, info: TensorInfo, target: Uint8Array): void {
    if (this.fd === undefined) throw new LorahubError('INTERNAL', `${this.path}: file already closed`);
    readFully(this.fd, target, this.dataStart + info.begin, this.path, `tensor "${name}"`);
  }
}

function decodeFloat(dtype: DType, bytes: Uint8Array, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(view.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(view.getUint16(2 * i, true));
      break;
    default:
      throw new LorahubError('UNSUPPORTED', `dtype ${dtype} is not a float dtype`);
  }
  return out;
}

function readIntElement(dtype: DType, view: DataView, i: number): bigint {
  switch (dtype) {
    case 'BOOL':
    case 'U8':
      return BigInt(view.getUint8(i));
    case 'I8':
      return BigInt(view.getInt8(i));
    case 'I16':
      return BigInt(view.getInt16(2 * i, true));
    case 'U16':
      return BigInt(view.getUint16(2 * i, true));
    case 'I32':
      return BigInt(view.getInt32(4 * i, true));
    case 'U32':
      return BigInt(view.getUint32(4 * i, true));
    case 'I64':
      return view.getBigInt64(8 * i, true);
    case 'U64':
      return view.getBigUint64(8 * i, true);
    default:
      throw new LorahubError('UNSUPPORTED', `dtype ${dtype} is not an integer dtype`);
  }
}

export interface FloatTensor {
  dtype: DType;
  shape: number[];
  data: Float32Array;
}

/** Convenience: every tensor as float32. Files holding integer tensors need SafetensorsFile. */
export function readSafetensors(path: string): { metadata: Record<string, string>; tensors: Map<string, FloatTensor> } {
  const file = SafetensorsFile.open(path);
  try {
    const tensors = new Map<string, FloatTensor>();
    for (const name of file.names()) {
      const { dtype, shape } = file.info(name);
      tensors.set(name, { dtype, shape, data: file.readFloat32(name) });
    }
    return { metadata: { ...file.metadata }, tensors };
  } finally {
    file.close();
  }
}

// ---------------------------------------------------------------------------------------------
// writing

export type WritableDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

export interface TensorToWrite {
  name: string;
  dtype: WritableDType;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

/** Rust's `Dtype` derives Ord in declaration order; the writer sorts by it descending, then by name. */
function dtypeRank(d: DType): number {
  return DTYPES.indexOf(d);
}

/** Byte-wise UTF-8 comparison, as Rust's String ordering. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function badTensor(name: string, message: string): never {
  throw new LorahubError('INTERNAL', `safetensors write: tensor "${name}": ${message}`);
}

function encodeData(t: TensorToWrite): Uint8Array {
  const n = t.data.length;
  switch (t.dtype) {
    case 'F32':
    case 'F16':
    case 'BF16': {
      if (!(t.data instanceof Float32Array)) badTensor(t.name, `dtype ${t.dtype} needs a Float32Array`);
      const src = t.data;
      if (t.dtype === 'F32') {
        if (LITTLE_ENDIAN_HOST) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
        const out = new Uint8Array(4 * n);
        const v = new DataView(out.buffer);
        for (let i = 0; i < n; i++) v.setFloat32(4 * i, src[i], true);
        return out;
      }
      const out = new Uint8Array(2 * n);
      const v = new DataView(out.buffer);
      const conv = t.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < n; i++) v.setUint16(2 * i, conv(src[i]), true);
      return out;
    }
    case 'I32': {
      if (!(t.data instanceof Int32Array)) badTensor(t.name, 'dtype I32 needs an Int32Array');
      const out = new Uint8Array(4 * n);
      const v = new DataView(out.buffer);
      for (let i = 0; i < n; i++) v.setInt32(4 * i, t.data[i], true);
      return out;
    }
    case 'I64': {
      const src = t.data;
      if (src instanceof Float32Array) badTensor(t.name, 'dtype I64 needs a BigInt64Array or Int32Array');
      const out = new Uint8Array(8 * n);
      const v = new DataView(out.buffer);
      if (src instanceof BigInt64Array) for (let i = 0; i < n; i++) v.setBigInt64(8 * i, src[i], true);
      else for (let i = 0; i < n; i++) v.setBigInt64(8 * i, BigInt(src[i]), true);
      return out;
    }
    default:
      return badTensor(t.name, `cannot write dtype ${String((t as { dtype: unknown }).dtype)}`);
  }
}

/** Header bytes (length prefix included) and the data pieces in file order. */
function prepare(tensors: TensorToWrite[], metadata?: Record<string, string>): { header: Buffer; pieces: Uint8Array[] } {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '' || t.name === '__metadata__') {
      badTensor(String(t.name), 'invalid tensor name');
    }
    if (seen.has(t.name)) badTensor(t.name, 'duplicate tensor name');
    seen.add(t.name);
    if (!(['F32', 'F16', 'BF16', 'I64', 'I32'] as string[]).includes(t.dtype)) badTensor(t.name, `cannot write dtype ${t.dtype}`);
    if (!t.shape.every(isNonNegInt)) badTensor(t.name, `shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    if (numel(t.shape) !== t.data.length) {
      badTensor(t.name, `shape ${JSON.stringify(t.shape)} has ${numel(t.shape)} elements but data has ${t.data.length}`);
    }
  }
  const sorted = [...tensors].sort((x, y) => dtypeRank(y.dtype) - dtypeRank(x.dtype) || compareUtf8(x.name, y.name));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    // Rust keeps metadata in a HashMap (arbitrary order); sorted keys make our output deterministic.
    const md: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort(compareUtf8)) {
      if (typeof metadata[k] !== 'string') {
        throw new LorahubError('INTERNAL', `safetensors write: metadata "${k}" is not a string`);
      }
      md[k] = metadata[k];
    }
    header.__metadata__ = md;
  }
  const pieces: Uint8Array[] = [];
  let offset = 0;
  for (const t of sorted) {
    const bytes = encodeData(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    pieces.push(bytes);
  }
  // JSON.stringify's escaping equals serde_json's for valid strings: ", \, \b \f \n \r \t, other
  // control characters as \u00xx, everything else raw UTF-8.
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  return { header: head, pieces };
}

export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Buffer {
  const { header, pieces } = prepare(tensors, metadata);
  return Buffer.concat([header, ...pieces]);
}

/** Writes atomically (temp file + fsync + rename) without concatenating the tensors in memory. */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const { header, pieces } = prepare(tensors, metadata);
  writeFileAtomic(path, [header, ...pieces]);
}
