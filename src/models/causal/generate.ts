/**
 * Greedy generation on the tfjs forward with a key/value cache: rows.ts `greedyDecode` does
 * transformers' bookkeeping (left-padded prompts, positions, masks, eos); each step here runs the
 * new tokens through the stack against the cached keys and values of every block and picks each
 * row's argmax at its last position.
 */
import * as tf from '@tensorflow/tfjs';
import type { CausalModel, KVCache, LoraDeltas } from './model.ts';
import { greedyDecode, type Prompts } from './rows.ts';

function disposeCache(cache: KVCache[]): void {
  for (const kv of cache) tf.dispose([kv.kT, kv.v]);
}

/** Rows: each prompt's last token, then the new ids (pad after eos); see rows.ts `greedyDecode`. */
export async function generateCausal(model: CausalModel, prompts: Prompts, maxNewTokens: number, lora: LoraDeltas | undefined, nonFinite: (what: string) => Error): Promise<number[][]> {
  let cache: KVCache[] = [];
  try {
    return await greedyDecode(
      model.arch,
      prompts,
      maxNewTokens,
      model.dir,
      async (s) => {
        const present: KVCache[] = [];
        let next: tf.Tensor;
        let bad: tf.Tensor;
        try {
          [next, bad] = tf.tidy(() => {
            const x = model.stack({ inputIds: s.ids, positionIds: s.positionIds, attentionMask: s.attentionMask, causal: s.causal }, lora, 1, { past: cache, present });
            // The last position of every row (prompts are left-padded: each row's last token).
            const last = tf.reshape(tf.slice(tf.reshape(x.x, [s.ids.length, s.S, -1]), [0, s.S - 1, 0], [-1, 1, -1]), [s.ids.length, -1]) as tf.Tensor2D;
            const logits = model.lmHead(model.finalNorm(last)); // [B, V]
            return [tf.argMax(logits, -1), tf.any(tf.logicalNot(tf.isFinite(logits)))];
          });
        } catch (err) {
          disposeCache(present);
          throw err;
        }
        disposeCache(cache);
        cache = present;
        const ids = Array.from(next.dataSync());
        const nf = bad.dataSync()[0] !== 0;
        tf.dispose([next, bad]);
        return { next: ids, nonFinite: nf };
      },
      nonFinite,
    );
  } finally {
    disposeCache(cache);
  }
}
