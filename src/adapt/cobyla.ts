/**
 * COBYLA (Powell, "A direct search optimization method that models the objective and
 * constraint functions by linear interpolation", 1994) from NLopt, through nlopt-js.
 *
 * nlopt-js (an emscripten build of NLopt) drives the search itself and calls a synchronous
 * objective one point at a time; our scorer is asynchronous and batch-oriented. This module
 * inverts control by *replay*: NLopt's COBYLA is deterministic, so to get the (k+1)-th point
 * we run it afresh with maxeval = k + 1, answer the first k calls from the recorded history
 * (checking that it asks for exactly the recorded points) and capture the point of the last
 * call. Over a run that costs O(budget²) cheap callbacks (about 1 ms per point at budget 40)
 * and never throws or awaits inside NLopt.
 *
 * Findings about nlopt-js 0.1.1 on Node 20 that shape this code:
 * - It works, but only after its `ready` promise resolves (hence the async `loadNlopt`).
 * - Loading it registers process-wide 'uncaughtException' and 'unhandledRejection' handlers
 *   (emscripten's Node glue); the latter turns any unhandled rejection anywhere into an abort
 *   of the WebAssembly runtime. We remove the handlers it added right after loading.
 * - It was built without C++ exception catching: an NLopt exception (e.g. invalid arguments)
 *   aborts the module for the rest of the process. Callers validate arguments first.
 * - Non-finite objective values make COBYLA loop forever when a coordinate is unbounded, and
 *   values near 1e300 abort it even with bounds. So we require finite bounds, replace
 *   NaN/+Infinity by a finite penalty and clamp values to ±1e15 (`cobylaValue`).
 * - Its wrapper views WebAssembly memory through the `HEAPF64` it copied when it loaded, and its
 *   wrappers never free the vectors they build for bounds, x0 and results (nor the callback
 *   object): about 2 KB per call at 20 dimensions. Once the heap grows (after ~9,000 calls at 20
 *   dimensions — some 30 compose runs in one process — or at once beyond ~400 dimensions) that
 *   view is detached and the next callback throws "Cannot perform Construct on a detached
 *   ArrayBuffer". So we keep the module's WebAssembly.Memory (captured while it is created) and
 *   give the wrapper a `HEAPF64` that always views the current buffer. The leak stays (it lives in
 *   nlopt-js); it is bounded by the memory's 2 GB maximum and costs ~0.6 MB per 300-evaluation run.
 * - `setMinObjective(f, tol)` sets xtol_rel. The initial step cannot be set (no
 *   `set_initial_step` binding), so NLopt's default applies: for a bounded coordinate a
 *   quarter of the box width, less near a bound (0.75 for x0 = 0 in [−1.5, 1.5]).
 */
import { createRequire } from 'node:module';
import { LorahubError } from '../errors.ts';

interface NloptOptimize {
  setMinObjective(f: (x: Float64Array, grad: Float64Array | null) => number, xtolRel: number): void;
  setLowerBounds(lb: number[]): void;
  setUpperBounds(ub: number[]): void;
  setMaxeval(n: number): void;
  optimize(x0: number[]): { success: boolean };
}

interface NloptModule {
  ready: Promise<unknown>;
  Optimize: new (algorithm: unknown, n: number) => NloptOptimize;
  Algorithm: Record<string, unknown>;
  GC: { flush(): number };
}

function isNloptModule(m: unknown): m is NloptModule {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  const gc = r.GC as Record<string, unknown> | undefined;
  return r.ready instanceof Promise && typeof gc?.flush === 'function';
}

/** The parts of WebAssembly.Memory used here (Node's types do not declare the class). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmMemoryClass {
  new (descriptor: unknown): WasmMemory;
  prototype: unknown;
}

let nlopt: NloptModule | null = null;
let nloptLoading: Promise<NloptModule> | null = null;

/** Loads and initialises nlopt-js once per process. */
export async function loadNlopt(): Promise<void> {
  if (nlopt) return;
  nloptLoading ??= (async () => {
    const uncaught = new Set(process.listeners('uncaughtException'));
    const unhandled = new Set(process.listeners('unhandledRejection'));
    let mod: unknown;
    // The module creates its memory synchronously while it is required (see the findings above).
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: WasmMemoryClass } }).WebAssembly;
    const memories: WasmMemory[] = [];
    const OriginalMemory = wasm.Memory;
    const capture = function Memory(descriptor: unknown) {
      const memory = new OriginalMemory(descriptor);
      memories.push(memory);
      return memory;
    } as unknown as WasmMemoryClass;
    capture.prototype = OriginalMemory.prototype;
    try {
      wasm.Memory = capture;
      mod = createRequire(import.meta.url)('nlopt-js');
    } catch (err) {
      throw new LorahubError('UNSUPPORTED', 'COBYLA needs the nlopt-js package, which could not be loaded', { cause: err });
    } finally {
      wasm.Memory = OriginalMemory;
      for (const l of process.listeners('uncaughtException')) if (!uncaught.has(l)) process.removeListener('uncaughtException', l);
      for (const l of process.listeners('unhandledRejection')) if (!unhandled.has(l)) process.removeListener('unhandledRejection', l);
    }
    if (!isNloptModule(mod)) throw new LorahubError('UNSUPPORTED', 'nlopt-js: unexpected module shape');
    await mod.ready;
    if (memories.length !== 1) throw new LorahubError('UNSUPPORTED', `nlopt-js: expected one WebAssembly memory, saw ${memories.length}`);
    const memory = memories[0];
    // Replaces the view it copied at load: the wrapper reads `.buffer` of this on every callback.
    Object.defineProperty(mod, 'HEAPF64', { configurable: true, get: () => new Float64Array(memory.buffer) });
    if (typeof mod.Optimize !== 'function' || mod.Algorithm.LN_COBYLA === undefined) {
      throw new LorahubError('UNSUPPORTED', 'nlopt-js: LN_COBYLA is not available');
    }
    nlopt = mod;
    return mod;
  })();
  await nloptLoading;
}

export function nloptLoaded(): boolean {
  return nlopt !== null;
}

/** xtol_rel handed to NLopt: tight, so that the budget, not convergence, normally ends a run. */
const XTOL_REL = 1e-10;
/** Largest |f| passed to NLopt (see the findings above). */
export const COBYLA_MAX_ABS_F = 1e15;

export interface CobylaProblem {
  x0: readonly number[];
  /** Finite bounds, required (see the findings above). */
  lower: readonly number[];
  upper: readonly number[];
}

export interface CobylaEvaluation {
  x: number[];
  /** The value NLopt sees: already passed through `cobylaValue`. */
  f: number;
}

/**
 * The value to hand NLopt for objective value `f`, given the history so far: finite values
 * are clamped to ±1e15; NaN and +Infinity become a penalty worse than anything seen
 * (worst + spread + 1), so the failed point ranks last without breaking COBYLA's models.
 */
export function cobylaValue(f: number, history: readonly CobylaEvaluation[]): number {
  if (Number.isFinite(f)) return Math.max(-COBYLA_MAX_ABS_F, Math.min(COBYLA_MAX_ABS_F, f));
  if (f === -Infinity) return -COBYLA_MAX_ABS_F;
  if (history.length === 0) return 1;
  const seen = history.map((h) => h.f);
  const hi = Math.max(...seen);
  return Math.min(COBYLA_MAX_ABS_F, hi + (hi - Math.min(...seen)) + 1);
}

/**
 * The next point COBYLA evaluates after `history`, or null when it stops on its own first
 * (xtol reached). `history` must be the points this function returned, in order, with their
 * `cobylaValue`s; anything else is detected and rejected.
 */
export function cobylaNextPoint(problem: CobylaProblem, history: readonly CobylaEvaluation[]): number[] | null {
  if (!nlopt) throw new LorahubError('INTERNAL', 'COBYLA: nlopt-js is not loaded yet; await loadNlopt() first');
  const n = problem.x0.length;
  let calls = 0;
  let next: number[] | null = null;
  let divergedAt = -1;
  const opt = new nlopt.Optimize(nlopt.Algorithm.LN_COBYLA, n);
  try {
    // Never throw in here: an exception unwinding through the WebAssembly frames would leave
    // NLopt's stack in an unknown state. Problems are recorded and raised afterwards.
    opt.setMinObjective((x) => {
      const k = calls++;
      if (k < history.length) {
        const h = history[k];
        if (divergedAt < 0 && !h.x.every((v, i) => v === x[i])) divergedAt = k;
        return h.f;
      }
      next ??= Array.from(x); // x is a view into WebAssembly memory: copy it
      return 0; // never used: this is the last evaluation NLopt is allowed
    }, XTOL_REL);
    opt.setLowerBounds([...problem.lower]);
    opt.setUpperBounds([...problem.upper]);
    opt.setMaxeval(history.length + 1);
    const result = opt.optimize([...problem.x0]);
    if (!result.success) throw new LorahubError('NUMERIC', 'COBYLA (nlopt-js) reported a failure');
  } finally {
    nlopt.GC.flush(); // frees the Optimize object and its wrapped callback
  }
  if (divergedAt >= 0) {
    throw new LorahubError('NUMERIC', `COBYLA replay: evaluation ${divergedAt} is not the point NLopt asks for (history altered?)`);
  }
  return next;
}
