/**
 * The generator registry: task files name a generator from this table. Target generators
 * (prefixed "bbh_") print exactly BBH's format; the others are upstream sub-skills.
 */
import { LorahubError } from '../../errors.ts';
import { arithmeticEval, bbhMultistepArithmetic, compareNumbers, numberWords } from './arithmetic.ts';
import { bbhBooleanExpressions, booleanEval, booleanGrouping, booleanReduce } from './boolean.ts';
import { bbhDyckLanguages, bracketBalanced, bracketCloseAll, bracketComplete, bracketDepth, bracketOpenStack } from './brackets.ts';
import { bbhObjectCounting, categoryOf, countCategory, countItems, sumQuantities } from './counting.ts';
import type { GeneratorSpec } from './define.ts';
import { bbhNavigate, gridPosition, headingTurns, returnStart, stepsLine, walkTurns } from './navigate.ts';
import { bbhTrackingShuffledObjects3, optionLetter, swapTrack } from './shuffle.ts';
import { bbhWebOfLies, truthChain, truthClaim } from './truth.ts';
import { bbhWordSorting, firstAlphabetical, letterOrder, sortWordsShort } from './words.ts';

export type { GeneratorSpec, Instance, Sampler, LeakRule } from './define.ts';

const ALL: readonly GeneratorSpec[] = [
  bbhBooleanExpressions, booleanEval, booleanGrouping, booleanReduce,
  bbhMultistepArithmetic, arithmeticEval, compareNumbers, numberWords,
  bbhDyckLanguages, bracketCloseAll, bracketBalanced, bracketOpenStack, bracketComplete, bracketDepth,
  bbhWordSorting, sortWordsShort, firstAlphabetical, letterOrder,
  bbhWebOfLies, truthChain, truthClaim,
  bbhNavigate, stepsLine, gridPosition, headingTurns, walkTurns, returnStart,
  bbhObjectCounting, countItems, sumQuantities, categoryOf, countCategory,
  bbhTrackingShuffledObjects3, swapTrack, optionLetter,
];

export const GENERATORS: ReadonlyMap<string, GeneratorSpec> = new Map(ALL.map((g) => [g.name, g]));

export function getGenerator(name: string): GeneratorSpec {
  const g = GENERATORS.get(name);
  if (!g) {
    throw new LorahubError('NOT_FOUND', `unknown generator "${name}" (available: ${[...GENERATORS.keys()].sort().join(', ')})`);
  }
  return g;
}
