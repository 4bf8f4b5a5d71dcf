/**
 * Exact match as LoRAHub scores it (lorahub/algorithm.py, `accuracy_score` in
 * `lorahub_inference`): `s.strip().lower().replace(".", "")` on both sides, then string equality.
 * The order is kept: whitespace is stripped *before* dots are removed, so "True ." normalises to
 * "true " and does not match "True" — exactly as in the reference.
 */
import { LorahubError } from '../errors.ts';

/**
 * Python's str.strip() and String.prototype.trim agree on whitespace except U+001C–U+001F (Python
 * strips them) and U+FEFF (JavaScript strips it), neither of which a model's answer contains.
 */
export function normalizeAnswer(text: string): string {
  return text.trim().toLowerCase().replaceAll('.', '');
}

export function exactMatch(pred: string, target: string): boolean {
  return normalizeAnswer(pred) === normalizeAnswer(target);
}

export interface Accuracy {
  /** correct / total, in [0, 1] (the reference prints it ×100). */
  accuracy: number;
  correct: number;
  total: number;
}

export function accuracy(preds: readonly string[], targets: readonly string[]): Accuracy {
  if (preds.length !== targets.length) {
    throw new LorahubError('INTERNAL', `accuracy: ${preds.length} predictions for ${targets.length} targets`);
  }
  // The reference divides by zero here; an empty evaluation is a caller's mistake, so say so.
  if (targets.length === 0) throw new LorahubError('INTERNAL', 'accuracy: no predictions to score');
  let correct = 0;
  preds.forEach((p, i) => {
    if (exactMatch(p, targets[i])) correct++;
  });
  return { accuracy: correct / targets.length, correct, total: targets.length };
}
