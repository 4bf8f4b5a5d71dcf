/**
 * Tracking swapped objects (BBH tracking_shuffled_objects_three_objects). Three people start with
 * one thing each, swap in pairs three times, and the question asks who holds what at the end.
 * The five story frames and their wording are BBH's; the inventories are our own lists.
 */
import { z } from 'zod';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';
import { BOOKS, COLORS, NAMES, POSITIONS } from './vocab.ts';

/** One BBH story frame: the sentences around the opening holdings and the swaps. */
export interface Frame {
  name: string;
  intro: string;
  /** How person P holding item X is said in the opening, e.g. "P gets X". */
  holds: (person: string, item: string) => string;
  middle: string;
  swap: (a: string, b: string) => string;
  ending: (person: string) => string;
  /** The items, each as it is written in the options. */
  items: (rng: Rng, n: number) => string[];
}

export const FRAMES: readonly Frame[] = [
  {
    name: 'books',
    intro: 'are friends and avid readers who occasionally trade books. At the start of the semester, they each buy one new book:',
    holds: (p, x) => `${p} gets ${x}`,
    middle: 'As the semester proceeds, they start trading around the new books.',
    swap: (a, b) => `${a} and ${b} swap books`,
    ending: (p) => `At the end of the semester, ${p} has`,
    items: (rng, n) => rng.sample(BOOKS, n),
  },
  {
    name: 'dance',
    intro: 'are dancers at a square dance. At the start of a song, they each have a partner:',
    holds: (p, x) => `${p} is dancing with ${x}`,
    middle: 'Throughout the song, the dancers often trade partners.',
    swap: (a, b) => `${a} and ${b} switch partners`,
    ending: (p) => `At the end of the dance, ${p} is dancing with`,
    items: (rng, n) => rng.sample(NAMES, n),
  },
  {
    name: 'balls',
    intro: 'are playing a game. At the start of the game, they are each holding a ball:',
    holds: (p, x) => `${p} has a ${x}`,
    middle: 'As the game progresses, pairs of players trade balls.',
    swap: (a, b) => `${a} and ${b} swap balls`,
    ending: (p) => `At the end of the game, ${p} has the`,
    items: (rng, n) => rng.sample(COLORS, n).map((c) => `${c} ball`),
  },
  {
    name: 'gifts',
    intro:
      'are holding a white elephant gift exchange. At the start of the event, they are each holding a present of a different color:',
    holds: (p, x) => `${p} has a ${x}`,
    middle: 'As the event progresses, pairs of people swap gifts.',
    swap: (a, b) => `${a} and ${b} swap their gifts`,
    ending: (p) => `At the end of the event, ${p} has the`,
    // BBH's gift stories call about a third of the gifts "ball" rather than "present".
    items: (rng, n) => rng.sample(COLORS, n).map((c) => `${c} ${rng.bool(0.3) ? 'ball' : 'present'}`),
  },
  {
    name: 'soccer',
    intro: 'are on the same team in a soccer match. At the start of the match, they are each assigned to a position:',
    holds: (p, x) => `${p} is playing ${x}`,
    middle: 'As the game progresses, pairs of players occasionally swap positions.',
    swap: (a, b) => `${a} and ${b} trade positions`,
    ending: (p) => `At the end of the match, ${p} is playing`,
    items: (rng, n) => rng.sample(POSITIONS, n),
  },
];

export const PEOPLE = ['Alice', 'Bob', 'Claire'] as const;
const ORDINALS = ['First', 'Then', 'Finally'] as const;
const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F', 'G'];

/** Who holds which item after the swaps: holder index → item index. */
export function applySwaps(n: number, swaps: ReadonlyArray<readonly [number, number]>): number[] {
  const holding = Array.from({ length: n }, (_, i) => i);
  for (const [a, b] of swaps) [holding[a], holding[b]] = [holding[b], holding[a]];
  return holding;
}

/** BBH's text for a story: everything before "\nOptions:\n", and the option lines. */
export function tellStory(
  frame: Frame,
  items: readonly string[],
  swaps: ReadonlyArray<readonly [number, number]>,
  asked: number,
): { story: string; options: string } {
  const opening = PEOPLE.map((p, i) => frame.holds(p, items[i]));
  const story =
    `Alice, Bob, and Claire ${frame.intro} ${opening[0]}, ${opening[1]}, and ${opening[2]}.\n` +
    `${frame.middle} ` +
    swaps.map(([a, b], i) => `${ORDINALS[i]}, ${frame.swap(PEOPLE[a], PEOPLE[b])}.`).join(' ') +
    ` ${frame.ending(PEOPLE[asked])}`;
  const options = items.map((x, i) => `(${LETTERS[i]}) ${x}`).join('\n');
  return { story, options };
}

export const bbhTrackingShuffledObjects3 = defineGenerator({
  name: 'bbh_tracking_shuffled_objects_three_objects',
  description: 'BBH tracking_shuffled_objects_three_objects: three people, three pairwise swaps, who has what.',
  fields: ['story', 'options'],
  defaultTemplate: '{story}\nOptions:\n{options}',
  core: { field: 'story', rule: 'substring' },
  params: z.strictObject({}),
  sample(rng, _p, want) {
    const frame = rng.pick(FRAMES);
    const items = frame.items(rng, 3);
    const swaps = ORDINALS.map(() => rng.sample([0, 1, 2], 2) as [number, number]);
    const holding = applySwaps(3, swaps);
    // Ask about the person who ends up with the wanted option when a label is requested (balance).
    const wantIndex = want === undefined ? -1 : LETTERS.indexOf(want.slice(1, 2));
    const asked = wantIndex >= 0 ? holding.indexOf(wantIndex) : rng.int(0, 2);
    const { story, options } = tellStory(frame, items, swaps, asked);
    return { fields: { story, options }, target: `(${LETTERS[holding[asked]]})` };
  },
});

export const swapTrack = defineGenerator({
  name: 'swap_track',
  description: 'Who has which ball after one to three swaps, told briefly.',
  fields: ['start', 'swaps', 'person'],
  defaultTemplate: '{start} {swaps} What does {person} have now?',
  params: z
    .strictObject({ people: z.number().int().min(2).max(5).default(3), swaps: z.strictObject({ min: z.number().int().min(1), max: z.number().int().max(5) }) })
    .refine((p) => p.swaps.min <= p.swaps.max, { message: 'swaps.min must be <= swaps.max' }),
  sample(rng, p) {
    const people = rng.sample(NAMES, p.people);
    const items = rng.sample(COLORS, p.people).map((c) => `the ${c} ball`);
    const swaps = Array.from({ length: rng.int(p.swaps.min, p.swaps.max) }, () => rng.sample(people.map((_, i) => i), 2) as [number, number]);
    const holding = applySwaps(p.people, swaps);
    const asked = rng.int(0, p.people - 1);
    return {
      fields: {
        start: `${people.map((q, i) => `${q} has ${items[i]}`).join(', ')}.`,
        swaps: swaps.map(([a, b]) => `${people[a]} and ${people[b]} swap.`).join(' '),
        person: people[asked],
      },
      target: items[holding[asked]],
    };
  },
});

export const optionLetter = defineGenerator({
  name: 'option_letter',
  description: 'The letter of the option that matches an answer, as BBH multiple-choice answers are given.',
  fields: ['options', 'answer'],
  defaultTemplate: 'Options:\n{options}\nWhich option is "{answer}"?',
  params: z.strictObject({ options: z.number().int().min(2).max(7).default(3) }),
  sample(rng, p) {
    const pool = [...BOOKS, ...POSITIONS, ...COLORS.map((c) => `${c} ball`)];
    const opts = rng.sample(pool, p.options);
    const k = rng.int(0, p.options - 1);
    return {
      fields: { options: opts.map((x, i) => `(${LETTERS[i]}) ${x}`).join('\n'), answer: opts[k] },
      target: `(${LETTERS[k]})`,
    };
  },
});
