/**
 * What both engines do around a decoder-only forward, on plain arrays (no tensor library): the
 * sizes of a family's decoder, the checks of causal rows and of adapters against the model, the
 * additive causal table, per-example sums of the shifted token losses, and greedy generation's
 * bookkeeping (transformers' left-padded prompts, position ids, masks, eos). The engines supply
 * only the forward: ONNX graphs (engine/ort/causal-graph.ts) or tfjs (models/causal/model.ts).
 * The batch layout itself (prompt + target rows, shifted labels) is models/family.ts's.
 */
import { LorahubError } from '../../errors.ts';
import type { ModuleStack } from '../../lora/compose.ts';
import type { LoraModule } from '../../lora/module.ts';
import { checkLabels, checkTokenIds, type ScoreBatch } from '../shared/batch.ts';
import { causalRows, leftPaddedPrompts, type CausalBatch } from '../shared/family.ts';
import { checkModuleFitsModel } from '../../lora/fit.ts';
import { checkPositions } from '../gpt2/config.ts';
import type { CausalArch } from '../index.ts';
import { checkWindow } from '../llama/config.ts';

/** A large negative additive mask value (exp underflows to 0, like HF's finfo.min). */
export const MASKED = -1e9;

/** What a forward needs of a family: sizes and the names of its embedding and head. */
export interface CausalGeometry {
  d: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  layers: number;
  vocab: number;
  /** Weights stored [in, out] (GPT-2's Conv1D) rather than torch Linear's [out, in]. */
  conv1d: boolean;
  embed: string;
  /** The LM head's weight [V, d]: the embedding when tied. */
  head: string;
}

export function causalGeometry(arch: CausalArch): CausalGeometry {
  if (arch.family === 'llama') {
    const c = arch.config;
    return { d: c.hiddenSize, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, layers: c.numLayers, vocab: c.vocabSize, conv1d: false, embed: 'model.embed_tokens.weight', head: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight' };
  }
  const c = arch.config;
  return { d: c.nEmbd, heads: c.nHead, kvHeads: c.nHead, headDim: c.nEmbd / c.nHead, layers: c.nLayer, vocab: c.vocabSize, conv1d: true, embed: 'transformer.wte.weight', head: c.tieWordEmbeddings ? 'transformer.wte.weight' : 'lm_head.weight' };
}

/** [B, S] of a non-empty rectangular id matrix. */
export function checkRect(ids: number[][], what: string): [number, number] {
  const b = ids.length;
  const s = ids[0]?.length ?? 0;
  if (b === 0 || s === 0 || ids.some((r) => r.length !== s)) throw new LorahubError('INTERNAL', `${what} must be a non-empty rectangular [B][S] array`);
  return [b, s];
}

function checkSameShape(m: number[][], B: number, S: number, what: string): void {
  if (m.length !== B || m.some((r) => r.length !== S)) throw new LorahubError('INTERNAL', `${what} must match input_ids [B][S]`);
}

/** Refuses sequences the model would not read as transformers does (GPT-2's position table, a sliding window). */
export function checkLength(arch: CausalArch, length: number, what: string, dir: string): void {
  if (arch.family === 'llama') checkWindow(arch.config, length, `${dir}: ${what}`);
  else checkPositions(arch.config, length, `${dir}: ${what}`);
}

/**
 * The engine seam's batch (prompts and targets padded apart, as eval/score and compose build it)
 * as causal rows: each prompt followed by its target (family.ts `causalRows`).
 */
export function seamRows(batch: ScoreBatch, padId: number): CausalBatch {
  const [b, s] = checkRect(batch.inputIds, 'input_ids');
  checkSameShape(batch.attentionMask, b, s, 'attention_mask');
  if (batch.labels.length !== b) throw new LorahubError('INTERNAL', 'labels and input_ids differ in batch size');
  return causalRows(batch, padId);
}

/** Checks causal rows against the model (shapes, ids, labels, positions, length limits); returns [B, S]. */
export function checkRows(arch: CausalArch, rows: CausalBatch, dir: string): [number, number] {
  const [B, S] = checkRect(rows.inputIds, 'input_ids');
  checkTokenIds(rows.inputIds, arch.config.vocabSize, 'input_ids');
  checkSameShape(rows.attentionMask, B, S, 'attention_mask');
  checkSameShape(rows.positionIds, B, S, 'position_ids');
  checkSameShape(rows.labels, B, S, 'labels');
  checkLabels(rows.labels, arch.config.vocabSize);
  if (rows.positionIds.some((r) => r.some((p) => !Number.isInteger(p) || p < 0))) throw new LorahubError('INTERNAL', 'position_ids must be non-negative integers');
  const maxPos = Math.max(...rows.positionIds.flat());
  checkLength(arch, Math.max(S, maxPos + 1), 'the sequence (prompt + target)', dir);
  return [B, S];
}

/**
 * Refuses adapters that are not for this model: a forward adds deltas only where a target is one
 * of its layers, so a foreign target would otherwise be dropped without a word.
 */
export function checkAdapters(arch: CausalArch, population: readonly LoraModule[] | { stack: ModuleStack }, dir: string): void {
  if ('stack' in population) {
    const s = population.stack;
    checkModuleFitsModel({ name: s.names[0] ?? 'stack', config: s.first.config, targets: new Map(s.targets.map((t) => [t.path, t])) }, arch, dir);
  } else {
    for (const m of population) checkModuleFitsModel(m, arch, dir);
  }
}

/**
 * The additive causal table [S, K] (row-major) of S queries at the end of K keys: query i sits at
 * absolute position K − S + i and sees keys up to it (K = S when scoring whole rows).
 */
export function causalTable(S: number, K: number): Float32Array {
  const t = new Float32Array(S * K);
  for (let i = 0; i < S; i++) for (let j = K - S + i + 1; j < K; j++) t[i * K + j] = MASKED;
  return t;
}

/**
 * Per-candidate, per-example sums and counts of token losses `nll` [g, N] taken at the shifted
 * label positions (family.ts `shiftedLabels`: `example` is the row of each); `shared`: one set of
 * N values serves every group (no candidate-specific delta reached them).
 */
export function exampleSums(nll: ArrayLike<number>, example: readonly number[], batch: number, groups: number, shared: boolean): { sum: number[]; tokens: number[] }[] {
  const N = example.length;
  const tokens = Array.from({ length: batch }, (_, b) => example.filter((e) => e === b).length);
  return Array.from({ length: groups }, (_, gi) => {
    const sum = tokens.map(() => 0);
    const base = shared ? 0 : gi * N;
    example.forEach((b, k) => (sum[b] += nll[base + k]));
    return { sum, tokens };
  });
}

// ---------------------------------------------------------------------------------------------
// greedy generation

export type Prompts = ReturnType<typeof leftPaddedPrompts>;

/**
 * Prompts for generation, checked and left-padded with transformers' position ids
 * (family.ts `leftPaddedPrompts`); an adapter must fit the model.
 */
export function generationPrompts(arch: CausalArch, input: { inputIds: number[][]; attentionMask?: number[][] }, dir: string, adapter?: LoraModule): Prompts {
  const [B, S0] = checkRect(input.inputIds, 'input_ids');
  checkTokenIds(input.inputIds, arch.config.vocabSize, 'input_ids');
  const mask = input.attentionMask ?? input.inputIds.map((r) => r.map(() => 1));
  checkSameShape(mask, B, S0, 'attention_mask');
  const p = leftPaddedPrompts({ inputIds: input.inputIds, attentionMask: mask }, arch.config.padTokenId);
  p.lengths.forEach((n, b) => {
    if (n === 0) throw new LorahubError('INTERNAL', `input_ids[${b}]: empty prompt (a causal LM continues a prompt)`);
  });
  if (adapter) checkModuleFitsModel(adapter, arch, dir);
  return p;
}

/** One forward of greedy generation: S new query tokens per row after K − S cached ones. */
export interface DecodeStep {
  /** [B][S]: the whole prompt at step 0, then each row's last token. */
  ids: number[][];
  positionIds: number[][];
  /** [B][K] over cached + new keys. */
  attentionMask: number[][];
  /** causalTable(S, K). */
  causal: Float32Array;
  S: number;
  K: number;
  /** 0-based step. */
  step: number;
}

/**
 * Greedy continuation, as transformers' generate(num_beams=1, do_sample=False): one pass over the
 * left-padded prompts, then one token per step; `forward` runs one step (keeping its own key/value
 * cache) and returns each row's argmax and whether any logit was NaN/∞. Rows: the prompt's last
 * token, then the new ids; a row that emitted eos gets pad afterwards; stops when every row has
 * finished or after maxNewTokens.
 */
export async function greedyDecode(
  arch: CausalArch,
  p: Prompts,
  maxNewTokens: number,
  dir: string,
  forward: (s: DecodeStep) => Promise<{ next: ArrayLike<number>; nonFinite: boolean }>,
  nonFinite: (what: string) => Error,
): Promise<number[][]> {
  const cfg = arch.config;
  const B = p.inputIds.length;
  const eos = new Set(cfg.eosTokenIds);
  const out = p.inputIds.map((r) => [r[r.length - 1]]);
  const done = new Array<boolean>(B).fill(false);
  const lengths = [...p.lengths];
  const mask = p.attentionMask.map((r) => [...r]);
  let ids = p.inputIds;
  let positions = p.positionIds;
  for (let t = 0; t < maxNewTokens && done.includes(false); t++) {
    const S = ids[0].length;
    const K = mask[0].length;
    checkLength(arch, K, 'prompt + generated ids', dir);
    const res = await forward({ ids, positionIds: positions, attentionMask: mask, causal: causalTable(S, K), S, K, step: t });
    if (res.nonFinite) throw nonFinite(`a logit of generation step ${t + 1}`);
    for (let b = 0; b < B; b++) {
      const id = done[b] ? cfg.padTokenId : Number(res.next[b]);
      out[b].push(id);
      if (eos.has(id)) done[b] = true;
    }
    // transformers feeds every row's new token (pad for finished rows) with mask 1, at position
    // cumsum(mask) − 1.
    ids = out.map((r) => [r[r.length - 1]]);
    positions = lengths.map((n) => [n]);
    lengths.forEach((_, b) => lengths[b]++);
    mask.forEach((r) => r.push(1));
  }
  return out;
}
