/**
 * Whether a LoRA module fits a base model's Linears. Pure (no tensor library), so that merge
 * checks a module without loading tfjs (lora/apply.ts, which turns modules into tfjs deltas, did).
 * library/fingerprint.ts's shapeProblems is the library's list-of-problems form of the same check.
 */
import { LorahubError } from '../errors.ts';
import { t5LinearShape, type T5Config } from '../models/t5/config.ts';
import type { LoraModule } from './module.ts';

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
