import type { Command } from 'commander';
import type { BackendInfo } from '../../backend.ts';
import { openEngine } from '../../engine/index.ts';
import type { Engine, EngineInfo, EngineOptions } from '../../engine/types.ts';
import type { LengthLimit } from '../../eval/score.ts';
import type { LoraModule } from '../../lora/module.ts';
import type { TrainEngine } from '../../train/engine.ts';
import { intArg, lengthLimitFor, loadAdapterArg, loadModel, maybeLibrary, resolveModelDir, type LoadedModel } from './common.ts';

export interface GlobalOptions {
  verbose?: boolean;
  backend?: string;
  engine?: string;
  device?: string;
  threads?: string;
}

/** The global options of the root program, from any sub-command. */
export function globalOptions(cmd: Command): GlobalOptions {
  let root = cmd;
  while (root.parent) root = root.parent;
  return root.opts<GlobalOptions>();
}

/** The engine the global flags ask for (unset fields: the environment, then the defaults). */
export function engineOptions(cmd: Command): EngineOptions {
  const g = globalOptions(cmd);
  return { engine: g.engine, device: g.device, threads: g.threads === undefined ? undefined : intArg('--threads', 'positive')(g.threads), backend: g.backend };
}

/** The --verbose line for an engine: what runs, and why the default fell back when it did. */
export function describeEngine(info: EngineInfo): string {
  const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  return `lorahub: engine ${info.engine} on ${info.device} (${info.provider}, ${threads})${info.fallback ? `; ${info.fallback}` : ''}`;
}

/** Opens the forward engine a command asked for, printing it to stderr with --verbose. */
export async function setupEngine(cmd: Command): Promise<Engine> {
  const engine = await openEngine(engineOptions(cmd));
  if (globalOptions(cmd).verbose) process.stderr.write(`${describeEngine(engine.info)}\n`);
  return engine;
}

/** Initialises the tfjs backend for the trainers (training is tfjs by design), printing it with --verbose. */
export async function setupBackend(cmd: Command): Promise<BackendInfo> {
  const g = globalOptions(cmd);
  // Loaded here, not at the top: the forward commands go through the engine seam and need no tfjs.
  const { initBackend } = await import('../../backend.ts');
  const info = await initBackend(g.backend);
  if (g.verbose) process.stderr.write(`lorahub: backend ${info.name} (${info.provider})\n`);
  return info;
}

/** The engine that computes the trainers' gradients (train/engine.ts), printed with --verbose. */
export async function setupTrainEngine(cmd: Command, needs: { dylora?: boolean } = {}): Promise<TrainEngine> {
  const { resolveTrainEngine } = await import('../../train/engine.ts');
  const engine = await resolveTrainEngine(engineOptions(cmd), needs);
  if (globalOptions(cmd).verbose) {
    const how = engine.name === 'ort' ? `onnxruntime-node, ${engine.threads} thread${engine.threads === 1 ? '' : 's'}` : 'tfjs tape';
    process.stderr.write(`lorahub: gradients on ${engine.name} (${how})${engine.fallback ? `; ${engine.fallback}` : ''}\n`);
  }
  return engine;
}

/** The options `score`, `generate` and `eval` share for the model they run. */
export interface ModelRunOptions {
  model?: string;
  adapter?: string;
  library?: string;
  maxLength?: number;
}

/**
 * Runs `fn` on the model these options name — on the engine the global options pick, with its
 * lazily read tokenizer, the adapter (folder or library name, checked against the model) and the
 * input length limit — and disposes the model afterwards, errors included.
 */
export async function withModel<T>(
  cmd: Command,
  opts: ModelRunOptions,
  fn: (run: LoadedModel & { adapter?: LoraModule; limit: LengthLimit }) => Promise<T>,
): Promise<T> {
  const engine = await setupEngine(cmd);
  const lib = await maybeLibrary(opts.library);
  const dir = resolveModelDir(opts.model, lib);
  const limit = lengthLimitFor(opts.maxLength, dir);
  const m = await loadModel(engine, dir);
  try {
    const adapter = opts.adapter ? await loadAdapterArg(opts.adapter, lib, m.dir) : undefined;
    return await fn({ ...m, adapter, limit });
  } finally {
    await m.model.dispose();
  }
}
