/**
 * Whether a LoRA module fits a base model's Linears, and populations of modules as per-target
 * groups. Pure, and free of any model family: a model is described by its Linears' shapes
 * (a family's `linearShape`, models/family.ts), so merge, the library and both engines share it.
 */
import { LorahubError } from '../errors.ts';
import type { LoraModule, LoraTarget } from './module.ts';

/** What a model offers a LoRA (a family's Arch has both): its Linears, by PEFT module path. */
export interface LinearLayout {
  /** [dOut, dIn] (PEFT's out_features, in_features) of the Linear at a path, or undefined. */
  linearShape(path: string): [number, number] | undefined;
  /** True where the base layer stores its weight [in, out] (GPT-2's Conv1D); absent: never. */
  fanInFanOut?(path: string): boolean;
}

/**
 * Every target of `module` that is not a Linear of the model with the module's [dOut, dIn], or
 * whose adapter_config.json `fan_in_fan_out` disagrees with the base layer's weight layout (PEFT
 * flips a wrong flag with a warning; merging into the wrong layout would be silently wrong): one
 * message per offending key. Empty when the module fits.
 */
/** What fitting reads of a module (a LoraModule, or a module stack's first module and targets). */
export interface FitSubject {
  name?: string;
  targets: ReadonlyMap<string, Pick<LoraTarget, 'path' | 'dIn' | 'dOut'>>;
  config?: Pick<LoraModule['config'], 'fan_in_fan_out'>;
}

export function fitProblems(module: FitSubject, model: LinearLayout): string[] {
  const problems: string[] = [];
  for (const t of module.targets.values()) {
    const shape = model.linearShape(t.path);
    if (!shape) {
      problems.push(`key ${t.path}: no such Linear in the base model`);
    } else if (shape[0] !== t.dOut || shape[1] !== t.dIn) {
      problems.push(`key ${t.path}: expected [dOut, dIn] = [${shape[0]}, ${shape[1]}] (base), got [${t.dOut}, ${t.dIn}] (module)`);
    } else if (module.config && (model.fanInFanOut?.(t.path) ?? false) !== module.config.fan_in_fan_out) {
      const conv = model.fanInFanOut?.(t.path) ?? false;
      problems.push(
        `key ${t.path}: adapter_config.json "fan_in_fan_out" is ${module.config.fan_in_fan_out}, but the base layer stores its weight ${conv ? '[in, out] (a Conv1D: PEFT needs true)' : '[out, in] (a Linear: PEFT needs false)'}`,
      );
    }
  }
  return problems;
}

/** Throws INCOMPATIBLE, naming the module, the model and the first offending key, unless the module fits. */
export function checkModuleFitsModel(module: FitSubject & { name: string }, model: LinearLayout, modelName = 'the model'): void {
  const problems = fitProblems(module, model);
  if (problems.length > 0) {
    throw new LorahubError('INCOMPATIBLE', `module "${module.name}" does not fit ${modelName}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
}

/**
 * A population (one module per candidate) as per-target groups, paths sorted: every module must
 * have the same targets with the same ranks (true for compositions of one module list), which
 * both engines need to score the candidates in one pass. Throws INCOMPATIBLE naming the first
 * module or key that differs.
 */
export function populationTargets(modules: readonly Pick<LoraModule, 'name' | 'targets'>[]): { path: string; targets: LoraTarget[] }[] {
  if (modules.length === 0) return [];
  const paths = [...modules[0].targets.keys()].sort();
  for (const m of modules) {
    if (m.targets.size !== paths.length || paths.some((p) => !m.targets.has(p))) {
      throw new LorahubError('INCOMPATIBLE', `module "${m.name}": targets differ from "${modules[0].name}"`);
    }
  }
  return paths.map((path) => {
    const targets = modules.map((m) => m.targets.get(path) as LoraTarget);
    if (targets.some((t) => t.r !== targets[0].r)) throw new LorahubError('INCOMPATIBLE', `key "${path}": ranks differ between candidates`);
    return { path, targets };
  });
}
