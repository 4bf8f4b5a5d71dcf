/**
 * A small ONNX graph builder over onnx-proto's protobuf classes (the ONNX schema compiled by
 * protobufjs), so graphs are written as code — one call per node — and never hand-encoded.
 *
 * Values are referred to by name; `op` returns the name of its (first) output. Constants are
 * small embedded initializers; model weights are external-data initializers that point at byte
 * ranges of the checkpoint file (ONNX external data: location, offset, length).
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX TensorProto.DataType codes used here. */
export const DT = { float: 1, int64: 7, float16: 10, bfloat16: 16 } as const;
export type ElemType = keyof typeof DT;

/** A symbolic (string) or fixed (number) dimension. */
export type Dim = number | string;

export type AttrValue = number | number[] | string | { ints: number[] } | { floats: number[] };

/** IR version 8 and opset 15 (onnx-proto's schema; every op used here exists there). */
const IR_VERSION = 8;
const OPSET = 15;

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('ints' in v) return { name, type: T.INTS, ints: v.ints };
  return { name, type: T.FLOATS, floats: v.floats };
}

function valueInfo(name: string, elem: ElemType, dims?: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DT[elem],
        shape: dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  };
}

export class Graph {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly memo = new Map<string, string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    let n: string;
    do n = `${hint}_${this.counter++}`;
    while (this.names.has(n));
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx graph ${this.name}: duplicate value name "${name}"`);
    this.names.add(name);
    return name;
  }

  /** A graph input. */
  input(name: string, elem: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elem, dims));
    return name;
  }

  /** Declares `value` a graph output named `name` (an Identity node renames it when needed). */
  output(name: string, value: string, elem: ElemType = 'float'): void {
    const v = value === name ? value : this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(v, elem));
  }

  /**
   * One node; returns its output's name (`outName` fixes it). For several outputs use `opN`.
   */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    return this.opN(type, inputs, 1, attrs, outName ? [outName] : undefined)[0];
  }

  opN(type: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}, outNames?: string[]): string[] {
    const outs = outNames ? outNames.map((n) => this.claim(n)) : Array.from({ length: nOut }, () => this.fresh(type.toLowerCase()));
    this.nodes.push({
      opType: type,
      input: inputs,
      output: outs,
      name: `${type}_${this.nodes.length}`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** An embedded int64 constant (deduplicated). */
  i64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    let name = this.memo.get(key);
    if (!name) {
      name = this.fresh('const_i64');
      this.initializers.push({ name, dims, dataType: DT.int64, rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
      this.memo.set(key, name);
    }
    return name;
  }

  /** An embedded float32 constant (small ones deduplicated); a scalar when dims is []. */
  f32(values: number[], dims: number[] = [values.length]): string {
    const key = values.length <= 64 ? `f32:${dims.join('x')}:${values.join(',')}` : this.fresh('f32_key');
    let name = this.memo.get(key);
    if (!name) {
      name = this.fresh('const_f32');
      this.initializers.push({ name, dims, dataType: DT.float, rawData: new Uint8Array(Float32Array.from(values).buffer) });
      this.memo.set(key, name);
    }
    return name;
  }

  /** Memoises a derived value (e.g. a shape tensor) under `key`. */
  cached(key: string, make: () => string): string {
    let v = this.memo.get(key);
    if (!v) {
      v = make();
      this.memo.set(key, v);
    }
    return v;
  }

  /** A weight stored outside the protobuf: `length` bytes at `offset` of `location` (relative to the model). */
  external(name: string, elem: ElemType, dims: number[], location: string, offset: number, length: number): string {
    this.initializers.push({
      name: this.claim(name),
      dims,
      dataType: DT[elem],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ],
    });
    return name;
  }

  /** The serialised ModelProto. */
  encode(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'lorahub',
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
