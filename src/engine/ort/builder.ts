/**
 * What every graph builder of the ort engine shares (t5-graph.ts, causal-graph.ts): checkpoint
 * weights as external-data initializers (F16/BF16 cast to float32 once), the LoRA graph inputs —
 * per-candidate A/B, or a module stack composed inside the graph by the weights [G, N] — and rows
 * [g·R, width] that stay shared (g = 1) by every group until a group-specific delta touches them.
 */
import { Graph, type ElemType } from './onnx.ts';

/** Where one weight lives in the checkpoint file. */
export interface WeightSource {
  /** Tensor name in the checkpoint (for error messages). */
  name: string;
  elem: ElemType;
  shape: number[];
  /** Absolute byte offset in the file and byte length. */
  offset: number;
  length: number;
}

/** Rows [g·R, width]; `shared` when g = 1 for every group (no group-specific delta yet). */
export interface Rows {
  v: string;
  shared: boolean;
}

/** The file name external data points at (a link to the checkpoint beside the .onnx file). */
export const WEIGHTS_LOCATION = 'model.safetensors';

/** Graph inputs of one LoRA target: composed A [G, r, dIn] and scaling·B [G, dOut, r]. */
export function loraInputNames(path: string): { a: string; b: string } {
  return { a: `lora.${path}.A`, b: `lora.${path}.B` };
}

/** Graph inputs of one stacked target: the N modules' A [N, r·dIn], B [N, dOut·r] and the scaling []. */
export function stackInputNames(path: string): { a: string; b: string; scale: string } {
  return { a: `stack.${path}.A`, b: `stack.${path}.B`, scale: `stack.${path}.scale` };
}

/** The composition weights [G, N] of a stacked population. */
export const STACK_WEIGHTS = 'composition_weights';

export interface LoraTargetShape {
  path: string;
  dIn: number;
  dOut: number;
}

/** A graph with the shape helpers every builder uses (dims of a value, shape tensors, reshape). */
export class ShapeBuilder {
  readonly g: Graph;

  constructor(name: string) {
    this.g = new Graph(name);
  }

  /** [n] int64 slice of a shape: dims [from, to) of `value`'s shape. */
  dims(value: string, from: number, to: number): string {
    return this.g.cached(`dims:${value}:${from}:${to}`, () => this.g.op('Slice', [this.g.op('Shape', [value]), this.g.i64([from]), this.g.i64([to])]));
  }

  /** A shape tensor from int64 [1] pieces and constants. */
  shape(parts: (string | number)[]): string {
    return this.g.cached(`shape:${parts.join('|')}`, () => this.g.op('Concat', parts.map((p) => (typeof p === 'number' ? this.g.i64([p]) : p)), { axis: 0 }));
  }

  reshape(x: string, parts: (string | number)[]): string {
    return this.g.op('Reshape', [x, this.shape(parts)]);
  }
}

export class GraphBuilder extends ShapeBuilder {
  protected readonly weights: Map<string, WeightSource>;
  /** Aᵀ [G, dIn, r] and Bᵀ [G, r, dOut] per LoRA target path. */
  private readonly lora = new Map<string, { aT: string; bT: string }>();

  constructor(name: string, weights: Map<string, WeightSource>, loraTargets: readonly LoraTargetShape[], stacked: boolean) {
    super(name);
    this.weights = weights;
    const w = stacked && loraTargets.length > 0 ? this.g.input(STACK_WEIGHTS, 'float', ['G', 'N']) : undefined;
    loraTargets.forEach((t, k) => {
      let a: string;
      let b: string;
      if (w) {
        // Composed inside the graph: A = w·stackA, B = scaling·w·stackB for every candidate at once.
        const sn = stackInputNames(t.path);
        const sa = this.g.input(sn.a, 'float', ['N', `ka${k}`]);
        const sb = this.g.input(sn.b, 'float', ['N', `kb${k}`]);
        const scale = this.g.input(sn.scale, 'float', []);
        a = this.reshape(this.g.op('MatMul', [w, sa]), [0, -1, t.dIn]);
        b = this.reshape(this.g.op('Mul', [this.g.op('MatMul', [w, sb]), scale]), [0, t.dOut, -1]);
      } else {
        const names = loraInputNames(t.path);
        a = this.g.input(names.a, 'float', ['G', `r${k}`, t.dIn]);
        b = this.g.input(names.b, 'float', ['G', t.dOut, `r${k}`]);
      }
      // Aᵀ [G, dIn, r] and Bᵀ [G, r, dOut], once per run.
      this.lora.set(t.path, { aT: this.g.op('Transpose', [a], { perm: [0, 2, 1] }), bT: this.g.op('Transpose', [b], { perm: [0, 2, 1] }) });
    });
  }

  /** A checkpoint weight (by the builder's key for it) as an initializer; F16/BF16 cast to float32 once. */
  w(key: string): string {
    return this.g.cached(`w:${key}`, () => {
      const src = this.weights.get(key);
      if (!src) throw new Error(`internal: no weight "${key}"`);
      const init = this.g.external(`w.${key}`, src.elem, src.shape, WEIGHTS_LOCATION, src.offset, src.length);
      return src.elem === 'float' ? init : this.g.op('Cast', [init], { to: 1 });
    });
  }

  /**
   * `base` (x's base projection, rows [g·R, dOut]) plus each group's LoRA delta s·(x·Aᵀ)·Bᵀ
   * where `path` (the PEFT module path) is a target; R: rows per group ([1] int64).
   */
  withLora(x: Rows, base: string, path: string, R: string, dIn: number, dOut: number): Rows {
    const d = this.lora.get(path);
    if (!d) return { v: base, shared: x.shared };
    const x3 = this.reshape(x.v, [-1, R, dIn]); // [g, R, dIn]
    const delta = this.g.op('MatMul', [this.g.op('MatMul', [x3, d.aT]), d.bT]); // [G, R, dOut]
    const sum = this.g.op('Add', [this.reshape(base, [-1, R, dOut]), delta]);
    return { v: this.reshape(sum, [-1, dOut]), shared: false };
  }

  /** Elementwise op on rows, broadcasting shared rows over the groups of unshared ones. */
  combine(op: 'Add' | 'Mul', a: Rows, b: Rows, R: string, width: number): Rows {
    if (a.shared === b.shared) return { v: this.g.op(op, [a.v, b.v]), shared: a.shared };
    const [s, u] = a.shared ? [a, b] : [b, a];
    return { v: this.reshape(this.g.op(op, [this.reshape(u.v, [-1, R, width]), s.v]), [-1, width]), shared: false };
  }
}
