/**
 * COMPOSE: one LoRA module from N, LoRAHub's rule (Huang et al. 2024, §3; sail-sg/lorahub
 * algorithm.py `get_final_weights`):  A = Σ wᵢAᵢ,  B = Σ wᵢBᵢ  for every target, so
 * ΔW = s·(Σ wᵢBᵢ)(Σ wᵢAᵢ). This is NOT PEFT's `add_weighted_adapter(combination_type="cat")`,
 * whose ΔW is Σ wᵢBᵢAᵢ.
 *
 * Pure: validate → plan → compute over plain Float32Arrays; never touches a model.
 * Arithmetic is float32 in the reference's order (acc = w₀T₀; acc = acc + wᵢTᵢ), which is
 * bit-identical to torch (products of two float32 are exact in float64, so Math.fround after
 * each op rounds exactly once).
 */
import { LorahubError } from '../errors.ts';
import type { LoraModule, LoraTarget } from './module.ts';

/**
 * How to compose modules of different ranks:
 * - 'none': ranks and scalings must be equal (the default; a RankConflictError names the module and key).
 * - 'truncate': keep the first r_min rank components of each module, with scaling α/r_min (right
 *   for DyLoRA-trained modules, whose leading components form a valid lower-rank module at that
 *   scaling, Valipour et al. 2023).
 * - 'pad': zero-pad every module to r_max (ΔW of each module unchanged).
 * With either harmonisation, differing scalings are folded into B (exact, since ΔW is linear in B).
 */
export type Harmonize = 'none' | 'truncate' | 'pad';

export interface ComposeOptions {
  harmonize?: Harmonize;
  name?: string;
}

interface TargetPlan {
  path: string;
  rank: number;
  scaling: number;
  dIn: number;
  dOut: number;
}

/** What composition reads of a module: its targets' paths, ranks, shapes and scalings (never the weights). */
export interface ModuleLayout {
  name: string;
  targets: ReadonlyMap<string, Pick<LoraTarget, 'r' | 'dIn' | 'dOut' | 'scaling'>>;
}

/**
 * Modules that differ only in ranks or scalings: a harmonisation ('truncate' or 'pad') composes
 * them. A class of its own so that a front end can say how (the CLI names --harmonize).
 */
export class RankConflictError extends LorahubError {
  constructor(message: string) {
    super('INCOMPATIBLE', message);
    this.name = 'RankConflictError';
  }
}

/**
 * Why `m` cannot be composed with `first`, or undefined: the first problem, naming module, key,
 * expected and actual. Target sets and shapes must agree always; ranks and scalings only without
 * a harmonisation (then the error is a {@link RankConflictError}).
 *
 * Base identity is not checked here: `base_model_name_or_path` is a hint (a hub name or a path
 * that differs between machines for the same weights), and the reference composes every module
 * onto the first one's base without comparing it (sail-sg/lorahub algorithm.py
 * `load_base_model_and_lora_modules`). Whoever knows the base checks modules against its weights
 * (library/resolve.ts, by fingerprint and shapes).
 */
export function compositionConflict(first: ModuleLayout, m: ModuleLayout, harmonize: Harmonize = 'none'): LorahubError | undefined {
  for (const p of first.targets.keys()) {
    if (!m.targets.has(p)) return new LorahubError('INCOMPATIBLE', `module "${m.name}", key "${p}": missing (present in "${first.name}")`);
  }
  for (const p of m.targets.keys()) {
    if (!first.targets.has(p)) return new LorahubError('INCOMPATIBLE', `module "${m.name}", key "${p}": not a target of "${first.name}"`);
  }
  for (const [path, t0] of first.targets) {
    const t = m.targets.get(path) as Pick<LoraTarget, 'r' | 'dIn' | 'dOut' | 'scaling'>;
    if (t.dIn !== t0.dIn || t.dOut !== t0.dOut) {
      return new LorahubError('SHAPE_MISMATCH', `module "${m.name}", key "${path}": shape [${t.dOut}, ${t.dIn}], expected [${t0.dOut}, ${t0.dIn}]`);
    }
    if (harmonize !== 'none') continue;
    if (t.r !== t0.r) return new RankConflictError(`module "${m.name}", key "${path}": rank ${t.r}, expected ${t0.r} (as "${first.name}")`);
    if (t.scaling !== t0.scaling) {
      return new RankConflictError(`module "${m.name}", key "${path}": scaling ${t.scaling}, expected ${t0.scaling} (as "${first.name}")`);
    }
  }
  return undefined;
}

/** Validates the modules and plans the composed shapes. Errors name module, key, expected and actual. */
export function planComposition(modules: LoraModule[], harmonize: Harmonize = 'none'): TargetPlan[] {
  if (modules.length === 0) throw new LorahubError('INTERNAL', 'compose: no modules');
  const first = modules[0];
  for (const m of modules.slice(1)) {
    const conflict = compositionConflict(first, m, harmonize);
    if (conflict) throw conflict;
  }
  return [...first.targets].map(([path, t0]): TargetPlan => {
    const ranks = modules.map((m) => (m.targets.get(path) as LoraTarget).r);
    const rank = harmonize === 'none' ? t0.r : harmonize === 'truncate' ? Math.min(...ranks) : Math.max(...ranks);
    return { path, rank, scaling: harmonize === 'none' ? t0.scaling : composedScaling(first, rank, t0), dIn: t0.dIn, dOut: t0.dOut };
  });
}

/**
 * The scaling a module's target has at the harmonised rank. Truncation follows DyLoRA
 * (Valipour et al. 2023, §3): a module cut to rank b keeps lora_alpha, so its scaling is α/b
 * (α/√b with rslora) — what it was trained with at that rank. Zero-padding leaves ΔW as it
 * was, so the scaling is unchanged. Differences from the composed scaling fold into B.
 */
function harmonizedScaling(m: LoraModule, t: LoraTarget, rank: number, how: Harmonize): number {
  if (how !== 'truncate' || t.r === rank) return t.scaling;
  const rs = m.config.use_rslora;
  const alpha = t.scaling * (rs ? Math.sqrt(t.r) : t.r);
  return rs ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** Scaling of a harmonised target: lora_alpha / rank (or /√rank with rslora), from the first module. */
function composedScaling(first: LoraModule, rank: number, t0: LoraTarget): number {
  const alpha = t0.scaling * (first.config.use_rslora ? Math.sqrt(t0.r) : t0.r);
  return first.config.use_rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** acc[i] = fround(acc[i] + fround(w·x[i])) over the leading `rows×cols` block of a [rows×srcCols] source. */
function accumulate(acc: Float32Array, src: Float32Array, w: number, rows: number, cols: number, srcCols: number, first: boolean): void {
  for (let i = 0; i < rows; i++) {
    const so = i * srcCols;
    const ao = i * cols;
    for (let j = 0; j < cols; j++) {
      const prod = Math.fround(w * src[so + j]);
      acc[ao + j] = first ? prod : Math.fround(acc[ao + j] + prod);
    }
  }
}

/** Copies the leading block of a [rows × srcCols] matrix into [rows × cols] (cols ≤ srcCols) or zero-pads it. */
function resizeCols(src: Float32Array, rows: number, srcCols: number, cols: number, scale = 1): Float32Array {
  const out = new Float32Array(rows * cols);
  const n = Math.min(cols, srcCols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) out[i * cols + j] = scale === 1 ? src[i * srcCols + j] : Math.fround(src[i * srcCols + j] * scale);
  }
  return out;
}

/**
 * One harmonised target of N modules, stacked: row i of `a` [N, rank·dIn] is module i's A and
 * row i of `b` [N, dOut·rank] its B (with any scaling difference folded in), so a composition is
 * one product: A = w·a, B = w·b (what an engine can do inside its graph for a whole population).
 */
export interface StackedTarget {
  path: string;
  rank: number;
  dIn: number;
  dOut: number;
  scaling: number;
  a: Float32Array;
  b: Float32Array;
}

/** N modules, validated and harmonised once, ready to compose with any weights. */
export interface ModuleStack {
  names: string[];
  harmonize: Harmonize;
  targets: StackedTarget[];
  /** The first module's config and metadata: a composed module's come from them (as in the reference). */
  first: Pick<LoraModule, 'config' | 'metadata'>;
}

/** Validates and harmonises `modules` into a ModuleStack (pure; inputs untouched). */
export function stackModules(modules: LoraModule[], harmonize: Harmonize = 'none'): ModuleStack {
  const plan = planComposition(modules, harmonize);
  const n = modules.length;
  const targets = plan.map((p): StackedTarget => {
    const ka = p.rank * p.dIn;
    const kb = p.dOut * p.rank;
    const a = new Float32Array(n * ka);
    const b = new Float32Array(n * kb);
    modules.forEach((m, i) => {
      const t = m.targets.get(p.path) as LoraTarget;
      // A [r, dIn]: rows are rank components; B [dOut, r]: columns are. Harmonise by resizing.
      a.set(t.r === p.rank ? t.a : resizeCols(t.a, 1, t.r * t.dIn, ka), i * ka);
      const fold = harmonize === 'none' ? 1 : harmonizedScaling(m, t, p.rank, harmonize) / p.scaling;
      b.set(t.r === p.rank && fold === 1 ? t.b : resizeCols(t.b, t.dOut, t.r, p.rank, fold), i * kb);
    });
    return { ...p, a, b };
  });
  return { names: modules.map((m) => m.name), harmonize, targets, first: { config: modules[0].config, metadata: modules[0].metadata } };
}

/**
 * The composed targets for `weights`: acc = w₀T₀; acc = acc + wᵢTᵢ in float32, the reference's
 * order and rounding (bit-identical to torch).
 */
/** Throws unless `weights` holds one finite weight per module of `stack` (composeStack's, and engines' own composition's, precondition). */
export function checkWeights(stack: ModuleStack, weights: readonly number[]): void {
  if (weights.length !== stack.names.length) {
    throw new LorahubError('INTERNAL', `compose: ${weights.length} weights for ${stack.names.length} modules`);
  }
  weights.forEach((w, i) => {
    if (!Number.isFinite(w)) throw new LorahubError('NUMERIC', `compose: weight ${i} (module "${stack.names[i]}") is ${w}`);
  });
}

export function composeStack(stack: ModuleStack, weights: readonly number[]): Map<string, LoraTarget> {
  checkWeights(stack, weights);
  // The reference multiplies float32 tensors by Python floats: torch casts the scalar to float32.
  const w32 = weights.map((w) => Math.fround(w));
  const targets = new Map<string, LoraTarget>();
  for (const t of stack.targets) {
    const ka = t.rank * t.dIn;
    const kb = t.dOut * t.rank;
    const a = new Float32Array(ka);
    const b = new Float32Array(kb);
    w32.forEach((w, i) => {
      accumulate(a, t.a.subarray(i * ka, (i + 1) * ka), w, 1, ka, ka, i === 0);
      accumulate(b, t.b.subarray(i * kb, (i + 1) * kb), w, 1, kb, kb, i === 0);
    });
    targets.set(t.path, { path: t.path, r: t.rank, dIn: t.dIn, dOut: t.dOut, a, b, scaling: t.scaling });
  }
  return targets;
}

/**
 * Composes `modules` with `weights` (LoRAHub rule). Returns a new module; inputs are untouched.
 */
export function compose(modules: LoraModule[], weights: number[], opts: ComposeOptions = {}): LoraModule {
  return composeStackModule(stackModules(modules, opts.harmonize ?? 'none'), weights, opts.name);
}

/**
 * The composed module for `weights` from a stack: targets as `composeStack`, config and metadata
 * from the stack's first module (what `compose` returns, without the N modules' arrays in hand).
 */
export function composeStackModule(stack: ModuleStack, weights: number[], name = 'composed'): LoraModule {
  const targets = composeStack(stack, weights);
  const { harmonize, targets: plan, first } = stack;
  let config = first.config;
  if (harmonize !== 'none' && plan.length > 0) {
    // Express the harmonised ranks and scalings in PEFT's terms: r / lora_alpha from the first
    // target, rank_pattern / alpha_pattern (keyed by full module path) where a target differs.
    const alphaOf = (p: StackedTarget) => p.scaling * (first.config.use_rslora ? Math.sqrt(p.rank) : p.rank);
    const r0 = plan[0].rank;
    const a0 = alphaOf(plan[0]);
    config = {
      ...first.config,
      r: r0,
      lora_alpha: a0,
      rank_pattern: Object.fromEntries(plan.filter((p) => p.rank !== r0).map((p) => [p.path, p.rank])),
      alpha_pattern: Object.fromEntries(plan.filter((p) => alphaOf(p) !== a0).map((p) => [p.path, alphaOf(p)])),
    };
  }
  return {
    name,
    config,
    targets,
    metadata: {
      ...first.metadata,
      lorahub_composition: JSON.stringify({ rule: 'lorahub: A=sum(w_i A_i), B=sum(w_i B_i)', modules: stack.names, weights, harmonize }),
    },
  };
}
