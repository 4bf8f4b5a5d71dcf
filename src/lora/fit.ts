/**
 * Whether a LoRA module fits a base model's Linears. Pure (no tensor library), so that merge
 * checks a module without loading tfjs (lora/apply.ts, which turns modules into tfjs deltas, did).
 * library/fingerprint.ts's shapeProblems is the library's list-of-problems form of the same check.
 */
import { LorahubError } from '../errors.ts';
import { t5LinearShape, type T5Config } from '../models/t5/config.ts';
import type { LoraModule, LoraTarget } from './module.ts';

/** Throws INCOMPATIBLE unless every target is a Linear of this model with matching shapes. */
export function checkModuleFitsModel(module: LoraModule, cfg: T5Config, modelName = 'the model'): void {
  for (const t of module.targets.values()) {
    const shape = t5LinearShape(cfg, t.path);
    if (!shape) {
      throw new LorahubError('INCOMPATIBLE', `module "${module.name}", key "${t.path}": no such Linear in ${modelName}`);
    }
    if (shape[0] !== t.dOut || shape[1] !== t.dIn) {
      throw new LorahubError(
        'INCOMPATIBLE',
        `module "${module.name}", key "${t.path}": base Linear is [${shape.join(', ')}] (out, in), module has [${t.dOut}, ${t.dIn}]`,
      );
    }
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
