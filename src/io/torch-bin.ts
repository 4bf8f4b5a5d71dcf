/**
 * Reader for PyTorch `torch.save` files holding a tensor state dict (the `adapter_model.bin` that
 * PEFT 0.3/0.4 wrote, which is how the original LoRAHub modules were published).
 *
 * Format (torch/serialization.py, `_save` / `_load`, torch >= 1.6): a zip archive with one top folder
 * `<name>/` holding `data.pkl` (the pickled object), `data/<key>` (raw little-endian storage bytes,
 * one file per storage), `version` and, since torch 2.1, `byteorder`. Tensors are pickled as
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata])`, storages as persistent ids `('storage', <StorageType>, key, location,
 * numel)`.
 *
 * Unpickling executes whatever globals the file names, so this reader is an allow-list: the only
 * globals resolved are the handful a tensor state dict needs (OrderedDict, the tensor rebuild
 * functions, the storage classes); any other global (os.system, builtins.eval, ...) is refused before
 * anything is called. Nothing here evaluates code from the file.
 */
import fs from 'node:fs';
import { unzipSync } from 'fflate';
import { Parser } from 'pickleparser';
import { LorahubError } from '../errors.ts';
import { bf16BitsToF32, f16BitsToF32 } from './safetensors.ts';

export interface TorchTensor {
  shape: number[];
  /** torch dtype name: float32 | float16 | bfloat16 | float64. */
  dtype: string;
  data: Float32Array;
}

interface StorageKind {
  dtype: string;
  bytes: number;
  float: boolean;
}

/** torch's legacy typed storage classes (torch/storage.py), as they appear in pickles. */
const STORAGE_TYPES: Record<string, StorageKind> = {
  FloatStorage: { dtype: 'float32', bytes: 4, float: true },
  HalfStorage: { dtype: 'float16', bytes: 2, float: true },
  BFloat16Storage: { dtype: 'bfloat16', bytes: 2, float: true },
  DoubleStorage: { dtype: 'float64', bytes: 8, float: true },
  LongStorage: { dtype: 'int64', bytes: 8, float: false },
  IntStorage: { dtype: 'int32', bytes: 4, float: false },
  ShortStorage: { dtype: 'int16', bytes: 2, float: false },
  CharStorage: { dtype: 'int8', bytes: 1, float: false },
  ByteStorage: { dtype: 'uint8', bytes: 1, float: false },
  BoolStorage: { dtype: 'bool', bytes: 1, float: false },
};

/** What `('storage', ...)` persistent ids become while unpickling. */
interface StorageRef {
  readonly kind: 'storage';
  readonly type: StorageKind;
  readonly key: string;
  readonly numel: number;
}

/** What `_rebuild_tensor_v2(...)` becomes: a description; the bytes are gathered after parsing. */
interface TensorRef {
  readonly kind: 'tensor';
  readonly storage: StorageRef;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
}

function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'storage';
}

function isTensorRef(v: unknown): v is TensorRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'tensor';
}

function badFile(file: string, message: string, cause?: unknown): never {
  throw new LorahubError('BAD_FILE', `${file}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Pickle integers arrive as number (BININT*, LONG1) or bigint (LONG4). */
function toIndex(file: string, what: string, v: unknown): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    badFile(file, `${what} is not a non-negative integer: ${String(v)}`);
  }
  return n;
}

function toIndexList(file: string, what: string, v: unknown): number[] {
  if (!Array.isArray(v)) badFile(file, `${what} is not a tuple: ${String(v)}`);
  return v.map((x, i) => toIndex(file, `${what}[${i}]`, x));
}

// pickleparser's resolver types are `(...args: any[]) => any`; the functions below take `unknown`
// arguments and validate them, so no `any` leaks into this module.
type PickleCallable = (...args: unknown[]) => unknown;

/** Builds the allow-listed globals for one file (errors name the file). */
function makeGlobals(file: string): { resolve(module: string, name: string): PickleCallable; storageKinds: Map<unknown, StorageKind> } {
  const storageKinds = new Map<unknown, StorageKind>();
  const storageClasses = new Map<string, PickleCallable>();
  for (const [name, kind] of Object.entries(STORAGE_TYPES)) {
    // A marker only: storage classes appear in persistent ids, and are never called by torch's pickles.
    const marker: PickleCallable = () => badFile(file, `pickle calls torch.${name} directly (not a torch.save state dict)`);
    storageKinds.set(marker, kind);
    storageClasses.set(name, marker);
  }

  // collections.OrderedDict: torch pickles it as OrderedDict() then SETITEMS (and BUILD for a
  // `_metadata` attribute, which pickleparser ignores on a Map). Used for state dicts and for
  // `backward_hooks`. A regular function, since the NEWOBJ opcode would `new` it.
  const orderedDict: PickleCallable = function orderedDict(...args: unknown[]) {
    if (args.length > 0) badFile(file, 'collections.OrderedDict called with arguments (not a torch.save state dict)');
    return new Map<unknown, unknown>();
  };

  const rebuildTensorV2: PickleCallable = function rebuildTensorV2(...args: unknown[]) {
    // torch/_utils.py: _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None)
    if (args.length < 6 || args.length > 7) badFile(file, `_rebuild_tensor_v2 got ${args.length} arguments, expected 6 or 7`);
    const [storage, offset, size, stride] = args;
    if (!isStorageRef(storage)) badFile(file, '_rebuild_tensor_v2: first argument is not a storage');
    const sizeList = toIndexList(file, 'tensor size', size);
    const strideList = toIndexList(file, 'tensor stride', stride);
    if (sizeList.length !== strideList.length) {
      badFile(file, `tensor size ${JSON.stringify(sizeList)} and stride ${JSON.stringify(strideList)} differ in length`);
    }
    const ref: TensorRef = {
      kind: 'tensor',
      storage,
      offset: toIndex(file, 'storage_offset', offset),
      size: Object.freeze(sizeList),
      stride: Object.freeze(strideList),
    };
    // Frozen so a hostile BUILD opcode cannot rewrite it (Object.assign on a frozen object throws).
    return Object.freeze(ref);
  };

  // torch/_utils.py: _rebuild_parameter(data, requires_grad, backward_hooks): an nn.Parameter is its data.
  const rebuildParameter: PickleCallable = function rebuildParameter(...args: unknown[]) {
    if (!isTensorRef(args[0])) badFile(file, '_rebuild_parameter: first argument is not a tensor');
    return args[0];
  };

  return {
    storageKinds,
    resolve(module: string, name: string): PickleCallable {
      if (module === 'collections' && name === 'OrderedDict') return orderedDict;
      if (module === 'torch._utils' && name === '_rebuild_tensor_v2') return rebuildTensorV2;
      if (module === 'torch._utils' && name === '_rebuild_parameter') return rebuildParameter;
      const storageClass = module === 'torch' ? storageClasses.get(name) : undefined;
      if (storageClass !== undefined) return storageClass;
      throw new LorahubError(
        'UNSUPPORTED',
        `${file}: refuses pickle global ${module}.${name} (only tensor state dicts are loaded)`,
      );
    },
  };
}

function unpickle(file: string, pkl: Uint8Array): unknown {
  const globals = makeGlobals(file);
  const parser = new Parser({
    nameResolver: { resolve: (module: string, name: string) => globals.resolve(module, name) },
    persistentResolver: {
      resolve: (pid: unknown): StorageRef => {
        // torch/serialization.py persistent_id: ('storage', storage_type, key, location, numel)
        if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
          badFile(file, `unexpected pickle persistent id ${JSON.stringify(String(pid))} (not a torch storage)`);
        }
        const type = globals.storageKinds.get(pid[1]);
        if (type === undefined) badFile(file, 'storage persistent id names an unknown storage type');
        if (typeof pid[2] !== 'string') badFile(file, 'storage key is not a string');
        return Object.freeze({ kind: 'storage', type, key: pid[2], numel: toIndex(file, 'storage numel', pid[4]) });
      },
    },
    extensionResolver: {
      resolve: (code: number) => badFile(file, `pickle uses extension code ${code} (not a torch.save state dict)`),
    },
    // Maps, not plain objects: keys such as "__proto__" then stay data.
    unpicklingTypeOfDictionary: 'Map',
    unpicklingTypeOfSet: 'array',
  });
  try {
    return parser.parse(pkl);
  } catch (err) {
    if (err instanceof LorahubError) throw err;
    return badFile(file, `cannot unpickle data.pkl: ${(err as Error).message}`, err);
  }
}

function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

function decodeElement(kind: StorageKind, view: DataView, i: number): number {
  switch (kind.dtype) {
    case 'float32':
      return view.getFloat32(4 * i, true);
    case 'float16':
      return f16BitsToF32(view.getUint16(2 * i, true));
    case 'bfloat16':
      return bf16BitsToF32(view.getUint16(2 * i, true));
    default:
      return view.getFloat64(8 * i, true);
  }
}

/** Gathers a (possibly strided) view of a storage into a dense row-major Float32Array. */
function materialize(file: string, key: string, t: TensorRef, bytes: Uint8Array): Float32Array {
  const kind = t.storage.type;
  const where = `tensor "${key}"`;
  if (!kind.float) {
    throw new LorahubError('UNSUPPORTED', `${file}: ${where} has dtype ${kind.dtype}; only float tensors are loaded`);
  }
  const storageBytes = t.storage.numel * kind.bytes;
  if (bytes.byteLength < storageBytes) {
    badFile(file, `${where}: storage data/${t.storage.key} has ${bytes.byteLength} bytes, expected ${storageBytes} (file truncated?)`);
  }
  let n = 1;
  let last = t.offset; // highest storage index touched
  for (let d = 0; d < t.size.length; d++) {
    n *= t.size[d];
    last += (t.size[d] - 1) * t.stride[d];
  }
  if (n > 0 && last >= t.storage.numel) {
    badFile(
      file,
      `${where}: size ${JSON.stringify(t.size)}, stride ${JSON.stringify(t.stride)}, offset ${t.offset} ` +
        `reach element ${last} of a storage with ${t.storage.numel}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (n === 0) return out;
  if (isContiguous(t.size, t.stride)) {
    for (let i = 0; i < n; i++) out[i] = decodeElement(kind, view, t.offset + i);
    return out;
  }
  // Non-contiguous (e.g. a transposed view saved as is): walk the index space in row-major order.
  const rank = t.size.length;
  const idx = new Array<number>(rank).fill(0);
  let src = t.offset;
  for (let i = 0; i < n; i++) {
    out[i] = decodeElement(kind, view, src);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d] += 1;
      src += t.stride[d];
      if (idx[d] < t.size[d]) break;
      src -= t.stride[d] * t.size[d];
      idx[d] = 0;
    }
  }
  return out;
}

function startsWith(buf: Uint8Array, bytes: number[]): boolean {
  return bytes.every((b, i) => buf[i] === b);
}

/** Reads a torch.save (zip) state dict of float tensors; keys in the pickle's order. */
export function readTorchBin(path: string): Map<string, TorchTensor> {
  let raw: Uint8Array;
  try {
    raw = fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LorahubError('NOT_FOUND', `${path}: file not found`, { cause: err });
    throw new LorahubError('BAD_FILE', `${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  if (!startsWith(raw, [0x50, 0x4b, 0x03, 0x04])) {
    if (raw[0] === 0x80) {
      // torch < 1.6 (or _use_new_zipfile_serialization=False) writes a bare sequence of pickles.
      throw new LorahubError(
        'UNSUPPORTED',
        `${path}: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch >= 1.6 or convert it to safetensors`,
      );
    }
    badFile(path, 'not a torch.save zip archive (no zip signature)');
  }

  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(raw);
  } catch (err) {
    return badFile(path, `corrupt or truncated zip archive (${(err as Error).message})`, err);
  }
  const pklNames = Object.keys(entries).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pklNames.length !== 1) {
    badFile(path, `expected one <folder>/data.pkl in the archive, found ${pklNames.length}`);
  }
  const prefix = pklNames[0].slice(0, -'data.pkl'.length);
  const byteorder = entries[`${prefix}byteorder`];
  if (byteorder !== undefined && new TextDecoder().decode(byteorder).trim() !== 'little') {
    throw new LorahubError('UNSUPPORTED', `${path}: big-endian torch.save archives are not supported`);
  }

  const root = unpickle(path, entries[pklNames[0]]);
  if (!(root instanceof Map)) badFile(path, 'data.pkl does not hold a dict (not a state dict)');

  const out = new Map<string, TorchTensor>();
  for (const [key, value] of root) {
    if (typeof key !== 'string') badFile(path, `state dict key ${String(key)} is not a string`);
    if (!isTensorRef(value)) {
      throw new LorahubError('UNSUPPORTED', `${path}: state dict entry "${key}" is not a tensor`);
    }
    const bytes = entries[`${prefix}data/${value.storage.key}`];
    if (bytes === undefined) badFile(path, `tensor "${key}": storage data/${value.storage.key} missing from the archive`);
    out.set(key, { shape: [...value.size], dtype: value.storage.type.dtype, data: materialize(path, key, value, bytes) });
  }
  return out;
}
