/**
 * T5 relative position buckets (Raffel et al. 2020, §2.1; transformers modeling_t5.py
 * `T5Attention._relative_position_bucket`).
 *
 * transformers computes the logarithmic buckets in float32 tensors; bucket boundaries
 * (e.g. 16 / 8 = 2 with max_exact 8) are exactly where float64 and float32 can round to
 * different integers, so every step is rounded with Math.fround to match torch bit-for-bit.
 */

export function relativePositionBucket(
  relativePosition: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): number {
  let bucket = 0;
  let n = numBuckets;
  let rp = relativePosition;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rp > 0) bucket += n;
    rp = Math.abs(rp);
  } else {
    // Causal: only keys at or before the query count; later keys share bucket 0 (they are masked anyway).
    rp = -Math.min(rp, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (rp < maxExact) return bucket + rp;
  // torch: log(rp.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact),
  // each op in float32 (a Python float operand becomes a float32 scalar), then truncation to long.
  const ratio = Math.fround(Math.fround(rp) / Math.fround(maxExact));
  const logRatio = Math.fround(Math.log(ratio));
  const denom = Math.fround(Math.log(maxDistance / maxExact));
  const scaled = Math.fround(Math.fround(logRatio / denom) * Math.fround(n - maxExact));
  const large = Math.min(maxExact + Math.trunc(scaled), n - 1);
  return bucket + large;
}

/**
 * Bucket ids [queryLength × keyLength] (row-major) for queries at positions
 * `queryOffset … queryOffset+queryLength-1` against keys `0 … keyLength-1`.
 * relative_position = key_position − query_position, as in transformers.
 */
export function bucketTable(
  queryLength: number,
  keyLength: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
  queryOffset = 0,
): Int32Array {
  const out = new Int32Array(queryLength * keyLength);
  const memo = new Map<number, number>();
  for (let i = 0; i < queryLength; i++) {
    for (let j = 0; j < keyLength; j++) {
      const rel = j - (i + queryOffset);
      let b = memo.get(rel);
      if (b === undefined) {
        b = relativePositionBucket(rel, bidirectional, numBuckets, maxDistance);
        memo.set(rel, b);
      }
      out[i * keyLength + j] = b;
    }
  }
  return out;
}
