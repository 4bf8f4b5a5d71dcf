/**
 * The onnxruntime-node engine: graphs built in TypeScript from the model's family (T5:
 * t5-graph.ts; Llama, Mistral, Qwen2, GPT-2: causal-graph.ts) whose weights are
 * external-data initializers pointing straight into the checkpoint's model.safetensors, so a
 * checkpoint of any size loads without a copy through the protobuf (whose 2 GB limit never
 * applies) and onnxruntime maps the file itself.
 *
 * Sessions are cached per (graph kind, LoRA target set): every dimension (groups, batch,
 * lengths, ranks) is symbolic, so one session serves every population and batch shape.
 */
import { linkSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { LorahubError, opt } from '../../errors.ts';
import { populationTargets } from '../../lora/fit.ts';
import type { LoraModule, LoraTarget } from '../../lora/module.ts';
import type { T5Config } from '../../models/t5/config.ts';
import { shiftedLabels, type CausalBatch, type ModelConfig } from '../../models/shared/family.ts';
import { checkModuleFitsModel } from '../../lora/fit.ts';
import { causalGeometry, causalTable, checkAdapters, checkRows, exampleSums, generationPrompts, greedyDecode, seamRows, type DecodeStep } from '../../models/causal/rows.ts';
import { loadArch, type AnyArch, type CausalArch } from '../../models/index.ts';
import { checkLabels, checkTokenIds, IGNORE_INDEX } from '../../models/shared/batch.ts';
import { shiftRight } from '../../models/t5/labels.ts';
import { bucketTable } from '../../models/t5/position.ts';
import { weightsFile } from '../../models/t5/checkpoint.ts';
import { SafetensorsFile } from '../../io/safetensors.ts';
import { checkWeights, type ModuleStack } from '../../lora/compose.ts';
import { isStacked, nonFiniteError, type DeviceName, type Engine, type EngineInfo, type EngineModel, type GenerateInput, type GenerateOptions, type Population, type ScoreBatch, type TokenLosses } from '../types.ts';
import { buildCausalGraph, type CausalGraphKind } from './causal-graph.ts';
import { ortMatmulGflops } from './matmul.ts';
import type { ElemType } from './onnx.ts';
import { loraInputNames, stackInputNames, STACK_WEIGHTS, WEIGHTS_LOCATION, type LoraTargetShape, type WeightSource } from './builder.ts';
import { buildT5Graph, MASKED as T5_MASKED, type GraphKind } from './t5-graph.ts';

type Ort = typeof OrtTypes;

const require = createRequire(import.meta.url);

let ortModule: Ort | undefined;

/** Loads onnxruntime-node (its native binding); throws BACKEND when it does not load here. */
export function loadOrt(): Ort {
  if (ortModule) return ortModule;
  try {
    ortModule = require('onnxruntime-node') as Ort;
  } catch (err) {
    throw new LorahubError('BACKEND', `onnxruntime-node does not load here (${(err as Error).message.split('\n')[0]}); use ${opt('engine')} tfjs`, { cause: err });
  }
  return ortModule;
}

function ortVersion(): string {
  try {
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

const DTYPE_ELEM: Record<string, ElemType | undefined> = { F32: 'float', F16: 'float16', BF16: 'bfloat16' };

/** Checkpoints above this size keep one family of sessions (scoring or generation) resident. */
const LARGE_CHECKPOINT_BYTES = 1 << 30;

export interface OrtEngineOptions {
  device: DeviceName;
  threads: number;
}

export async function createOrtEngine(r: OrtEngineOptions): Promise<Engine> {
  const ort = loadOrt();
  const info: EngineInfo = {
    engine: 'ort',
    device: r.device,
    provider: `onnxruntime-node ${ortVersion()} (${r.device === 'cuda' ? 'CUDAExecutionProvider' : 'CPUExecutionProvider'})`,
    threads: r.threads,
  };
  if (r.device === 'cuda') checkCuda();
  return {
    info,
    load: async (dir: string) => OrtModel.load(ort, dir, info),
    matmulGflops: (m, k, n, reps) => ortMatmulGflops(ort, m, k, n, reps, info.threads, info.device),
  };
}

/**
 * The CUDA provider is a separate download that onnxruntime-node's install fetches on Linux x64
 * only when allowed (this project's .npmrc skips it so an offline install never fails): without
 * its library in the package's bin folder, --device cuda is refused here, before any graph.
 */
function checkCuda(): void {
  const has = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) => (e.isDirectory() ? has(join(dir, e.name)) : e.name.startsWith('libonnxruntime_providers_cuda')));
  let found: boolean;
  try {
    found = has(join(require.resolve('onnxruntime-node/package.json'), '..', 'bin'));
  } catch {
    found = false;
  }
  if (!found) {
    throw new LorahubError(
      'BACKEND',
      `${opt('device')} cuda: onnxruntime-node's CUDA provider is not installed (this project's .npmrc skips its download); fetch it with \`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js\` (needs network, CUDA 12 and cuDNN 9), or use ${opt('device')} cpu`,
    );
  }
}

interface Session {
  run(feeds: Record<string, OrtTypes.Tensor>): Promise<Record<string, OrtTypes.Tensor>>;
  release(): Promise<void>;
}

function i64(ort: Ort, rows: number[][]): OrtTypes.Tensor {
  const n = rows.length;
  const m = rows[0]?.length ?? 0;
  const data = new BigInt64Array(n * m);
  rows.forEach((r, i) => r.forEach((v, j) => (data[i * m + j] = BigInt(v))));
  return new ort.Tensor('int64', data, [n, m]);
}

function i64Flat(ort: Ort, values: Int32Array, dims: number[]): OrtTypes.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

function f32(ort: Ort, rows: number[][]): OrtTypes.Tensor {
  const n = rows.length;
  const m = rows[0]?.length ?? 0;
  const data = new Float32Array(n * m);
  rows.forEach((r, i) => data.set(r, i * m));
  return new ort.Tensor('float32', data, [n, m]);
}

function checkRect(ids: number[][], what: string): [number, number] {
  const b = ids.length;
  const s = ids[0]?.length ?? 0;
  if (b === 0 || s === 0 || ids.some((r) => r.length !== s)) throw new LorahubError('INTERNAL', `${what} must be a non-empty rectangular [B][S] array`);
  return [b, s];
}

/**
 * The feeds of a T5 teacher-forced batch, shared by the score and logits graphs and the training
 * graph (t5-train-graph.ts): ids, mask, decoder inputs (HF `_shift_right`), position buckets,
 * causal mask, labels (−100 as 0) and their mask.
 */
export function t5ScoreFeeds(ort: Ort, cfg: T5Config, batch: ScoreBatch): { feeds: Record<string, OrtTypes.Tensor>; B: number; T: number } {
  const [B, S] = checkRect(batch.inputIds, 'input_ids');
  checkTokenIds(batch.inputIds, cfg.vocabSize, 'input_ids');
  const [bl, T] = checkRect(batch.labels, 'labels');
  if (bl !== B) throw new LorahubError('INTERNAL', 'labels and input_ids differ in batch size');
  checkLabels(batch.labels, cfg.vocabSize);
  const dec = shiftRight(batch.labels, cfg.decoderStartTokenId, cfg.padTokenId);
  const nb = cfg.relativeAttentionNumBuckets;
  const md = cfg.relativeAttentionMaxDistance;
  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = T5_MASKED;
  const feeds: Record<string, OrtTypes.Tensor> = {
    input_ids: i64(ort, batch.inputIds),
    attention_mask: f32(ort, batch.attentionMask),
    decoder_input_ids: i64(ort, dec),
    enc_buckets: i64Flat(ort, bucketTable(S, S, true, nb, md), [S, S]),
    dec_buckets: i64Flat(ort, bucketTable(T, T, false, nb, md), [T, T]),
    dec_causal: new ort.Tensor('float32', causal, [T, T]),
    label_ids: i64(ort, batch.labels.map((r) => r.map((l) => (l === IGNORE_INDEX ? 0 : l)))),
    label_mask: f32(ort, batch.labels.map((r) => r.map((l) => (l === IGNORE_INDEX ? 0 : 1)))),
  };
  return { feeds, B, T };
}

export class OrtModel implements EngineModel {
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly stacks = new WeakMap<ModuleStack, { targets: LoraTargetShape[]; feeds: Record<string, OrtTypes.Tensor> }>();
  private released = false;

  private constructor(
    private readonly ort: Ort,
    readonly dir: string,
    /** The model's family and typed config (models/index.ts). */
    readonly arch: AnyArch,
    readonly info: EngineInfo,
    private readonly file: string,
    private readonly fileBytes: number,
    private readonly weights: Map<string, WeightSource>,
  ) {}

  get config(): ModelConfig {
    return this.arch.config;
  }

  /** The T5 config (the seq2seq paths below run only for T5). */
  private t5Config(): T5Config {
    if (this.arch.family !== 't5') throw new LorahubError('INTERNAL', `${this.dir}: a T5 code path ran for a ${this.arch.modelType} model`);
    return this.arch.config;
  }

  static load(ort: Ort, dir: string, info: EngineInfo): OrtModel {
    const arch = loadArch(dir);
    const file = weightsFile(dir);
    const st = SafetensorsFile.open(file);
    try {
      const weights = new Map<string, WeightSource>();
      for (const { entry, name } of arch.resolveCheckpoint(st)) {
        const ti = st.info(name);
        const elem = DTYPE_ELEM[ti.dtype];
        if (!elem) throw new LorahubError('UNSUPPORTED', `${file}: tensor "${name}" is ${ti.dtype}; the ort engine reads F32, F16 and BF16 checkpoints (or use ${opt('engine')} tfjs)`);
        weights.set(entry.ours, { name, elem, shape: entry.hfShape, offset: st.dataStart + ti.begin, length: ti.end - ti.begin });
      }
      return new OrtModel(ort, dir, arch, info, file, statSync(file).size, weights);
    } finally {
      st.close();
    }
  }

  private sessionOptions(): OrtTypes.InferenceSession.SessionOptions {
    return {
      executionProviders: this.info.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
      intraOpNumThreads: this.info.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    };
  }

  /**
   * Creates a session over `bytes` whose external data resolves to the checkpoint. onnxruntime
   * only accepts external data inside the model's folder (no absolute paths, no symlinks out),
   * so the .onnx file goes into a temporary folder beside a hard link to the checkpoint, and the
   * folder is removed once the session holds the weights. Where no hard link can be made (another
   * filesystem), the checkpoint is handed over in memory instead (one read of the file).
   */
  private async createSession(bytes: Uint8Array): Promise<Session> {
    const ort = this.ort;
    const tmp = mkdtempSync(join(tmpdir(), 'lorahub-ort-'));
    try {
      let linked = true;
      try {
        linkSync(realpathSync(this.file), join(tmp, WEIGHTS_LOCATION));
      } catch {
        linked = false;
      }
      if (linked) {
        const path = join(tmp, 'model.onnx');
        writeFileSync(path, bytes);
        return (await ort.InferenceSession.create(path, this.sessionOptions())) as unknown as Session;
      }
      const opts = { ...this.sessionOptions(), externalData: [{ path: WEIGHTS_LOCATION, data: readFileSync(this.file) }] };
      return (await ort.InferenceSession.create(bytes, opts as OrtTypes.InferenceSession.SessionOptions)) as unknown as Session;
    } catch (err) {
      throw this.backendError(err, 'loading');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private backendError(err: unknown, what: string): LorahubError {
    if (err instanceof LorahubError) return err;
    const msg = (err as Error).message?.split('\n')[0] ?? String(err);
    const oom = /bad_alloc|out of memory|Failed to allocate|allocate memory/i.test(msg);
    return new LorahubError(
      'BACKEND',
      `${this.dir}: ${what} failed on the ort engine (${this.info.device}): ${msg}${oom ? ` — out of memory: try fewer ${opt('workers')}, a smaller batch, or ${opt('engine')} tfjs` : ''}`,
      { cause: err },
    );
  }

  /** The session for (kind, targets), built once. */
  private async session(kind: GraphKind | CausalGraphKind, lora: readonly LoraTargetShape[], stacked = false): Promise<Session> {
    if (this.released) throw new LorahubError('BACKEND', `${this.dir}: model was disposed`);
    const key = `${kind}|${stacked ? 'stacked|' : ''}${lora.map((t) => t.path).join(',')}`;
    let s = this.sessions.get(key);
    if (!s) {
      const generating = (k: string) => k === 'encoder' || k === 'step' || k === 'decode';
      if (this.fileBytes > LARGE_CHECKPOINT_BYTES) await this.releaseWhere((k) => generating(k.split('|')[0]) !== generating(kind));
      const targets = lora.map((t) => ({ path: t.path, dIn: t.dIn, dOut: t.dOut }));
      const bytes =
        this.arch.family === 't5'
          ? buildT5Graph({ kind: kind as GraphKind, cfg: this.arch.config, weights: this.weights, lora: targets, stacked })
          : buildCausalGraph({ kind: kind as CausalGraphKind, arch: this.arch, weights: this.weights, lora: targets, stacked });
      s = this.createSession(bytes);
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  private async releaseWhere(pred: (key: string) => boolean): Promise<void> {
    for (const [k, s] of [...this.sessions]) {
      if (!pred(k)) continue;
      this.sessions.delete(k);
      await (await s.catch(() => undefined))?.release();
    }
  }

  /** LoRA feeds: A [G, r, dIn] and scaling·B [G, dOut, r] per target, from one module per group. */
  private loraFeeds(modules: readonly LoraModule[]): { targets: LoraTarget[]; feeds: Record<string, OrtTypes.Tensor> } {
    const feeds: Record<string, OrtTypes.Tensor> = {};
    if (modules.length === 0) return { targets: [], feeds };
    const G = modules.length;
    const targets: LoraTarget[] = [];
    for (const { path: p, targets: ts } of populationTargets(modules)) {
      const { r, dIn, dOut } = ts[0];
      const a = new Float32Array(G * r * dIn);
      const b = new Float32Array(G * dOut * r);
      ts.forEach((t, gi) => {
        a.set(t.a, gi * r * dIn);
        const off = gi * dOut * r;
        for (let i = 0; i < dOut * r; i++) b[off + i] = Math.fround(t.b[i] * t.scaling);
      });
      const names = loraInputNames(p);
      feeds[names.a] = new this.ort.Tensor('float32', a, [G, r, dIn]);
      feeds[names.b] = new this.ort.Tensor('float32', b, [G, dOut, r]);
      targets.push(ts[0]);
    }
    return { targets, feeds };
  }

  /**
   * Stacked feeds: the N modules' A [N, r·dIn] and scaling·B [N, dOut·r] per target (built once
   * per stack and reused for every population), plus this population's weights [G, N].
   */
  private stackFeeds(stack: ModuleStack, weights: readonly (readonly number[])[]): { targets: LoraTargetShape[]; feeds: Record<string, OrtTypes.Tensor> } {
    let cached = this.stacks.get(stack);
    if (!cached) {
      const feeds: Record<string, OrtTypes.Tensor> = {};
      const n = stack.names.length;
      for (const t of stack.targets) {
        const names = stackInputNames(t.path);
        // onnxruntime-node refuses memory in a SharedArrayBuffer ("Invalid argument" at run), which
        // is where ADAPT's workers hold the stack: copy it once per stack. Otherwise the stack's
        // own arrays are fed as they are (the scaling is applied in the graph, not by a copy).
        const own = (x: Float32Array) => (x.buffer instanceof SharedArrayBuffer ? x.slice() : x);
        feeds[names.a] = new this.ort.Tensor('float32', own(t.a), [n, t.rank * t.dIn]);
        feeds[names.b] = new this.ort.Tensor('float32', own(t.b), [n, t.dOut * t.rank]);
        feeds[names.scale] = new this.ort.Tensor('float32', Float32Array.of(t.scaling), []);
      }
      cached = { targets: [...stack.targets].sort((x, y) => (x.path < y.path ? -1 : 1)), feeds };
      this.stacks.set(stack, cached);
    }
    const n = stack.names.length;
    const w = new Float32Array(weights.length * n);
    weights.forEach((row, g) => {
      checkWeights(stack, row);
      w.set(row, g * n);
    });
    return { targets: cached.targets, feeds: { ...cached.feeds, [STACK_WEIGHTS]: new this.ort.Tensor('float32', w, [weights.length, n]) } };
  }

  private async run(session: Session, feeds: Record<string, OrtTypes.Tensor>, what: string): Promise<Record<string, OrtTypes.Tensor>> {
    try {
      return await session.run(feeds);
    } catch (err) {
      throw this.backendError(err, what);
    }
  }

  private checkIds(ids: number[][], what: string): void {
    checkTokenIds(ids, this.arch.config.vocabSize, what);
  }

  /** Feeds shared by the score and logits graphs. */
  private scoreFeeds(batch: ScoreBatch): { feeds: Record<string, OrtTypes.Tensor>; B: number; T: number } {
    return t5ScoreFeeds(this.ort, this.t5Config(), batch);
  }

  async tokenLosses(batch: ScoreBatch, population: Population = []): Promise<TokenLosses[]> {
    if (this.arch.family !== 't5') return this.scoreCausal(seamRows(batch, this.arch.config.padTokenId), population);
    const { feeds, B, T } = this.scoreFeeds(batch);
    const stacked = isStacked(population) && population.weights.length > 0;
    const lora = isStacked(population) ? (stacked ? this.stackFeeds(population.stack, population.weights) : { targets: [], feeds: {} }) : this.loraFeeds(population);
    const session = await this.session('score', lora.targets, stacked);
    const out = await this.run(session, { ...feeds, ...lora.feeds }, 'scoring');
    const nll = out.token_nll.data as Float32Array; // [g, B, T]
    const g = out.token_nll.dims[0];
    const groups = Math.max(1, isStacked(population) ? population.weights.length : population.length);
    const results: TokenLosses[] = [];
    for (let gi = 0; gi < groups; gi++) {
      const base = (g === 1 ? 0 : gi) * B * T;
      const sum: number[] = [];
      const tokens: number[] = [];
      batch.labels.forEach((row, b) => {
        let s = 0;
        let n = 0;
        row.forEach((l, t) => {
          if (l !== IGNORE_INDEX) {
            s += nll[base + b * T + t];
            n++;
          }
        });
        sum.push(s);
        tokens.push(n);
      });
      results.push({ sum, tokens });
    }
    return results;
  }

  /** Teacher-forced logits [B·T, V] and encoder states [B·S, d] of one adapter (parity tests). */
  async logits(batch: ScoreBatch, adapter?: LoraModule): Promise<{ logits: Float32Array; encoder: Float32Array }> {
    const { feeds } = this.scoreFeeds(batch);
    const lora = this.loraFeeds(adapter ? [adapter] : []);
    const out = await this.run(await this.session('logits', lora.targets), { ...feeds, ...lora.feeds }, 'forward');
    return { logits: out.logits.data as Float32Array, encoder: out.encoder_hidden.data as Float32Array };
  }

  async generate(input: GenerateInput, opts: GenerateOptions): Promise<number[][]> {
    if (this.arch.family !== 't5') return this.generateCausal(this.arch, input, opts);
    const cfg = this.t5Config();
    const ort = this.ort;
    const [B, S] = checkRect(input.inputIds, 'input_ids');
    this.checkIds(input.inputIds, 'input_ids');
    const mask = input.attentionMask ?? input.inputIds.map((r) => r.map(() => 1));
    if (mask.length !== B || mask.some((r) => r.length !== S)) throw new LorahubError('INTERNAL', 'attention_mask must match input_ids [B][S]');
    const lora = this.loraFeeds(opts.adapter ? [opts.adapter] : []);
    const encoder = await this.session('encoder', lora.targets);
    const step = await this.session('step', lora.targets);
    const maskT = f32(ort, mask);
    const enc = await this.run(
      encoder,
      {
        input_ids: i64(ort, input.inputIds),
        attention_mask: maskT,
        enc_buckets: i64Flat(ort, bucketTable(S, S, true, cfg.relativeAttentionNumBuckets, cfg.relativeAttentionMaxDistance), [S, S]),
        ...lora.feeds,
      },
      'encoding',
    );
    const H = cfg.numHeads;
    const dk = cfg.dKv;
    const cache: Record<string, OrtTypes.Tensor> = {};
    for (let i = 0; i < cfg.numDecoderLayers; i++) {
      cache[`cross_k.${i}`] = enc[`cross_k.${i}`];
      cache[`cross_v.${i}`] = enc[`cross_v.${i}`];
      cache[`past_k.${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, B, H, dk, 0]);
      cache[`past_v.${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, B, H, 0, dk]);
    }
    const out: number[][] = input.inputIds.map(() => [cfg.decoderStartTokenId]);
    const done = new Array<boolean>(B).fill(false);
    for (let t = 0; t < opts.maxNewTokens && done.includes(false); t++) {
      const res = await this.run(
        step,
        {
          decoder_input_ids: i64(ort, out.map((r) => [r[r.length - 1]])),
          attention_mask: maskT,
          self_buckets: i64Flat(ort, bucketTable(1, t + 1, false, cfg.relativeAttentionNumBuckets, cfg.relativeAttentionMaxDistance, t), [1, t + 1]),
          ...cache,
          ...lora.feeds,
        },
        'generation',
      );
      for (let i = 0; i < cfg.numDecoderLayers; i++) {
        cache[`past_k.${i}`] = res[`present_k.${i}`];
        cache[`past_v.${i}`] = res[`present_v.${i}`];
      }
      if ((res.nonfinite.data as Float32Array)[0] > 0) throw nonFiniteError(this, `a logit of generation step ${t + 1}`);
      const next = res.next_token.data as BigInt64Array;
      for (let b = 0; b < B; b++) {
        const id = done[b] ? cfg.padTokenId : Number(next[b]);
        out[b].push(id);
        if (id === cfg.eosTokenId) done[b] = true;
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Decoder-only families (causal-graph.ts; layout: models/family.ts)

  private causalArch(): CausalArch {
    if (this.arch.family === 't5') throw new LorahubError('INTERNAL', `${this.dir}: a causal-LM code path ran for a T5 model`);
    return this.arch;
  }

  /** Feeds of the score and logits graphs: ids, positions, mask, causal table [S, S]. */
  private causalFeeds(arch: CausalArch, rows: CausalBatch): Record<string, OrtTypes.Tensor> {
    const [, S] = checkRows(arch, rows, this.dir);
    const ort = this.ort;
    return { input_ids: i64(ort, rows.inputIds), position_ids: i64(ort, rows.positionIds), attention_mask: f32(ort, rows.attentionMask), causal: new ort.Tensor('float32', causalTable(S, S), [S, S]) };
  }

  /**
   * Per-example token-loss sums and counts of causal rows in transformers' layout (prompt +
   * target, labels −100 on prompt and padding, unshifted; left or right padding with matching
   * position ids): what tokenLosses runs after joining prompts and targets (causalRows).
   */
  async scoreCausal(rows: CausalBatch, population: Population = []): Promise<TokenLosses[]> {
    const arch = this.causalArch();
    const feeds = this.causalFeeds(arch, rows);
    const groups = Math.max(1, isStacked(population) ? population.weights.length : population.length);
    const shifted = shiftedLabels(rows.labels);
    const N = shifted.positions.length;
    if (N === 0) return exampleSums([], [], rows.labels.length, groups, true);
    checkAdapters(arch, population, this.dir);
    const stacked = isStacked(population) && population.weights.length > 0;
    const lora = isStacked(population) ? (stacked ? this.stackFeeds(population.stack, population.weights) : { targets: [], feeds: {} }) : this.loraFeeds(population);
    const session = await this.session('score', lora.targets, stacked);
    const ort = this.ort;
    const labelFeeds = {
      label_pos: new ort.Tensor('int64', BigInt64Array.from(shifted.positions, (v) => BigInt(v)), [N]),
      label_ids: new ort.Tensor('int64', BigInt64Array.from(shifted.ids, (v) => BigInt(v)), [N]),
    };
    const out = await this.run(session, { ...feeds, ...labelFeeds, ...lora.feeds }, 'scoring');
    // token_nll [g, N]: g = 1 when no candidate-specific delta reached the logits.
    return exampleSums(out.token_nll.data as Float32Array, shifted.example, rows.labels.length, groups, out.token_nll.dims[0] === 1);
  }

  /** Logits [B·S, V] and final hidden states [B·S, d] of causal rows with one adapter (parity tests). */
  async causalLogits(rows: CausalBatch, adapter?: LoraModule): Promise<{ logits: Float32Array; hidden: Float32Array }> {
    const arch = this.causalArch();
    const feeds = this.causalFeeds(arch, rows);
    if (adapter) checkModuleFitsModel(adapter, arch, this.dir);
    const lora = this.loraFeeds(adapter ? [adapter] : []);
    const out = await this.run(await this.session('logits', lora.targets), { ...feeds, ...lora.feeds }, 'forward');
    return { logits: out.logits.data as Float32Array, hidden: out.hidden.data as Float32Array };
  }

  /**
   * Greedy continuation of each prompt with a key/value cache, as transformers' generate: the
   * prompts left-padded with position ids from the mask, one pass over them, then one token per
   * step. Rows: the prompt's last token, then the new ids (pad after eos).
   */
  private async generateCausal(arch: CausalArch, input: GenerateInput, opts: GenerateOptions): Promise<number[][]> {
    const ort = this.ort;
    const p = generationPrompts(arch, input, this.dir, opts.adapter);
    const lora = this.loraFeeds(opts.adapter ? [opts.adapter] : []);
    const session = await this.session('decode', lora.targets);
    const { kvHeads: KV, headDim: dh, layers } = causalGeometry(arch);
    const B = p.inputIds.length;
    const cache: Record<string, OrtTypes.Tensor> = {};
    for (let i = 0; i < layers; i++) {
      cache[`past_k.${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, B, KV, 0, dh]);
      cache[`past_v.${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, B, KV, 0, dh]);
    }
    const step = async (s: DecodeStep) => {
      const res = await this.run(
        session,
        { input_ids: i64(ort, s.ids), position_ids: i64(ort, s.positionIds), attention_mask: f32(ort, s.attentionMask), causal: new ort.Tensor('float32', s.causal, [s.S, s.K]), ...cache, ...lora.feeds },
        'generation',
      );
      for (let i = 0; i < layers; i++) {
        cache[`past_k.${i}`] = res[`present_k.${i}`];
        cache[`past_v.${i}`] = res[`present_v.${i}`];
      }
      return { next: Array.from(res.next_token.data as BigInt64Array, Number), nonFinite: (res.nonfinite.data as Float32Array)[0] > 0 };
    };
    return greedyDecode(arch, p, opts.maxNewTokens, this.dir, step, (what) => nonFiniteError(this, what));
  }

  async dispose(): Promise<void> {
    this.released = true;
    await this.releaseWhere(() => true);
  }
}
