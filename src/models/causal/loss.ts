/**
 * Token cross-entropy of a causal LM at its label positions only (family.ts `shiftedLabels`: the
 * logits at t are scored against labels[t + 1]), as engine/ort/causal-graph.ts's score graph
 * computes it: the final norm and the LM head run on those N rows, not on all B·S, so prompts
 * cost no vocabulary-sized products.
 */
import * as tf from '@tensorflow/tfjs';
import type { CausalBatch } from '../shared/family.ts';
import { gatherRows } from '../shared/ops.ts';
import { tokenCrossEntropy } from '../t5/loss.ts';
import type { CausalModel, LoraDeltas } from './model.ts';
import { causalTable } from './rows.ts';

/**
 * −log softmax(logits at t)[labels[t + 1]] at `shifted.positions` (flat b·S + t), for `groups`
 * candidates: [g·N] values, g = groups, or 1 when no candidate-specific delta reached them (`shared`).
 */
export function labelTokenLosses(model: CausalModel, rows: CausalBatch, shifted: { positions: number[]; ids: number[] }, lora?: LoraDeltas, groups = 1): { nll: tf.Tensor1D; shared: boolean } {
  const B = rows.inputIds.length;
  const S = rows.inputIds[0].length;
  return tf.tidy(() => {
    const x = model.stack({ inputIds: rows.inputIds, positionIds: rows.positionIds, attentionMask: rows.attentionMask, causal: causalTable(S, S) }, lora, groups);
    const g = x.shared ? 1 : groups;
    const R = B * S;
    const idx = new Int32Array(g * shifted.positions.length);
    for (let gi = 0; gi < g; gi++) shifted.positions.forEach((p, k) => (idx[gi * shifted.positions.length + k] = gi * R + p));
    const logits = model.lmHead(model.finalNorm(gatherRows(x.x, idx))); // [g·N, V]
    return { nll: tokenCrossEntropy(logits, shifted.ids, g), shared: x.shared };
  });
}
