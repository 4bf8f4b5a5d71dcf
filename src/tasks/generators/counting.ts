/**
 * Counting possessions (BBH object_counting): "I have a flute, two pianos, and a goat. How many
 * musical instruments do I have?" → 3. Quantities are words (a/an, two … five); some lists hold
 * items of other categories that must not be counted.
 */
import { z } from 'zod';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';
import { numberToWords } from './arithmetic.ts';
import { CATEGORIES, CATEGORY_SINGULAR, ITEMS, type Category, type Item } from './vocab.ts';

interface Entry {
  item: Item;
  category: Category;
  quantity: number;
}

const phrase = (e: Entry): string => (e.quantity === 1 ? e.item.one : `${numberToWords(e.quantity)} ${e.item.many}`);

/** BBH's list style: always a serial comma before "and", even for two items ("a car, and a toaster"). */
export function bbhList(parts: readonly string[]): string {
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')}, and ${parts[parts.length - 1]}`;
}

const allItems: Entry[] = CATEGORIES.flatMap((category) => ITEMS[category].map((item) => ({ item, category, quantity: 1 })));

const range = (lo: number, hi: number) =>
  z.strictObject({ min: z.number().int().min(lo), max: z.number().int().max(hi) }).refine((r) => r.min <= r.max, {
    message: 'min must be <= max',
  });

function drawQuantity(rng: Rng, weights: readonly number[]): number {
  return rng.weightedIndex(weights) + 1;
}

export const bbhObjectCounting = defineGenerator({
  name: 'bbh_object_counting',
  description: 'BBH object_counting: count the items of one category in a list of possessions.',
  fields: ['items', 'category'],
  defaultTemplate: 'I have {items}. How many {category} do I have?',
  core: { field: 'items', rule: 'substring' },
  params: z.strictObject({
    /** Distinct items of the asked category (BBH: 2–10). */
    entries: range(1, 20).default({ min: 2, max: 10 }),
    /** Weights of quantities 1..5 (BBH: a/an ≈ 74%, two 11%, three 7%, four 4%, five 1%). */
    quantityWeights: z.array(z.number().min(0)).min(1).max(5).default([0.74, 0.11, 0.07, 0.05, 0.02]),
    /** Chance of 1–2 items from other categories (BBH: ≈ 25% of questions, never for "objects"). */
    pDistractors: z.number().min(0).max(1).default(0.25),
  }),
  sample(rng, p) {
    const category = rng.pick(CATEGORIES);
    const pool = ITEMS[category];
    const n = Math.min(pool.length, rng.int(p.entries.min, p.entries.max));
    const entries: Entry[] = rng.sample(pool, n).map((item) => ({ item, category, quantity: drawQuantity(rng, p.quantityWeights) }));
    if (category !== 'objects' && rng.bool(p.pDistractors)) {
      const others = allItems.filter((e) => e.category !== category && e.category !== 'objects');
      for (const d of rng.sample(others, rng.int(1, 2))) {
        entries.splice(rng.int(0, entries.length), 0, { ...d, quantity: drawQuantity(rng, p.quantityWeights) });
      }
    }
    const count = entries.filter((e) => e.category === category).reduce((s, e) => s + e.quantity, 0);
    return { fields: { items: bbhList(entries.map(phrase)), category }, target: String(count) };
  },
});

export const countItems = defineGenerator({
  name: 'count_items',
  description: 'How many words are in a comma-separated list.',
  fields: ['items'],
  defaultTemplate: 'How many items are in this list: {items}?',
  params: z.strictObject({ items: range(1, 20) }),
  sample(rng, p) {
    const n = rng.int(p.items.min, p.items.max);
    const items = Array.from({ length: n }, () => rng.pick(allItems).item.bare);
    return { fields: { items: items.join(', ') }, target: String(n) };
  },
});

export const sumQuantities = defineGenerator({
  name: 'sum_quantities',
  description: 'Total of quantities written as words ("two apples, a pear" → 3).',
  fields: ['items'],
  defaultTemplate: 'Add up the quantities: {items}. How many things is that in total?',
  params: z.strictObject({
    items: range(1, 12),
    quantityWeights: z.array(z.number().min(0)).min(1).max(5).default([0.4, 0.2, 0.15, 0.15, 0.1]),
  }),
  sample(rng, p) {
    const entries = rng
      .sample(allItems, rng.int(p.items.min, p.items.max))
      .map((e) => ({ ...e, quantity: drawQuantity(rng, p.quantityWeights) }));
    // Joined with plain commas (no "and"), so the list never reads like a BBH possession list.
    return {
      fields: { items: entries.map(phrase).join(', ') },
      target: String(entries.reduce((s, e) => s + e.quantity, 0)),
    };
  },
});

export const categoryOf = defineGenerator({
  name: 'category_of',
  description: 'Which category a thing belongs to (fruit, vegetable, musical instrument, animal, object).',
  fields: ['item'],
  defaultTemplate:
    'What kind of thing is {item}? Choose from: fruit, vegetable, musical instrument, animal, object.\nAnswer:',
  params: z.strictObject({}),
  sample(rng) {
    const e = rng.pick(allItems);
    return { fields: { item: e.item.one }, target: CATEGORY_SINGULAR[e.category] };
  },
});

export const countCategory = defineGenerator({
  name: 'count_category',
  description: 'How many things in a mixed list belong to one category.',
  fields: ['category', 'items'],
  defaultTemplate: 'How many of these are {category}: {items}?',
  params: z.strictObject({ items: range(1, 20) }),
  sample(rng, p) {
    const category = rng.pick(CATEGORIES);
    const n = rng.int(p.items.min, p.items.max);
    // Draw how many belong first, so counts spread over 0..n instead of clustering near n/5.
    const inside = allItems.filter((e) => e.category === category);
    const k = rng.int(0, Math.min(n, inside.length));
    const outside = allItems.filter((e) => e.category !== category);
    const chosen = rng.shuffle([...rng.sample(inside, k), ...rng.sample(outside, n - k)]);
    const count = chosen.filter((e) => e.category === category).length;
    return { fields: { category, items: chosen.map((e) => e.item.bare).join(', ') }, target: String(count) };
  },
});
