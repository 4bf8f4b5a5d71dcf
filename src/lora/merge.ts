/**
 * The arithmetic of MERGE (PEFT `merge_and_unload`): W ← W + scaling·(B A), pure. Writing a
 * merged checkpoint is the model family's business (models/merge.ts).
 */
import type { LoraTarget } from './module.ts';

/**
 * W + scaling·B[dOut, r]·A[r, dIn], in float32 like torch (the product accumulates in float64
 * here). W is [dOut, dIn] (a torch Linear), or [dIn, dOut] with `fanInFanOut` (GPT-2's Conv1D:
 * PEFT adds the transposed product there).
 */
export function mergedWeight(w: Float32Array, t: LoraTarget, fanInFanOut = false): Float32Array {
  const out = new Float32Array(w.length);
  const { r, dIn, dOut, a, b, scaling } = t;
  const row = new Float64Array(dIn);
  for (let o = 0; o < dOut; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k];
      if (bk === 0) continue;
      const ao = k * dIn;
      for (let i = 0; i < dIn; i++) row[i] += bk * a[ao + i];
    }
    for (let i = 0; i < dIn; i++) {
      const at = fanInFanOut ? i * dOut + o : o * dIn + i;
      out[at] = Math.fround(w[at] + Math.fround(Math.fround(row[i]) * scaling));
    }
  }
  return out;
}
