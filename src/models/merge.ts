/**
 * MERGE: folds a LoRA module into its base checkpoint, W ← W + scaling·(B A) (PEFT
 * `merge_and_unload`; the arithmetic is lora/merge.ts's), and writes a normal HF folder: every
 * other tensor and file unchanged. Any family (models/index.ts): its weight table says which
 * stored tensor a module path is, and whether it is a Conv1D stored [in, out].
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LorahubError } from '../errors.ts';
import { writeFilesAtomic } from '../io/atomic.ts';
import { encodeSafetensors, SafetensorsFile, type TensorToWrite, type WritableDType } from '../io/safetensors.ts';
import { checkModuleFitsModel } from '../lora/fit.ts';
import { mergedWeight } from '../lora/merge.ts';
import type { LoraModule } from '../lora/module.ts';
import { loadArch } from './index.ts';
import { weightsFile } from './t5/checkpoint.ts';

const WRITABLE = new Set<string>(['F32', 'F16', 'BF16']);

/**
 * Writes `outDir` = the model in `modelDir` with `module` merged in. Tensors keep their names;
 * float tensors keep their dtype (half-precision weights are merged in float32, then rounded).
 * The folder appears atomically (written to a temp sibling, then renamed).
 */
export function mergeIntoCheckpoint(modelDir: string, module: LoraModule, outDir: string): { merged: string[] } {
  if (existsSync(outDir)) throw new LorahubError('BAD_ARGUMENT', `${outDir}: already exists (refusing to overwrite)`);
  const arch = loadArch(modelDir);
  checkModuleFitsModel(module, arch, modelDir);
  const file = weightsFile(modelDir);
  const st = SafetensorsFile.open(file);
  const merged: string[] = [];
  let tensors: TensorToWrite[];
  try {
    // A stored name → the module path its table entry is (GPT-2 files may lack "transformer.").
    const pathOf = new Map(arch.resolveCheckpoint(st).map(({ entry, name }) => [name, entry.hf.endsWith('.weight') ? entry.hf.slice(0, -'.weight'.length) : entry.hf]));
    tensors = st.names().map((name) => {
      const info = st.info(name);
      if (!WRITABLE.has(info.dtype)) {
        throw new LorahubError('UNSUPPORTED', `${file}: tensor "${name}" has dtype ${info.dtype}; merge supports float checkpoints`);
      }
      const path = pathOf.get(name);
      const t = path === undefined ? undefined : module.targets.get(path);
      let data = st.readFloat32(name);
      if (t) {
        data = mergedWeight(data, t, arch.fanInFanOut(t.path));
        merged.push(t.path);
      }
      return { name, dtype: info.dtype as WritableDType, shape: info.shape, data };
    });
  } finally {
    st.close();
  }
  const missing = [...module.targets.keys()].filter((p) => !merged.includes(p));
  if (missing.length > 0) throw new LorahubError('BAD_FILE', `${file}: no tensor "${missing[0]}.weight" to merge into`);
  const files = readdirSync(modelDir).filter((f) => statSync(join(modelDir, f)).isFile() && f !== 'model.safetensors');
  // The other files (config, tokenizer, generation config) are copied verbatim.
  writeFilesAtomic(outDir, [
    ...files.map((f) => ({ name: f, data: readFileSync(join(modelDir, f)) })),
    { name: 'model.safetensors', data: encodeSafetensors(tensors, { format: 'pt' }) },
  ]);
  return { merged };
}
