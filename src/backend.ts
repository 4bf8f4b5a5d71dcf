/**
 * Picks the tfjs backend: tfjs-node-gpu > tfjs-node > wasm > cpu.
 *
 * The native packages are optional peer dependencies: their install downloads libtensorflow,
 * which fails on machines without internet, so they are only used when present and loadable.
 * `--backend NAME` or `LORAHUB_BACKEND` forces one.
 */
import * as tf from '@tensorflow/tfjs';
import { LorahubError } from './errors.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** User-facing names accepted by --backend / LORAHUB_BACKEND. */
const ALIASES: Record<string, BackendName> = {
  'node-gpu': 'tensorflow',
  'tfjs-node-gpu': 'tensorflow',
  node: 'tensorflow',
  'tfjs-node': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

export interface BackendInfo {
  /** tfjs backend name actually in use. */
  name: BackendName;
  /** The package that provides it, e.g. "@tensorflow/tfjs-node-gpu". */
  provider: string;
  /** Threads the backend uses where known (wasm). */
  threads?: number;
}

let active: BackendInfo | undefined;

async function tryNative(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return tf.findBackend('tensorflow') !== undefined;
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    return tf.findBackendFactory('wasm') !== undefined;
  } catch {
    return false;
  }
}

async function activate(name: BackendName, provider: string): Promise<BackendInfo> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new LorahubError('BACKEND', `backend "${name}" (${provider}) failed to initialise`);
  await tf.ready();
  active = { name, provider };
  return active;
}

/**
 * Initialises the backend once per process (idempotent). `requested` (or LORAHUB_BACKEND)
 * forces a backend and fails clearly when it is unavailable.
 */
export async function initBackend(requested?: string): Promise<BackendInfo> {
  const want = requested ?? process.env.LORAHUB_BACKEND;
  if (active && (!want || ALIASES[want] === active.name)) return active;
  if (want) {
    const name = ALIASES[want];
    if (!name) {
      throw new LorahubError(
        'BAD_ARGUMENT',
        `unknown backend "${want}" (expected one of: ${Object.keys(ALIASES).join(', ')})`,
      );
    }
    if (name === 'tensorflow') {
      for (const pkg of want.includes('gpu') ? ['@tensorflow/tfjs-node-gpu'] : ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
        if (await tryNative(pkg)) return activate('tensorflow', pkg);
      }
      throw new LorahubError('BACKEND', `backend "${want}" requested but @tensorflow/tfjs-node(-gpu) is not installed or not loadable`);
    }
    if (name === 'wasm') {
      if (await tryWasm()) return activate('wasm', '@tensorflow/tfjs-backend-wasm');
      throw new LorahubError('BACKEND', 'backend "wasm" requested but @tensorflow/tfjs-backend-wasm could not be loaded');
    }
    return activate('cpu', '@tensorflow/tfjs');
  }
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (await tryNative(pkg)) return activate('tensorflow', pkg);
  }
  if (await tryWasm()) return activate('wasm', '@tensorflow/tfjs-backend-wasm');
  return activate('cpu', '@tensorflow/tfjs');
}

/** The backend in use; throws if initBackend() has not run. */
export function backendInfo(): BackendInfo {
  if (!active) throw new LorahubError('BACKEND', 'backend not initialised (call initBackend first)');
  return active;
}

/** Every backend that can be initialised here, in preference order (for benchmarks). */
export async function availableBackends(): Promise<string[]> {
  const out: string[] = [];
  if (await tryNative('@tensorflow/tfjs-node-gpu')) out.push('node-gpu');
  else if (await tryNative('@tensorflow/tfjs-node')) out.push('node');
  if (await tryWasm()) out.push('wasm');
  out.push('cpu');
  return out;
}
