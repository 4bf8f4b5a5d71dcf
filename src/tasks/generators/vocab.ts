/**
 * Word lists written for lorahub (not taken from BBH). Common English nouns and names: the tiny
 * model learns from them, and BBH's own vocabulary is only ever seen at evaluation.
 */
import type { Rng } from '../../rng.ts';

/**
 * Lower-case ASCII words for sorting tasks, alphabetical. Split in two by position (even → the
 * word_sorting target, odd → upstream tasks) so that no word list of the target can appear in
 * upstream data, while both halves still cover every initial letter.
 */
export const WORDS: readonly string[] = `
able acid actor adult agent alarm album alley amber angle ankle apple apron arena army arrow artist
aspen atlas attic aunt autumn avenue award axis baby bacon badge bagel baker ball bamboo banjo bank
barn barrel basket beach beard beaver bell belt bench berry bicycle bird biscuit blade blanket block
bloom board boat bonnet book boot bottle bowl box brain branch bread brick bridge brook broom bubble
bucket budget bundle butter button cabin cable cactus camel camera canal candle canoe canvas canyon
captain carpet carrot castle cattle cave cellar chain chalk channel chapel cheese cherry chimney
church cider circle city clay cliff clock cloud clover coach coast cobalt coffee coin collar comet
copper coral corner cotton cousin cradle crane crayon creek crown crystal cup curtain cushion daisy
dancer dawn desert diamond dinner doctor dolphin donkey door dragon drawer dream drum duck dune eagle
earth easel echo elbow ember engine envelope falcon farmer feather fence ferry fiddle field finger
flag flame flute forest fossil fountain fox frame garden garlic gate gem giant ginger glacier glass
globe glove goat gold grape gravel guitar hammer harbor harp harvest hat hazel helmet hermit hill
honey hook horizon horse hotel island ivory jacket jaguar jar jelly jewel jungle kettle key kitten
kiwi knee knot ladder lagoon lake lamp lantern lava lemon lens letter lily lime linen lion lizard
lobster locket lumber magnet maple marble market meadow melon metal meteor mill mirror mitten monkey
moon mosaic moss motor mountain muffin museum needle nest nickel noodle north novel nut oak oasis
ocean olive onion opera orbit orchard otter oven owl paddle palace panda paper parade parrot pasta
pearl pebble pencil pepper piano pickle pigeon pillow pilot pine planet plum pocket poem pond poppy
powder prism pump puppet puzzle quarry quartz queen quill quilt rabbit radio rain raven reef ribbon
rice river robin rocket roof rope rose ruby saddle sail salad salmon sand satin scarf school scroll
seal shadow shell shield ship shovel silk silver sketch sled slipper smoke snail socket soup spade
spice spider spoon spring squid stable stamp star statue stone storm straw stream sugar summit sun
swan sweater table tablet teapot temple thimble thread thunder ticket tiger timber toast tomato
tower trail train tulip tunnel turtle umbrella valley vase velvet violin volcano wagon walnut walrus
wander water whale wheat wheel whistle willow window winter wizard wolf wool yacht yarn yogurt zebra
zero zipper
`
  .split(/\s+/)
  .filter((w) => w !== '');

export const TARGET_WORDS: readonly string[] = WORDS.filter((_, i) => i % 2 === 0);
export const UPSTREAM_WORDS: readonly string[] = WORDS.filter((_, i) => i % 2 === 1);

/** First names for web_of_lies and swap stories. */
export const NAMES: readonly string[] = `
Aaron Abby Adele Alma Amos Ana Anton Ari Bea Ben Bess Boris Brett Cara Cecil Cleo Cora Dale Dana
Dara Dean Della Dina Dora Drew Edgar Edith Elsa Emil Enzo Erin Ezra Fay Felix Flora Fred Gail Gil
Gina Greta Gus Hana Hank Hugo Ida Igor Ines Ira Iris Ivan Jada Jake Jan Jill Joel Jude Kai Kara Kurt
Lars Lena Leon Lila Luca Lyle Mara Max Mina Milo Nell Nico Nina Noel Nora Olga Omar Otto Paz Pia
Quin Rafe Rita Rosa Ruth Saul Sara Seth Tara Theo Tia Tom Uma Vera Wade Wren Yara Zane Zoe
`
  .split(/\s+/)
  .filter((w) => w !== '');

/**
 * Coined names (2–3 syllables from our own onsets, vowels and codas: "Brialun", "Kota"). Real
 * text names people from an open class, and BBH's names are mostly not in NAMES: a word-level
 * vocabulary spells them in characters. A task that draws half its names here teaches a model to
 * read a name of several pieces, since a coined name almost never recurs (about 10⁵ possible).
 */
const ONSETS = ['b', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'ch', 'sh', 'br', 'tr', 'gl', 'kr'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ee', 'ia'];
const CODAS = ['', '', '', 'n', 'l', 'r', 's', 'th', 'x'];

export function coinedName(rng: Rng): string {
  const syllables = rng.int(2, 3);
  let w = '';
  for (let i = 0; i < syllables; i++) w += rng.pick(ONSETS) + rng.pick(VOWELS) + (i === syllables - 1 ? rng.pick(CODAS) : '');
  return w[0].toUpperCase() + w.slice(1);
}

/** Where a task's names come from: NAMES only, or half of them coined. */
export const NAME_SOURCES = ['listed', 'mixed'] as const;
export type NameSource = (typeof NAME_SOURCES)[number];

/** `k` distinct names: with `mixed`, half the draws coin them (coinedName), half pick from NAMES. */
export function drawNames(rng: Rng, k: number, names: NameSource): string[] {
  if (names === 'listed' || rng.bool()) return rng.sample(NAMES, k);
  const out = new Set<string>();
  while (out.size < k) out.add(coinedName(rng));
  return [...out];
}

/** A countable noun with the forms object_counting needs. */
export interface Item {
  /** Singular with its indefinite article, e.g. "an apple", "a head of broccoli". */
  one: string;
  /** Plural, e.g. "apples", "heads of broccoli". */
  many: string;
  /** Singular without article, e.g. "apple". */
  bare: string;
}

function items(spec: string): Item[] {
  // "apple/apples" or "head of broccoli/heads of broccoli"; the article follows the first letter,
  // with "a!" forcing "a" where the sound differs from the spelling (a ukulele).
  return spec
    .trim()
    .split(/\s*;\s*/)
    .map((entry) => {
      const forceA = entry.startsWith('a!');
      const [one, many] = (forceA ? entry.slice(2) : entry).split('/');
      const article = !forceA && /^[aeiou]/.test(one) ? 'an' : 'a';
      return { one: `${article} ${one}`, many, bare: one };
    });
}

export type Category = 'fruits' | 'vegetables' | 'musical instruments' | 'animals' | 'objects';

export const ITEMS: Readonly<Record<Category, readonly Item[]>> = {
  fruits: items(`apple/apples; banana/bananas; cherry/cherries; grape/grapes; lemon/lemons; lime/limes;
    mango/mangoes; melon/melons; orange/oranges; peach/peaches; pear/pears; plum/plums; kiwi/kiwis;
    apricot/apricots; fig/figs; raspberry/raspberries; strawberry/strawberries; blueberry/blueberries;
    blackberry/blackberries; nectarine/nectarines; papaya/papayas; coconut/coconuts; pineapple/pineapples`),
  vegetables: items(`carrot/carrots; potato/potatoes; onion/onions; cabbage/cabbages; cauliflower/cauliflowers;
    head of broccoli/heads of broccoli; stalk of celery/stalks of celery; head of lettuce/heads of lettuce;
    yam/yams; turnip/turnips; radish/radishes; leek/leeks; beet/beets; parsnip/parsnips; eggplant/eggplants;
    artichoke/artichokes; zucchini/zucchinis; bulb of garlic/bulbs of garlic`),
  'musical instruments': items(`piano/pianos; flute/flutes; violin/violins; trumpet/trumpets; trombone/trombones;
    clarinet/clarinets; drum/drums; accordion/accordions; guitar/guitars; harp/harps; cello/cellos;
    saxophone/saxophones; tuba/tubas; oboe/oboes; banjo/banjos; harmonica/harmonicas; a!ukulele/ukuleles;
    xylophone/xylophones`),
  animals: items(`dog/dogs; cat/cats; cow/cows; pig/pigs; goat/goats; horse/horses; duck/ducks; chicken/chickens;
    rabbit/rabbits; mouse/mice; frog/frogs; snake/snakes; snail/snails; bear/bears; donkey/donkeys;
    goose/geese; lion/lions; tiger/tigers; zebra/zebras; giraffe/giraffes; monkey/monkeys; owl/owls;
    elephant/elephants; fox/foxes; wolf/wolves; turtle/turtles`),
  objects: items(`chair/chairs; table/tables; bed/beds; couch/couches; lamp/lamps; stove/stoves; oven/ovens;
    fridge/fridges; microwave/microwaves; toaster/toasters; car/cars; desk/desks; bookcase/bookcases;
    dresser/dressers; mirror/mirrors; kettle/kettles; blender/blenders; dishwasher/dishwashers; rug/rugs;
    clock/clocks`),
};

export const CATEGORIES: readonly Category[] = ['fruits', 'vegetables', 'musical instruments', 'animals', 'objects'];

/** Singular category names for "what kind of thing is …" questions. */
export const CATEGORY_SINGULAR: Readonly<Record<Category, string>> = {
  fruits: 'fruit',
  vegetables: 'vegetable',
  'musical instruments': 'musical instrument',
  animals: 'animal',
  objects: 'object',
};

/** Swap-story inventories (tracking_shuffled_objects), our own lists. */
export const BOOKS: readonly string[] = [
  'Moby Dick', 'Dracula', 'Emma', 'Hamlet', 'Beloved', 'Dune', 'Walden', 'Middlemarch', 'Persuasion',
  'Rebecca', 'Ivanhoe', 'Candide', 'Siddhartha', 'The Iliad', 'Jane Eyre', 'Great Expectations',
  'War and Peace', 'Anna Karenina', 'The Hobbit', 'Little Women', 'Don Quixote', 'Treasure Island',
  'The Trial', 'Oliver Twist', 'Animal Farm', 'Heart of Darkness', 'Macbeth', 'Othello',
];
/** Colours spelt with a consonant first, so "a <colour> ball" is always grammatical (BBH never uses "an"). */
export const COLORS: readonly string[] = [
  'red', 'blue', 'green', 'yellow', 'purple', 'pink', 'white', 'black', 'brown', 'gray', 'gold', 'silver',
  'teal', 'maroon', 'navy', 'crimson', 'lavender', 'turquoise', 'magenta', 'beige',
];
export const POSITIONS: readonly string[] = [
  'goalkeeper', 'striker', 'left winger', 'right winger', 'center midfielder', 'left midfielder',
  'right midfielder', 'fullback', 'sweeper', 'center back', 'left back', 'right back', 'playmaker',
];

/** Facts for "X lies. X says <fact>. Is <fact>?" questions: statement and yes/no question. */
export const FACTS: ReadonlyArray<readonly [string, string]> = [
  ['the door is open', 'Is the door open?'],
  ['it is raining', 'Is it raining?'],
  ['the lamp is on', 'Is the lamp on?'],
  ['the cake is ready', 'Is the cake ready?'],
  ['the shop is closed', 'Is the shop closed?'],
  ['the river is frozen', 'Is the river frozen?'],
  ['the train is late', 'Is the train late?'],
  ['the box is empty', 'Is the box empty?'],
  ['the tea is hot', 'Is the tea hot?'],
  ['the gate is locked', 'Is the gate locked?'],
  ['the dog is asleep', 'Is the dog asleep?'],
  ['the road is wet', 'Is the road wet?'],
];
