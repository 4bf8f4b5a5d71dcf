/**
 * MERGE: folds a LoRA module into its base checkpoint, W ← W + scaling·(B A) (PEFT
 * `merge_and_unload`), and writes a normal HF folder: every other tensor and file unchanged.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LorahubError } from '../errors.ts';
import { writeFilesAtomic } from '../io/atomic.ts';
import { encodeSafetensors, SafetensorsFile, type TensorToWrite, type WritableDType } from '../io/safetensors.ts';
import { loadT5Config } from '../models/t5/config.ts';
import { weightsFile } from '../models/t5/checkpoint.ts';
import { checkModuleFitsModel } from './fit.ts';
import type { LoraModule, LoraTarget } from './module.ts';

/** W [dOut, dIn] + scaling·B[dOut, r]·A[r, dIn], in float32 like torch (the product accumulates in float64 here). */
export function mergedWeight(w: Float32Array, t: LoraTarget): Float32Array {
  const out = new Float32Array(w.length);
  const { r, dIn, dOut, a, b, scaling } = t;
  const row = new Float64Array(dIn);
  for (let o = 0; o < dOut; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k];
      if (bk === 0) continue;
      const ao = k * dIn;
      for (let i = 0; i < dIn; i++) row[i] += bk * a[ao + i];
    }
    const wo = o * dIn;
    for (let i = 0; i < dIn; i++) out[wo + i] = Math.fround(w[wo + i] + Math.fround(Math.fround(row[i]) * scaling));
  }
  return out;
}

const WRITABLE = new Set<string>(['F32', 'F16', 'BF16']);

/**
 * Writes `outDir` = the model in `modelDir` with `module` merged in. Tensors keep their names;
 * float tensors keep their dtype (half-precision weights are merged in float32, then rounded).
 * The folder appears atomically (written to a temp sibling, then renamed).
 */
export function mergeIntoCheckpoint(modelDir: string, module: LoraModule, outDir: string): { merged: string[] } {
  if (existsSync(outDir)) throw new LorahubError('BAD_ARGUMENT', `${outDir}: already exists (refusing to overwrite)`);
  const cfg = loadT5Config(modelDir);
  checkModuleFitsModel(module, cfg, modelDir);
  const file = weightsFile(modelDir);
  const st = SafetensorsFile.open(file);
  const merged: string[] = [];
  let tensors: TensorToWrite[];
  try {
    tensors = st.names().map((name) => {
      const info = st.info(name);
      if (!WRITABLE.has(info.dtype)) {
        throw new LorahubError('UNSUPPORTED', `${file}: tensor "${name}" has dtype ${info.dtype}; merge supports float checkpoints`);
      }
      const path = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
      const t = module.targets.get(path);
      let data = st.readFloat32(name);
      if (t) {
        data = mergedWeight(data, t);
        merged.push(path);
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
