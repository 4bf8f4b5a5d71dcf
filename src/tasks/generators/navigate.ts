/**
 * Walking on a grid (BBH navigate). Two kinds of instructions, as in BBH:
 *  - "Always face forward." then moves "Take N steps forward/backward/left/right." (no turning);
 *  - moves "Take N steps." along the current heading, mixed with "Turn left/right/around.".
 * Positions are simulated exactly; the answer is whether the walk ends at the start.
 */
import { z } from 'zod';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';

export type Direction = 'forward' | 'backward' | 'left' | 'right';
/** Unit vectors with forward = +y and right = +x. */
const DIR: Readonly<Record<Direction, readonly [number, number]>> = {
  forward: [0, 1],
  backward: [0, -1],
  left: [-1, 0],
  right: [1, 0],
};
const DIRECTIONS = Object.keys(DIR) as Direction[];
/** The directions of a walk along a line. */
const LINE: readonly Direction[] = ['forward', 'backward'];

const steps = (n: number): string => `${n} ${n === 1 ? 'step' : 'steps'}`;

export type Instruction =
  | { kind: 'move'; n: number; dir?: Direction }
  | { kind: 'turn'; turn: 'left' | 'right' | 'around' };

export function renderInstruction(i: Instruction): string {
  if (i.kind === 'turn') return `Turn ${i.turn}.`;
  return i.dir ? `Take ${steps(i.n)} ${i.dir}.` : `Take ${steps(i.n)}.`;
}

/** Final position and heading (0 = the initial facing, 1 = right of it, …). */
export function simulate(instructions: readonly Instruction[]): { x: number; y: number; heading: number } {
  let x = 0;
  let y = 0;
  let heading = 0;
  const headingVec: ReadonlyArray<readonly [number, number]> = [[0, 1], [1, 0], [0, -1], [-1, 0]];
  for (const ins of instructions) {
    if (ins.kind === 'turn') {
      heading = (heading + (ins.turn === 'right' ? 1 : ins.turn === 'left' ? 3 : 2)) % 4;
    } else {
      // A direction is relative to the current heading (which stays 0 under "Always face forward").
      const [dx, dy] = ins.dir ? rotate(DIR[ins.dir], heading) : headingVec[heading];
      x += dx * ins.n;
      y += dy * ins.n;
    }
  }
  return { x, y, heading };
}

function rotate([dx, dy]: readonly [number, number], heading: number): [number, number] {
  let v: [number, number] = [dx, dy];
  for (let i = 0; i < heading; i++) v = [v[1], -v[0]];
  return v;
}

const range = (lo: number, hi: number) =>
  z.strictObject({ min: z.number().int().min(lo), max: z.number().int().max(hi) }).refine((r) => r.min <= r.max, {
    message: 'min must be <= max',
  });

/** A move of 1..maxSteps steps in one of `dirs`, or along the current heading without them. */
function randomMove(rng: Rng, maxSteps: number, dirs?: readonly Direction[]): Instruction {
  return dirs ? { kind: 'move', n: rng.int(1, maxSteps), dir: rng.pick(dirs) } : { kind: 'move', n: rng.int(1, maxSteps) };
}

/** Moves that undo a displacement (each at most maxSteps), or undefined if that is impossible. */
function cancelling(x: number, y: number, maxSteps: number): Instruction[] | undefined {
  if (Math.abs(x) > maxSteps || Math.abs(y) > maxSteps) return undefined;
  const out: Instruction[] = [];
  if (x !== 0) out.push({ kind: 'move', n: Math.abs(x), dir: x > 0 ? 'left' : 'right' });
  if (y !== 0) out.push({ kind: 'move', n: Math.abs(y), dir: y > 0 ? 'backward' : 'forward' });
  return out;
}

/**
 * A walk facing one way, each move in one of `dirs` (a line or the grid's four). When want is Yes
 * it ends at the start: returning by chance is rare (a few percent), so it is built from random
 * moves, then the moves that undo them (one per axis the walk can leave), in a random order, so a
 * Yes walk is not told by its last moves. The label is still computed by simulate(), so a walk
 * for which no undoing moves fit maxSteps stays random and is labelled as it is.
 */
function oneWayWalk(rng: Rng, moves: number, maxSteps: number, dirs: readonly Direction[], want: boolean): Instruction[] {
  const random = (k: number): Instruction[] => Array.from({ length: k }, () => randomMove(rng, maxSteps, dirs));
  if (!want) return random(moves);
  const axes = new Set(dirs.map((d) => (DIR[d][0] !== 0 ? 'x' : 'y'))).size;
  for (let attempt = 0; attempt < 50; attempt++) {
    const head = random(Math.max(1, moves - axes));
    const { x, y } = simulate(head);
    const tail = cancelling(x, y, maxSteps);
    if (tail) return rng.shuffle([...head, ...tail]);
  }
  return random(moves);
}

function turningWalk(rng: Rng, count: number, maxSteps: number, pTurn: number, want: boolean): Instruction[] {
  const random = (k: number): Instruction[] =>
    Array.from({ length: k }, () =>
      rng.bool(pTurn) ? { kind: 'turn', turn: rng.pick(['left', 'right', 'around'] as const) } : randomMove(rng, maxSteps),
    );
  // BBH's turning walks always take steps somewhere; a walk of turns alone would be a trivial Yes.
  const withMove = (walk: Instruction[]): Instruction[] => {
    if (!walk.some((i) => i.kind === 'move')) walk[rng.int(0, walk.length - 1)] = randomMove(rng, maxSteps);
    return walk;
  };
  if (!want) return withMove(random(count));
  // A Yes walk: random instructions that end on an axis through the start, then turn to face it
  // and walk back (count - 1 or count instructions).
  for (let attempt = 0; attempt < 200; attempt++) {
    const head = random(Math.max(2, count - 2));
    const { x, y, heading } = simulate(head);
    if (x !== 0 && y !== 0) continue;
    const dist = Math.abs(x) + Math.abs(y);
    if (dist === 0 || dist > maxSteps) continue;
    // Heading index of the direction pointing back at the start.
    const home = y > 0 ? 2 : y < 0 ? 0 : x > 0 ? 3 : 1;
    const delta = (home - heading + 4) % 4;
    const turn: Instruction[] = delta === 0 ? [] : [{ kind: 'turn', turn: delta === 1 ? 'right' : delta === 3 ? 'left' : 'around' }];
    return [...head, ...turn, { kind: 'move', n: dist }];
  }
  return withMove(random(count));
}

/**
 * returns-to-start without BBH's wording: no "Always face forward." and no turns, so no BBH
 * navigate instruction list can occur in its inputs (the leakage tests check every format).
 */
export const returnStart = defineGenerator({
  name: 'return_start',
  description: 'Does a walk along a line (or on a grid, facing one way) end where it began?',
  fields: ['moves'],
  defaultTemplate: 'You start at 0 on a line. {moves} Are you back at 0? Answer Yes or No.',
  params: z.strictObject({ moves: range(1, 12), maxSteps: z.number().int().min(1).max(20).default(10), walk: z.enum(['line', 'grid']).default('line') }),
  sample(rng, p, want) {
    const walk = oneWayWalk(rng, rng.int(p.moves.min, p.moves.max), p.maxSteps, p.walk === 'grid' ? DIRECTIONS : LINE, want === 'Yes');
    const { x, y } = simulate(walk);
    return { fields: { moves: walk.map(renderInstruction).join(' ') }, target: x === 0 && y === 0 ? 'Yes' : 'No' };
  },
});

export const bbhNavigate = defineGenerator({
  name: 'bbh_navigate',
  description: 'BBH navigate: do these steps (facing forward, or with turns) return to the start?',
  fields: ['instructions'],
  defaultTemplate:
    'If you follow these instructions, do you return to the starting point? {instructions}\nOptions:\n- Yes\n- No',
  core: { field: 'instructions', rule: 'substring' },
  params: z.strictObject({
    /** Moves after "Always face forward." (BBH: 2–9). */
    moves: range(1, 20).default({ min: 2, max: 9 }),
    /** Instructions of the turning kind (BBH: 3–10). */
    instructions: range(1, 20).default({ min: 3, max: 10 }),
    maxSteps: z.number().int().min(1).max(20).default(10),
    /** Share of walks of the turning kind (BBH: 128 of 250). */
    pTurning: z.number().min(0).max(1).default(0.5),
    /** Chance that an instruction of a turning walk is a turn. */
    pTurn: z.number().min(0).max(1).default(0.3),
  }),
  sample(rng, p, want) {
    const yes = want === 'Yes';
    const turning = rng.bool(p.pTurning);
    const walk = turning
      ? turningWalk(rng, rng.int(p.instructions.min, p.instructions.max), p.maxSteps, p.pTurn, yes)
      : oneWayWalk(rng, rng.int(p.moves.min, p.moves.max), p.maxSteps, DIRECTIONS, yes);
    const sentences = walk.map(renderInstruction);
    if (!turning) sentences.unshift('Always face forward.');
    const { x, y } = simulate(walk);
    return { fields: { instructions: sentences.join(' ') }, target: x === 0 && y === 0 ? 'Yes' : 'No' };
  },
});

export const stepsLine = defineGenerator({
  name: 'steps_line',
  description: 'Net position after steps forward and backward along a line.',
  fields: ['moves'],
  defaultTemplate: 'You start at 0 and forward is positive. {moves} Where are you now?',
  params: z.strictObject({ moves: range(1, 12), maxSteps: z.number().int().min(1).max(20).default(10) }),
  sample(rng, p) {
    const walk = Array.from({ length: rng.int(p.moves.min, p.moves.max) }, () => randomMove(rng, p.maxSteps, LINE));
    return { fields: { moves: walk.map(renderInstruction).join(' ') }, target: String(simulate(walk).y) };
  },
});

export const gridPosition = defineGenerator({
  name: 'grid_position',
  description: 'Position (x, y) after moves forward/backward/left/right, facing one way throughout.',
  fields: ['moves'],
  defaultTemplate: 'Start at (0, 0); forward is +y and right is +x. {moves} What is your position?',
  params: z.strictObject({ moves: range(1, 12), maxSteps: z.number().int().min(1).max(20).default(10) }),
  sample(rng, p) {
    const walk = Array.from({ length: rng.int(p.moves.min, p.moves.max) }, () => randomMove(rng, p.maxSteps, DIRECTIONS));
    const { x, y } = simulate(walk);
    return { fields: { moves: walk.map(renderInstruction).join(' ') }, target: `(${x}, ${y})` };
  },
});

const COMPASS = ['north', 'east', 'south', 'west'] as const;

export const headingTurns = defineGenerator({
  name: 'heading_turns',
  description: 'Which way you face after a few turns.',
  fields: ['start', 'turns'],
  defaultTemplate: 'You are facing {start}. {turns} Which direction are you facing now?',
  params: z.strictObject({ turns: range(1, 12) }),
  sample(rng, p) {
    const start = rng.int(0, 3);
    const turns: Instruction[] = Array.from({ length: rng.int(p.turns.min, p.turns.max) }, () => ({
      kind: 'turn',
      turn: rng.pick(['left', 'right', 'around'] as const),
    }));
    const { heading } = simulate(turns);
    return {
      fields: { start: COMPASS[start], turns: turns.map(renderInstruction).join(' ') },
      target: COMPASS[(start + heading) % 4],
    };
  },
});

export const walkTurns = defineGenerator({
  name: 'walk_turns',
  description: 'Position after walking with turns (phrased "Walk N steps." unlike BBH\'s "Take N steps.").',
  fields: ['moves'],
  defaultTemplate: 'You start at (0, 0) facing north (+y); east is +x. {moves} Where are you now?',
  params: z.strictObject({ moves: range(1, 12), maxSteps: z.number().int().min(1).max(20).default(10) }),
  sample(rng, p) {
    const walk: Instruction[] = [];
    const n = rng.int(p.moves.min, p.moves.max);
    for (let i = 0; i < n; i++) {
      walk.push(i % 2 === 1 && rng.bool(0.7)
        ? { kind: 'turn', turn: rng.pick(['left', 'right', 'around'] as const) }
        : { kind: 'move', n: rng.int(1, p.maxSteps) });
    }
    const text = walk.map((i) => (i.kind === 'turn' ? `Turn ${i.turn}.` : `Walk ${steps(i.n)}.`)).join(' ');
    const { x, y } = simulate(walk);
    return { fields: { moves: text }, target: `(${x}, ${y})` };
  },
});
