/**
 * PEFT LoRA adapters on disk: `adapter_config.json` + `adapter_model.safetensors` (or the older
 * `adapter_model.bin`), read into / written from the in-memory LoraModule.
 *
 * Conventions followed (PEFT, src/peft/tuners/lora/{config,layer,model}.py, utils/save_and_load.py):
 * - Keys are `base_model.model.<module path>.lora_A.weight` / `.lora_B.weight`; PEFT strips the
 *   adapter name when saving and some tools keep it (`.lora_A.default.weight`): both are read.
 * - lora_A is an nn.Linear(in, r) → weight [r, dIn]; lora_B an nn.Linear(r, out) → weight [dOut, r].
 * - scaling = alpha / r, or alpha / sqrt(r) with `use_rslora`, where r and alpha come from
 *   `rank_pattern` / `alpha_pattern` when a pattern key matches the module (PEFT `get_pattern_key`).
 *
 * `fan_in_fan_out` decision: PEFT creates lora_A/lora_B with the SAME layouts whatever the flag (for a
 * GPT-2 Conv1D base it reads in/out features from the [in, out] base weight and transposes only the
 * merged delta, layer.py `get_delta_weight`). So stored A/B are never transposed; the flag describes
 * the base weight. We read A/B as stored, keep the flag in the config and write it back unchanged;
 * whoever merges into a fan_in_fan_out base weight ([dIn, dOut]) must transpose B·A.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LorahubError } from '../errors.ts';
import type { LoraConfig, LoraModule, LoraTarget } from '../lora/module.ts';
import { writeFilesAtomic } from './atomic.ts';
import { encodeSafetensors, SafetensorsFile, type TensorToWrite } from './safetensors.ts';
import { readTorchBin } from './torch-bin.ts';

export const CONFIG_FILE = 'adapter_config.json';
export const SAFETENSORS_FILE = 'adapter_model.safetensors';
export const BIN_FILE = 'adapter_model.bin';
/** PeftModel wraps the base model twice: PeftModel.base_model (LoraModel) .model (the HF model). */
export const PEFT_PREFIX = 'base_model.model.';

export function peftKey(modulePath: string, which: 'A' | 'B'): string {
  return `${PEFT_PREFIX}${modulePath}.lora_${which}.weight`;
}

// ---------------------------------------------------------------------------------------------
// adapter_config.json

/** LoraConfig's defaults (PEFT tuners/lora/config.py), used only when a field is absent. */
const DEFAULTS = Object.freeze({ r: 8, lora_alpha: 8, lora_dropout: 0, bias: 'none', fan_in_fan_out: false, use_rslora: false });

/** Fields normalised into LoraConfig; every other field is kept verbatim in `extra`. */
const TYPED_FIELDS = new Set([
  'peft_type',
  'task_type',
  'base_model_name_or_path',
  'r',
  'lora_alpha',
  'target_modules',
  'lora_dropout',
  'bias',
  'fan_in_fan_out',
  'use_rslora',
  'rank_pattern',
  'alpha_pattern',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unsupported(file: string, message: string): never {
  throw new LorahubError('UNSUPPORTED', `${file}: ${message}`);
}

function badConfig(file: string, message: string, cause?: unknown): never {
  throw new LorahubError('BAD_CONFIG', `${file}: ${message}`, cause === undefined ? undefined : { cause });
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A present, non-null, non-empty value (PEFT treats null / [] / {} as "feature off"). */
function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return true;
}

export function parseLoraConfig(json: unknown, file: string): LoraConfig {
  if (!isObject(json)) badConfig(file, 'adapter config is not a JSON object');
  const c = json;
  if (c.peft_type === undefined) badConfig(file, 'missing "peft_type" (not a PEFT adapter config?)');
  if (c.peft_type !== 'LORA') unsupported(file, `peft_type ${JSON.stringify(c.peft_type)} is not supported (only LORA)`);
  // Variants that change the forward pass or save extra weights: refuse by name rather than load wrong.
  if (c.use_dora === true) unsupported(file, 'use_dora: true — DoRA is not supported');
  if (isSet(c.lora_bias)) unsupported(file, 'lora_bias: true — LoRA bias terms are not supported');
  if (isSet(c.modules_to_save)) {
    unsupported(file, `modules_to_save ${JSON.stringify(c.modules_to_save)} is not supported (fully trained modules)`);
  }
  if (isSet(c.layer_replication)) unsupported(file, 'layer_replication is not supported');
  if (isSet(c.alora_invocation_tokens)) unsupported(file, 'activated LoRA (alora_invocation_tokens) is not supported');
  const bias = c.bias ?? DEFAULTS.bias;
  if (bias !== 'none') unsupported(file, `bias ${JSON.stringify(bias)} is not supported (only "none")`);

  const r = c.r ?? DEFAULTS.r;
  if (!isPositiveInt(r)) badConfig(file, `"r" must be a positive integer, got ${JSON.stringify(c.r)}`);
  const alpha = c.lora_alpha ?? DEFAULTS.lora_alpha;
  if (!isFiniteNumber(alpha)) badConfig(file, `"lora_alpha" must be a number, got ${JSON.stringify(c.lora_alpha)}`);
  const dropout = c.lora_dropout ?? DEFAULTS.lora_dropout;
  if (!isFiniteNumber(dropout) || dropout < 0 || dropout > 1) {
    badConfig(file, `"lora_dropout" must be a number in [0, 1], got ${JSON.stringify(c.lora_dropout)}`);
  }
  for (const flag of ['fan_in_fan_out', 'use_rslora'] as const) {
    if (c[flag] !== undefined && typeof c[flag] !== 'boolean') badConfig(file, `"${flag}" must be true or false`);
  }

  const tm = c.target_modules;
  let targetModules: string[] | string;
  if (typeof tm === 'string') {
    compilePythonRegex(tm, file, 'target_modules'); // fail early on a bad pattern
    targetModules = tm;
  } else if (Array.isArray(tm) && tm.every((x) => typeof x === 'string') && tm.length > 0) {
    targetModules = [...tm];
  } else {
    // A saved PEFT config always carries the resolved list; null would leave the keys unverifiable.
    badConfig(file, `"target_modules" must be a list of module names or a regex string, got ${JSON.stringify(tm)}`);
  }

  const rankPattern = parsePattern(c.rank_pattern, file, 'rank_pattern', isPositiveInt);
  const alphaPattern = parsePattern(c.alpha_pattern, file, 'alpha_pattern', isFiniteNumber);
  for (const [field, v] of [['task_type', c.task_type], ['base_model_name_or_path', c.base_model_name_or_path]] as const) {
    if (v !== undefined && v !== null && typeof v !== 'string') badConfig(file, `"${field}" must be a string or null`);
  }

  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!TYPED_FIELDS.has(k)) extra[k] = v;
  return {
    peft_type: 'LORA',
    task_type: (c.task_type as string | null | undefined) ?? null,
    base_model_name_or_path: (c.base_model_name_or_path as string | null | undefined) ?? null,
    r,
    lora_alpha: alpha,
    target_modules: targetModules,
    lora_dropout: dropout,
    bias: 'none',
    fan_in_fan_out: (c.fan_in_fan_out as boolean | undefined) ?? DEFAULTS.fan_in_fan_out,
    use_rslora: (c.use_rslora as boolean | undefined) ?? DEFAULTS.use_rslora,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    extra,
  };
}

function parsePattern(
  v: unknown,
  file: string,
  field: string,
  valid: (x: unknown) => x is number,
): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) badConfig(file, `"${field}" must be an object`);
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!valid(x)) badConfig(file, `"${field}" entry "${k}" has invalid value ${JSON.stringify(x)}`);
    compilePythonRegex(k, file, `${field} key`);
    out[k] = x;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PEFT's module matching (tuners_utils.py check_target_module_exists, utils get_pattern_key)

/**
 * Python `re` syntax → JS RegExp for the constructs that differ in practice: named groups
 * `(?P<n>...)` / `(?P=n)` and the `\A` / `\Z` anchors. The result is wrapped by the caller.
 */
function compilePythonRegex(source: string, file: string, what: string, wrap: (s: string) => string = (s) => s): RegExp {
  const js = source
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?P=(\w+)\)/g, '\\k<$1>')
    .replace(/\\A/g, '^')
    .replace(/\\Z/g, '$');
  try {
    return new RegExp(wrap(js));
  } catch (err) {
    return badConfig(file, `${what} ${JSON.stringify(source)} is not a valid regex (${(err as Error).message})`, err);
  }
}

/** re.fullmatch */
function fullMatch(pattern: string, s: string, file: string, what: string): boolean {
  return compilePythonRegex(pattern, file, what, (p) => `^(?:${p})$`).test(s);
}

/** Default layer-container names PEFT tries when `layers_pattern` is unset (re.match `.*\.[^.]*\.(\d+)\.`). */
function layerIndexOf(modulePath: string, layersPattern: unknown, file: string): number | undefined {
  const patterns =
    typeof layersPattern === 'string' ? [layersPattern] : Array.isArray(layersPattern) ? (layersPattern as unknown[]) : [];
  const sources = patterns.length === 0 ? ['[^.]*'] : patterns.map(String);
  for (const p of sources) {
    const m = compilePythonRegex(p, file, 'layers_pattern', (s) => `^.*\\.(?:${s})\\.(\\d+)\\.`).exec(modulePath);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** Whether PEFT would have put a LoRA layer on `modulePath` under this config. */
export function matchesTargetModules(config: LoraConfig, modulePath: string, file = CONFIG_FILE): boolean {
  const exclude = config.extra.exclude_modules;
  if (typeof exclude === 'string' && fullMatch(exclude, modulePath, file, 'exclude_modules')) return false;
  if (Array.isArray(exclude) && exclude.some((e) => modulePath === e || modulePath.endsWith(`.${String(e)}`))) return false;

  const tm = config.target_modules;
  if (typeof tm === 'string') {
    // "all-linear" is expanded to a name list by PEFT before saving; if it survives, any Linear
    // qualifies and we cannot tell which are Linear without the model, so accept.
    return tm === 'all-linear' || fullMatch(tm, modulePath, file, 'target_modules');
  }
  if (tm.includes(modulePath)) return true;
  if (!tm.some((t) => modulePath.endsWith(`.${t}`))) return false;
  const indexes = config.extra.layers_to_transform;
  const using = indexes !== undefined && indexes !== null && !(Array.isArray(indexes) && indexes.length === 0);
  if (!using) return true;
  const layer = layerIndexOf(modulePath, config.extra.layers_pattern, file);
  if (layer === undefined) return false;
  return Array.isArray(indexes) ? indexes.includes(layer) : indexes === layer;
}

/** PEFT get_pattern_key: the first pattern key K with re.match(`(.*\.)?(K)$`, path). */
function patternKey(pattern: Record<string, number>, modulePath: string, file: string, field: string): string | undefined {
  return Object.keys(pattern).find((k) => compilePythonRegex(k, file, `${field} key`, (s) => `^(.*\\.)?(?:${s})$`).test(modulePath));
}

/** Configured rank, alpha and scaling of one target (PEFT LoraModel._create_and_replace + update_layer). */
export function targetHyperparams(config: LoraConfig, modulePath: string, file = CONFIG_FILE): { r: number; alpha: number; scaling: number } {
  const rKey = patternKey(config.rank_pattern, modulePath, file, 'rank_pattern');
  const aKey = patternKey(config.alpha_pattern, modulePath, file, 'alpha_pattern');
  const r = rKey === undefined ? config.r : config.rank_pattern[rKey];
  const alpha = aKey === undefined ? config.lora_alpha : config.alpha_pattern[aKey];
  // rsLoRA (Kalajdzievski 2023): alpha / sqrt(r) keeps the update's scale stable across ranks.
  const scaling = config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
  return { r, alpha, scaling };
}

// ---------------------------------------------------------------------------------------------
// weights → LoraModule

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** `...<path>.lora_A[.<adapter>].weight` */
const LORA_KEY = /^(.+)\.lora_(A|B)(?:\.([^.]+))?\.weight$/;

function refuseKey(file: string, key: string): never {
  if (key.includes('lora_magnitude_vector')) unsupported(file, `key "${key}": DoRA is not supported`);
  if (key.includes('lora_embedding_')) unsupported(file, `key "${key}": LoRA on embedding layers is not supported`);
  if (/\.lora_B(\.[^.]+)?\.bias$/.test(key)) unsupported(file, `key "${key}": LoRA bias terms are not supported`);
  return unsupported(file, `key "${key}" is not a LoRA weight (lora_A / lora_B); only plain LoRA adapters are loaded`);
}

function checkFinite(file: string, modulePath: string, key: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new LorahubError('NUMERIC', `${file}: module ${modulePath}, key "${key}": value ${data[i]} at index ${i}`);
    }
  }
}

/**
 * Validates a PEFT state dict against its config and builds the module: validate every key, then pair
 * A with B, then check shapes and ranks. `file` names the weights file in errors.
 */
export function moduleFromStateDict(
  name: string,
  config: LoraConfig,
  tensors: Map<string, NamedTensor>,
  file: string,
  metadata?: Record<string, string>,
): LoraModule {
  const halves = new Map<string, { A?: [string, NamedTensor]; B?: [string, NamedTensor] }>();
  let adapterName: string | undefined;
  for (const [key, t] of tensors) {
    if (!key.startsWith(PEFT_PREFIX)) {
      throw new LorahubError('BAD_FILE', `${file}: key "${key}" lacks PEFT's "${PEFT_PREFIX}" prefix`);
    }
    const m = LORA_KEY.exec(key.slice(PEFT_PREFIX.length));
    if (!m) refuseKey(file, key);
    const [, modulePath, which, adapter] = m as unknown as [string, string, 'A' | 'B', string | undefined];
    const nameHere = adapter ?? '';
    if (adapterName !== undefined && nameHere !== adapterName) {
      throw new LorahubError(
        'BAD_FILE',
        `${file}: key "${key}" is for adapter "${nameHere || '(none)'}" but earlier keys are for "${adapterName || '(none)'}"`,
      );
    }
    adapterName = nameHere;
    if (!matchesTargetModules(config, modulePath, file)) {
      throw new LorahubError(
        'INCOMPATIBLE',
        `${file}: key "${key}": module ${modulePath} is not matched by target_modules ${JSON.stringify(config.target_modules)}`,
      );
    }
    const pair = halves.get(modulePath) ?? {};
    if (pair[which] !== undefined) throw new LorahubError('BAD_FILE', `${file}: duplicate lora_${which} for module ${modulePath}`);
    pair[which] = [key, t];
    halves.set(modulePath, pair);
  }
  if (halves.size === 0) throw new LorahubError('BAD_FILE', `${file}: no LoRA weights`);

  const targets = new Map<string, LoraTarget>();
  for (const modulePath of [...halves.keys()].sort()) {
    const { A, B } = halves.get(modulePath) as { A?: [string, NamedTensor]; B?: [string, NamedTensor] };
    if (A === undefined || B === undefined) {
      const [present, missing] = A === undefined ? ['lora_B', 'lora_A'] : ['lora_A', 'lora_B'];
      throw new LorahubError('BAD_FILE', `${file}: module ${modulePath} has ${present} but no ${missing}`);
    }
    const [aKey, a] = A;
    const [bKey, b] = B;
    if (a.shape.length !== 2 || b.shape.length !== 2) {
      unsupported(file, `module ${modulePath}: lora_A ${JSON.stringify(a.shape)} / lora_B ${JSON.stringify(b.shape)} are not 2-D (only Linear targets)`);
    }
    const [r, dIn] = a.shape; // a: [r, dIn]
    const [dOut, rB] = b.shape; // b: [dOut, r]
    if (rB !== r) {
      throw new LorahubError(
        'SHAPE_MISMATCH',
        `${file}: module ${modulePath}: lora_A is [${a.shape.join(', ')}] (rank ${r}) but lora_B is [${b.shape.join(', ')}] (rank ${rB})`,
      );
    }
    const hp = targetHyperparams(config, modulePath, file);
    if (hp.r !== r) {
      throw new LorahubError(
        'SHAPE_MISMATCH',
        `${file}: module ${modulePath}, key "${aKey}": expected rank ${hp.r} (config), got ${r}`,
      );
    }
    checkFinite(file, modulePath, aKey, a.data);
    checkFinite(file, modulePath, bKey, b.data);
    targets.set(modulePath, { path: modulePath, r, dIn, dOut, a: a.data, b: b.data, scaling: hp.scaling });
  }
  const module: LoraModule = { name, config, targets };
  if (metadata !== undefined && Object.keys(metadata).length > 0) module.metadata = metadata;
  return module;
}

function exists(p: string): boolean {
  return fs.existsSync(p);
}

export interface ReadAdapterOptions {
  /** Module name; default: the folder's name. */
  name?: string;
  /** Which weights file to read; 'auto' prefers safetensors as PEFT >= 0.4 does. */
  weights?: 'auto' | 'safetensors' | 'bin';
}

export async function readAdapter(dir: string, opts: ReadAdapterOptions = {}): Promise<LoraModule> {
  const configPath = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.promises.readFile(configPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LorahubError('NOT_FOUND', `${configPath}: adapter config not found`, { cause: err });
    }
    throw new LorahubError('BAD_FILE', `${configPath}: cannot read (${(err as Error).message})`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    badConfig(configPath, `not valid JSON (${(err as Error).message})`, err);
  }
  const config = parseLoraConfig(json, configPath);

  const want = opts.weights ?? 'auto';
  const stPath = path.join(dir, SAFETENSORS_FILE);
  const binPath = path.join(dir, BIN_FILE);
  const useSt = want === 'safetensors' || (want === 'auto' && exists(stPath));
  const weightsPath = useSt ? stPath : binPath;
  if (!exists(weightsPath)) {
    const tried = want === 'auto' ? `${stPath} or ${binPath}` : weightsPath;
    throw new LorahubError('NOT_FOUND', `${dir}: adapter weights not found (${tried})`);
  }

  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> | undefined;
  if (useSt) {
    const st = SafetensorsFile.open(weightsPath);
    try {
      for (const key of st.names()) tensors.set(key, { shape: st.info(key).shape, data: st.readFloat32(key) });
      // "format" is the file's own marker (rewritten on save); anything else is provenance.
      const { format: _format, ...rest } = st.metadata;
      metadata = rest;
    } finally {
      st.close();
    }
  } else {
    for (const [key, t] of readTorchBin(weightsPath)) tensors.set(key, { shape: t.shape, data: t.data });
  }
  const name = opts.name ?? path.basename(path.resolve(dir));
  return moduleFromStateDict(name, config, tensors, weightsPath, metadata);
}

// ---------------------------------------------------------------------------------------------
// writing

/** Fields PEFT 0.4's LoraConfig writes that LoraConfig does not model, with PEFT's defaults. */
const PEFT_04_DEFAULTS: Record<string, unknown> = {
  auto_mapping: null,
  inference_mode: true,
  init_lora_weights: true,
  layers_pattern: null,
  layers_to_transform: null,
  modules_to_save: null,
  revision: null,
};

/** Fields Python holds as float, so json.dumps writes `0.0`, not `0`. */
const FLOAT_FIELDS = new Set(['lora_dropout']);

/** Python repr(float): shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
function pyFloat(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${Object.is(x, -0) ? '-' : ''}${Math.abs(x).toFixed(1)}`;
  const [mant, expStr] = x.toExponential().split('e');
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(x);
}

/** Python json.dumps(..., ensure_ascii=True) string escaping. */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * `json.dumps(obj, indent=2, sort_keys=True)` as PEFT's save_pretrained writes adapter_config.json,
 * so a re-saved config is byte-identical to PEFT's.
 */
export function pythonJsonDumps(value: unknown, indent = '', key?: string): string {
  const inner = `${indent}  `;
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new LorahubError('BAD_CONFIG', `config field ${key ?? ''}: ${value} is not JSON`);
    return Number.isInteger(value) && !(key !== undefined && FLOAT_FIELDS.has(key)) ? String(value) : pyFloat(value);
  }
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + pythonJsonDumps(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (isObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort(compareCodePoints);
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${inner}${pyString(k)}: ${pythonJsonDumps(value[k], inner, k)}`).join(',\n')}\n${indent}}`;
  }
  throw new LorahubError('BAD_CONFIG', `config field ${key ?? ''}: cannot serialise a ${typeof value}`);
}

/**
 * The adapter_config.json object PEFT would write: PEFT 0.4's field set (defaults filled in), the
 * source's extra fields, and `use_rslora` / `rank_pattern` / `alpha_pattern` only when they differ from
 * PEFT's defaults (PEFT 0.4 does not know them; a default value means the same thing when absent).
 */
export function peftConfigObject(config: LoraConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...PEFT_04_DEFAULTS, ...config.extra };
  Object.assign(out, {
    base_model_name_or_path: config.base_model_name_or_path,
    bias: config.bias,
    fan_in_fan_out: config.fan_in_fan_out,
    // PEFT's save_pretrained sets inference_mode = True on the config it writes.
    inference_mode: true,
    lora_alpha: config.lora_alpha,
    lora_dropout: config.lora_dropout,
    peft_type: 'LORA',
    r: config.r,
    target_modules: config.target_modules,
    task_type: config.task_type,
  });
  if (config.use_rslora) out.use_rslora = true;
  if (Object.keys(config.rank_pattern).length > 0) out.rank_pattern = config.rank_pattern;
  if (Object.keys(config.alpha_pattern).length > 0) out.alpha_pattern = config.alpha_pattern;
  return out;
}

function checkTarget(module: LoraModule, key: string, t: LoraTarget): void {
  const where = `adapter ${module.name}, module ${key}`;
  if (t.path !== key) throw new LorahubError('INTERNAL', `${where}: target path is "${t.path}"`);
  if (!isPositiveInt(t.r) || !isPositiveInt(t.dIn) || !isPositiveInt(t.dOut)) {
    throw new LorahubError('INTERNAL', `${where}: r ${t.r}, dIn ${t.dIn}, dOut ${t.dOut} must be positive integers`);
  }
  if (t.a.length !== t.r * t.dIn) {
    throw new LorahubError('SHAPE_MISMATCH', `${where}: lora_A has ${t.a.length} values, expected [${t.r}, ${t.dIn}]`);
  }
  if (t.b.length !== t.dOut * t.r) {
    throw new LorahubError('SHAPE_MISMATCH', `${where}: lora_B has ${t.b.length} values, expected [${t.dOut}, ${t.r}]`);
  }
  checkFinite(`adapter ${module.name}`, key, peftKey(key, 'A'), t.a);
  checkFinite(`adapter ${module.name}`, key, peftKey(key, 'B'), t.b);
  const hp = targetHyperparams(module.config, key);
  if (hp.r !== t.r) {
    throw new LorahubError('SHAPE_MISMATCH', `${where}: config gives rank ${hp.r}, weights have rank ${t.r}`);
  }
}

/**
 * Writes the module as PEFT does (adapter_config.json + adapter_model.safetensors, float32, keys
 * without adapter name, metadata {"format": "pt"} plus module.metadata). A stale adapter_model.bin in
 * the folder is removed: loaders that prefer .bin (PEFT <= 0.3) would otherwise read old weights.
 */
export interface WriteAdapterOptions {
  /**
   * Stored dtype. F16/BF16 halve the size (PEFT and our reader load them; values are rounded to
   * nearest even), e.g. for a shipped library with a size budget. Default F32.
   */
  dtype?: 'F32' | 'F16' | 'BF16';
}

export async function writeAdapter(dir: string, module: LoraModule, opts: WriteAdapterOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const tensors: TensorToWrite[] = [];
  for (const [key, t] of module.targets) {
    checkTarget(module, key, t);
    tensors.push({ name: peftKey(key, 'A'), dtype, shape: [t.r, t.dIn], data: t.a });
    tensors.push({ name: peftKey(key, 'B'), dtype, shape: [t.dOut, t.r], data: t.b });
  }
  const configText = pythonJsonDumps(peftConfigObject(module.config));
  const weights = encodeSafetensors(tensors, { ...(module.metadata ?? {}), format: 'pt' });
  // Config last: it is what marks the folder as an adapter for PEFT's loader.
  writeFilesAtomic(dir, [
    { name: SAFETENSORS_FILE, data: weights },
    { name: CONFIG_FILE, data: configText },
  ]);
  await fs.promises.rm(path.join(dir, BIN_FILE), { force: true });
}
