import { describe, expect, it } from 'vitest';
import { accuracy, exactMatch, normalizeAnswer } from '../../src/eval/exact-match.ts';
import { LorahubError } from '../../src/errors.ts';

describe('exact match (lorahub normalisation)', () => {
  it('lower-cases, strips whitespace and drops dots', () => {
    expect(normalizeAnswer('  True.\n')).toBe('true');
    expect(exactMatch('True', 'true')).toBe(true);
    expect(exactMatch(' (A). ', '(A)')).toBe(true);
    expect(exactMatch('No.', 'no')).toBe(true);
    expect(exactMatch('3.5', '35')).toBe(true); // dots vanish everywhere, as in the reference
    expect(exactMatch('] ]', ']]')).toBe(false); // inner spaces matter
    expect(exactMatch('Yes', 'No')).toBe(false);
  });

  it('strips before dropping dots, like `s.strip().lower().replace(".", "")`', () => {
    // "True ." → strip → "True ." → "true " (trailing space survives) ≠ "true".
    expect(normalizeAnswer('True .')).toBe('true ');
    expect(exactMatch('True .', 'True')).toBe(false);
  });

  it('accuracy counts matches', () => {
    expect(accuracy(['True', 'false.', 'Maybe'], ['True', 'False', 'No'])).toEqual({ accuracy: 2 / 3, correct: 2, total: 3 });
    expect(accuracy(['x'], ['x']).accuracy).toBe(1);
  });

  it('rejects mismatched or empty inputs', () => {
    expect(() => accuracy(['a'], ['a', 'b'])).toThrow(LorahubError);
    expect(() => accuracy(['a'], ['a', 'b'])).toThrow(/1 predictions for 2 targets/);
    expect(() => accuracy([], [])).toThrow(/no predictions/);
  });
});
