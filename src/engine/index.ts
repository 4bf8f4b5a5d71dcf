/**
 * Picks the engine: `--engine` / LORAHUB_ENGINE, else onnxruntime-node when it loads, else tfjs.
 * The device (`--device` / LORAHUB_DEVICE) is cpu unless asked; cuda needs the ort engine and
 * onnxruntime's CUDA provider binaries (see README "GPU").
 */
import { availableParallelism } from 'node:os';
import { LorahubError, opt } from '../errors.ts';
import { DEVICE_NAMES, ENGINE_NAMES, type DeviceName, type Engine, type EngineModel, type EngineName, type EngineOptions } from './types.ts';

export * from './types.ts';

function pick<T extends string>(option: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined || v === '') return undefined;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new LorahubError('BAD_ARGUMENT', `${opt(option)} must be one of ${allowed.join(', ')}, got "${v}"`);
}

/**
 * Normalised options: engine (undefined = auto), device, threads. An explicit tfjs backend picks
 * the tfjs engine when no engine is named (the user asked for a tfjs backend), and contradicts the
 * ort engine; LORAHUB_BACKEND alone picks nothing (it may be set for the trainers).
 */
export function resolveEngineOptions(opts: EngineOptions = {}): { engine?: EngineName; device: DeviceName; threads: number; backend?: string } {
  const named = pick('engine', opts.engine ?? process.env.LORAHUB_ENGINE, ENGINE_NAMES);
  const backend = opts.backend === '' ? undefined : opts.backend;
  if (backend !== undefined && named === 'ort') throw new LorahubError('BAD_ARGUMENT', `${opt('backend')} applies to the tfjs engine only; add ${opt('engine')} tfjs`);
  const engine = named ?? (backend !== undefined ? 'tfjs' : undefined);
  const device = pick('device', opts.device ?? process.env.LORAHUB_DEVICE, DEVICE_NAMES) ?? 'cpu';
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new LorahubError('BAD_ARGUMENT', `${opt('threads')} must be a positive integer, got ${threads}`);
  if (engine === 'tfjs' && device === 'cuda') {
    throw new LorahubError('BAD_ARGUMENT', `${opt('device')} cuda needs the ort engine (onnxruntime CUDA provider); the tfjs engine runs on its own backend (${opt('backend')})`);
  }
  return { engine, device, threads, backend };
}

const cache = new Map<string, Promise<Engine>>();

/** The engine for these options (one per process and option set). */
export function openEngine(opts: EngineOptions = {}): Promise<Engine> {
  const r = resolveEngineOptions(opts);
  const key = JSON.stringify(r);
  let e = cache.get(key);
  if (!e) {
    e = create(r);
    cache.set(key, e);
    e.catch(() => cache.delete(key));
  }
  return e;
}

async function create(r: ReturnType<typeof resolveEngineOptions>): Promise<Engine> {
  if (r.engine === 'tfjs') return (await import('./tfjs/index.ts')).createTfjsEngine(r);
  if (r.engine === 'ort' || r.device === 'cuda') return (await import('./ort/index.ts')).createOrtEngine(r);
  // Auto: ort where it loads; tfjs (wasm) where it does not, saying why.
  try {
    return await (await import('./ort/index.ts')).createOrtEngine(r);
  } catch (err) {
    const tfjs = await (await import('./tfjs/index.ts')).createTfjsEngine(r);
    tfjs.info.fallback = `onnxruntime-node did not load (${(err as Error).message.split('\n')[0]})`;
    return tfjs;
  }
}

/** Loads an HF model folder on the chosen engine. */
export async function loadModel(dir: string, opts: EngineOptions = {}): Promise<EngineModel> {
  return (await openEngine(opts)).load(dir);
}
