/**
 * Truth-teller chains (BBH web_of_lies): the first person tells the truth or lies; each next one
 * says the previous one tells the truth or lies. A claim is true exactly when the speaker tells
 * the truth, so each person's honesty is (previous honesty == claim).
 */
import { z } from 'zod';
import type { Rng } from '../../rng.ts';
import { defineGenerator } from './define.ts';
import { drawNames, FACTS, NAME_SOURCES, type NameSource } from './vocab.ts';

/** The statements of a chain: "A tells the truth. B says A lies. …" (BBH's wording). */
export function chainStatements(names: readonly string[], firstHonest: boolean, claims: readonly boolean[]): string {
  const parts = [`${names[0]} ${firstHonest ? 'tells the truth' : 'lies'}.`];
  claims.forEach((claim, i) => parts.push(`${names[i + 1]} says ${names[i]} ${claim ? 'tells the truth' : 'lies'}.`));
  return parts.join(' ');
}

interface Chain {
  statements: string;
  last: string;
  truthful: boolean;
}

const namesParam = z.enum(NAME_SOURCES).default('listed');

function drawChain(rng: Rng, people: number, nameSource: NameSource = 'listed'): Chain {
  const names = drawNames(rng, people, nameSource);
  const firstHonest = rng.bool();
  const claims = Array.from({ length: people - 1 }, () => rng.bool());
  // A claim about the previous person is true exactly when the speaker is honest.
  const truthful = claims.reduce((honest, claim) => honest === claim, firstHonest);
  return { statements: chainStatements(names, firstHonest, claims), last: names[people - 1], truthful };
}

export const bbhWebOfLies = defineGenerator({
  name: 'bbh_web_of_lies',
  description: 'BBH web_of_lies: a chain of five people; does the last one tell the truth?',
  fields: ['problem'],
  defaultTemplate: 'Question: {problem}',
  core: { field: 'problem', rule: 'substring' },
  params: z.strictObject({ people: z.number().int().min(2).max(12).default(5) }),
  sample(rng, p) {
    const c = drawChain(rng, p.people);
    return { fields: { problem: `${c.statements} Does ${c.last} tell the truth?` }, target: c.truthful ? 'Yes' : 'No' };
  },
});

export const truthChain = defineGenerator({
  name: 'truth_chain',
  description: 'A truth-teller chain of any length but BBH\'s five.',
  fields: ['statements', 'name'],
  defaultTemplate: '{statements} Does {name} tell the truth? Answer Yes or No.',
  // people: a range of at most four, or a list of lengths. Five is refused: every BBH web_of_lies
  // chain has five people, and a chain of another length holds no complete five-person problem
  // (it opens with its only "X lies." / "X tells the truth."), so no BBH input can occur here. With
  // lengths on both sides of five, BBH's length is met by interpolation, as the boolean tasks skip
  // BBH's 8 tokens. names: "mixed" coins half of them (vocab.ts, coinedName).
  params: z.strictObject({
    people: z.union([
      z
        .strictObject({ min: z.number().int().min(1), max: z.number().int().max(4) })
        .refine((r) => r.min <= r.max, { message: 'people.min must be <= people.max' }),
      z
        .array(z.number().int().min(1).max(12))
        .min(1)
        .refine((xs) => !xs.includes(5), { message: 'people must not include 5 (BBH web_of_lies\' chain length)' }),
    ]),
    names: namesParam,
  }),
  sample(rng, p) {
    const people = Array.isArray(p.people) ? rng.pick(p.people) : rng.int(p.people.min, p.people.max);
    const c = drawChain(rng, people, p.names);
    return { fields: { statements: c.statements, name: c.last }, target: c.truthful ? 'Yes' : 'No' };
  },
});

export const truthClaim = defineGenerator({
  name: 'truth_claim',
  description: 'One step of trust: someone who lies or tells the truth states a fact; is it so?',
  fields: ['name', 'honesty', 'fact', 'question'],
  defaultTemplate: '{name} {honesty}. {name} says {fact}. {question}',
  params: z.strictObject({ names: namesParam }),
  sample(rng, p) {
    const honest = rng.bool();
    const negated = rng.bool();
    const [fact, question] = rng.pick(FACTS);
    // Every fact has the form "<subject> is <state>", so " is " → " is not " negates it.
    const said = negated ? fact.replace(' is ', ' is not ') : fact;
    // What a truth-teller says holds; what a liar says does not.
    const factHolds = honest !== negated;
    return {
      fields: { name: drawNames(rng, 1, p.names)[0], honesty: honest ? 'tells the truth' : 'lies', fact: said, question },
      target: factHolds ? 'Yes' : 'No',
    };
  },
});
