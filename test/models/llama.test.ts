/**
 * The Llama family (llama, mistral, qwen2): config.json with transformers' defaults, rope
 * scalings, refusals; and checkpoints the fixture does not cover (Qwen2's q/k/v biases, tied
 * head, head_dim given, multi-query attention, llama3 and linear rope scaling, other rope_theta,
 * Llama's attention/MLP biases, LoRA on every projection with rslora) through both engines,
 * against a plain float64 re-statement of the forward (the llama-gqa fixture pins the shared
 * path to transformers itself, test/engine/causal.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type EngineName } from '../../src/engine/index.ts';
import type { OrtModel } from '../../src/engine/ort/index.ts';
import type { TfjsCausalModel } from '../../src/engine/tfjs/index.ts';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import type { LoraModule, LoraTarget } from '../../src/lora/module.ts';
import { llamaConfigFromHf, ropeInvFreq, type LlamaConfig } from '../../src/models/llama/config.ts';
import { llamaWeightTable } from '../../src/models/llama/weights.ts';
import { archFromHfConfig } from '../../src/models/index.ts';
import { errorOf } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-llama-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('config.json with transformers defaults', () => {
  it('llama: an empty config is Llama-2-7B', () => {
    const c = llamaConfigFromHf({ model_type: 'llama' });
    expect(c).toMatchObject({ vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128 });
    expect(c).toMatchObject({ hiddenAct: 'silu', rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: { type: 'none' }, tieWordEmbeddings: false });
    expect(c).toMatchObject({ qkvBias: false, oBias: false, mlpBias: false, bosTokenId: 1, eosTokenIds: [2], eosTokenId: 2, slidingWindow: null });
    // No pad token: padding carries eos, as transformers' generate does.
    expect(c.padTokenId).toBe(2);
  });

  it('mistral: GQA 32/8 and a 4096-token window by default; an explicit null window is none', () => {
    expect(llamaConfigFromHf({ model_type: 'mistral' })).toMatchObject({ numKvHeads: 8, intermediateSize: 14336, slidingWindow: 4096 });
    expect(llamaConfigFromHf({ model_type: 'mistral', sliding_window: null }).slidingWindow).toBeNull();
  });

  it('qwen2: q/k/v biases always, the window only with use_sliding_window', () => {
    const c = llamaConfigFromHf({ model_type: 'qwen2', eos_token_id: 151643 });
    expect(c).toMatchObject({ vocabSize: 151936, qkvBias: true, oBias: false, slidingWindow: null, numKvHeads: 32 });
    expect(llamaConfigFromHf({ model_type: 'qwen2', eos_token_id: 5, use_sliding_window: true, sliding_window: 1024 }).slidingWindow).toBe(1024);
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'qwen2' }, 'q/config.json')).message).toMatch(/^q\/config\.json: "eos_token_id" is not set/);
  });

  it('head_dim when given; eos lists (Llama 3); attention_bias and mlp_bias', () => {
    const c = llamaConfigFromHf({ model_type: 'llama', hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, eos_token_id: [128001, 128008, 128009], vocab_size: 128256, attention_bias: true, mlp_bias: true });
    expect(c).toMatchObject({ headDim: 64, numKvHeads: 8, eosTokenIds: [128001, 128008, 128009], eosTokenId: 128001, qkvBias: true, oBias: true, mlpBias: true });
    expect(llamaConfigFromHf({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4, head_dim: 24 }).headDim).toBe(24);
  });

  it('rope_scaling: absent, null, "default", linear, llama3 (rope_type or the older "type"), transformers 5 rope_parameters', () => {
    expect(llamaConfigFromHf({ model_type: 'llama', rope_scaling: null }).ropeScaling).toEqual({ type: 'none' });
    expect(llamaConfigFromHf({ model_type: 'llama', rope_scaling: { rope_type: 'default' } }).ropeScaling).toEqual({ type: 'none' });
    expect(llamaConfigFromHf({ model_type: 'llama', rope_scaling: { type: 'linear', factor: 4.0 } }).ropeScaling).toEqual({ type: 'linear', factor: 4 });
    const l3 = { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' };
    expect(llamaConfigFromHf({ model_type: 'llama', rope_theta: 500000.0, rope_scaling: l3 })).toMatchObject({
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
    expect(llamaConfigFromHf({ model_type: 'llama', rope_parameters: { rope_type: 'default', rope_theta: 1e6 } })).toMatchObject({ ropeTheta: 1e6, ropeScaling: { type: 'none' } });
  });

  it('refuses rope types it does not compute, and malformed ones, naming the file and field', () => {
    for (const type of ['dynamic', 'yarn', 'longrope', 'ntk']) {
      const e = errorOf(() => llamaConfigFromHf({ model_type: 'llama', rope_scaling: { rope_type: type, factor: 2.0 } }, 'm/config.json'));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toBe(`m/config.json: "rope_scaling" type "${type}" is not supported (supported: linear, llama3, or none)`);
    }
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'llama', rope_scaling: { type: 'linear' } }, 'm/config.json')).message).toMatch(/"rope_scaling\.factor" must be a positive number/);
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'llama', rope_scaling: { rope_type: 'llama3', factor: 8 } })).message).toMatch(/low_freq_factor/);
  });

  it('refuses other bad fields by name', () => {
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'llama', num_attention_heads: 6, num_key_value_heads: 4 })).message).toMatch(/multiple of num_key_value_heads/);
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'llama', hidden_act: 'quick_gelu' })).code).toBe('UNSUPPORTED');
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'llama', partial_rotary_factor: 0.5 })).code).toBe('UNSUPPORTED');
    expect(errorOf(() => llamaConfigFromHf({ model_type: 'llama', hidden_size: 'x' })).message).toMatch(/"hidden_size" must be an integer/);
  });
});

describe('rotary frequencies', () => {
  const f64 = (cfg: LlamaConfig): number[] => {
    const dim = cfg.headDim;
    const inv = Array.from({ length: dim / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / dim));
    const s = cfg.ropeScaling;
    if (s.type === 'linear') return inv.map((x) => x / s.factor);
    if (s.type !== 'llama3') return inv;
    // Meta's reference (llama-models apply_scaling), restated in float64.
    const low = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const high = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    return inv.map((x) => {
      const wavelen = (2 * Math.PI) / x;
      if (wavelen < high) return x;
      if (wavelen > low) return x / s.factor;
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return (1 - smooth) * (x / s.factor) + smooth * x;
    });
  };
  it.each([
    ['default', { rope_theta: 10000 }],
    ['linear', { rope_scaling: { type: 'linear', factor: 2.0 } }],
    ['llama3 (Llama 3.2)', { rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 } }],
  ])('%s: float32 values within 1 ulp-ish of float64', (_name, extra) => {
    const cfg = llamaConfigFromHf({ model_type: 'llama', hidden_size: 2048, num_attention_heads: 32, ...extra });
    const got = ropeInvFreq(cfg);
    f64(cfg).forEach((x, i) => expect(Math.abs(got[i] - x) / x, `freq ${i}`).toBeLessThan(3e-7));
  });
});

// ---------------------------------------------------------------------------------------------
// Random checkpoints vs a float64 forward

/** A seeded uniform in [−1, 1) (xorshift32): the same tensors on every run. */
function uniform(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/** Writes config.json + model.safetensors for `raw`, random weights of the family's table. */
function writeModel(dir: string, raw: Record<string, unknown>, seed: number): { cfg: LlamaConfig; w: Map<string, Float32Array> } {
  mkdirSync(dir, { recursive: true });
  const cfg = llamaConfigFromHf(raw);
  const rnd = uniform(seed);
  const w = new Map<string, Float32Array>();
  for (const e of llamaWeightTable(cfg)) {
    const n = e.hfShape.reduce((a, b) => a * b, 1);
    const isNorm = /norm\.weight$/.test(e.hf);
    const isBias = e.hf.endsWith('.bias');
    const scale = e.hfShape.length === 2 && !e.hf.includes('embed') ? Math.sqrt(3 / e.hfShape[1]) : 1;
    w.set(e.hf, Float32Array.from({ length: n }, () => (isNorm ? 1 + 0.4 * rnd() : isBias ? 0.3 * rnd() : scale * rnd())));
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  writeSafetensors(join(dir, 'model.safetensors'), [...w].map(([name, data]) => ({ name, dtype: 'F32', shape: (llamaWeightTable(cfg).find((e) => e.hf === name) as { hfShape: number[] }).hfShape, data })), { format: 'pt' });
  return { cfg, w };
}

/** y = x·Wᵀ + b (+ s·(x·Aᵀ)·Bᵀ), float64, one row. */
function lin(x: number[], w: Map<string, Float32Array>, path: string, dOut: number, lora?: LoraModule): number[] {
  const W = w.get(`${path}.weight`) as Float32Array;
  const b = w.get(`${path}.bias`);
  const dIn = x.length;
  const y = Array.from({ length: dOut }, (_, o) => {
    let s = b ? b[o] : 0;
    for (let i = 0; i < dIn; i++) s += W[o * dIn + i] * x[i];
    return s;
  });
  const t = lora?.targets.get(path);
  if (t) {
    const xa = Array.from({ length: t.r }, (_, k) => x.reduce((s, xi, i) => s + xi * t.a[k * dIn + i], 0));
    for (let o = 0; o < dOut; o++) for (let k = 0; k < t.r; k++) y[o] += t.scaling * t.b[o * t.r + k] * xa[k];
  }
  return y;
}

/** LlamaForCausalLM in float64 for one unpadded sequence: logits [S][V]. */
function referenceLogits(cfg: LlamaConfig, w: Map<string, Float32Array>, ids: number[], lora?: LoraModule): number[][] {
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: dh, intermediateSize: I } = cfg;
  const rms = (x: number[], name: string) => {
    const g = w.get(name) as Float32Array;
    const r = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + cfg.rmsNormEps);
    return x.map((v, i) => v * r * g[i]);
  };
  const inv = Array.from(ropeInvFreq(cfg));
  const rope = (v: number[], pos: number) => {
    const out = [...v];
    for (let i = 0; i < dh / 2; i++) {
      const a = pos * inv[i];
      out[i] = v[i] * Math.cos(a) - v[i + dh / 2] * Math.sin(a);
      out[i + dh / 2] = v[i + dh / 2] * Math.cos(a) + v[i] * Math.sin(a);
    }
    return out;
  };
  const act = (v: number) => v / (1 + Math.exp(-v));
  const E = w.get('model.embed_tokens.weight') as Float32Array;
  let x = ids.map((id) => Array.from(E.subarray(id * d, (id + 1) * d)));
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const h = x.map((r) => rms(r, `${p}.input_layernorm.weight`));
    const q = h.map((r) => lin(r, w, `${p}.self_attn.q_proj`, H * dh, lora));
    const k = h.map((r) => lin(r, w, `${p}.self_attn.k_proj`, KV * dh, lora));
    const v = h.map((r) => lin(r, w, `${p}.self_attn.v_proj`, KV * dh, lora));
    const ctx = x.map(() => new Array<number>(H * dh).fill(0));
    for (let head = 0; head < H; head++) {
      const kvh = Math.floor(head / (H / KV));
      const qs = q.map((r, t) => rope(r.slice(head * dh, (head + 1) * dh), t));
      const ks = k.map((r, t) => rope(r.slice(kvh * dh, (kvh + 1) * dh), t));
      qs.forEach((qt, t) => {
        const scores = ks.slice(0, t + 1).map((kj) => qt.reduce((s, qi, i) => s + qi * kj[i], 0) / Math.sqrt(dh));
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        e.forEach((ej, j) => {
          for (let i = 0; i < dh; i++) ctx[t][head * dh + i] += (ej / z) * v[j][kvh * dh + i];
        });
      });
    }
    x = x.map((r, t) => lin(ctx[t], w, `${p}.self_attn.o_proj`, d, lora).map((o, i) => r[i] + o));
    const h2 = x.map((r) => rms(r, `${p}.post_attention_layernorm.weight`));
    x = x.map((r, t) => {
      const gate = lin(h2[t], w, `${p}.mlp.gate_proj`, I, lora).map(act);
      const up = lin(h2[t], w, `${p}.mlp.up_proj`, I, lora);
      return lin(gate.map((g, i) => g * up[i]), w, `${p}.mlp.down_proj`, d, lora).map((o, i) => r[i] + o);
    });
  }
  const head = w.get(cfg.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') as Float32Array;
  return x.map((r) => rms(r, 'model.norm.weight')).map((r) => Array.from({ length: cfg.vocabSize }, (_, o) => r.reduce((s, ri, i) => s + ri * head[o * d + i], 0)));
}

/** A random LoRA module on every projection of every block (rslora), written and read back as PEFT does. */
async function everyProjectionAdapter(dir: string, cfg: LlamaConfig, seed: number): Promise<LoraModule> {
  const arch = archFromHfConfig(cfg.raw);
  const rnd = uniform(seed);
  const r = 4;
  const targets = new Map<string, LoraTarget>();
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const name of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']) {
      const path = `model.layers.${l}.${name}`;
      const [dOut, dIn] = arch.linearShape(path) as [number, number];
      targets.set(path, { path, r, dIn, dOut, a: Float32Array.from({ length: r * dIn }, () => rnd() / Math.sqrt(dIn)), b: Float32Array.from({ length: dOut * r }, () => 0.2 * rnd()), scaling: 8 / Math.sqrt(r) });
    }
  }
  const sorted = new Map([...targets].sort(([a], [b]) => (a < b ? -1 : 1)));
  const config = { peft_type: 'LORA' as const, task_type: 'CAUSAL_LM', base_model_name_or_path: null, r, lora_alpha: 8, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], lora_dropout: 0, bias: 'none' as const, fan_in_fan_out: false, use_rslora: true, rank_pattern: {}, alpha_pattern: {}, extra: {} };
  await writeAdapter(dir, { name: 'every', config, targets: sorted });
  const back = await readAdapter(dir);
  expect([...back.targets.values()][0].scaling).toBe(4); // alpha / √r
  return back;
}

const BASE = { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, vocab_size: 40, bos_token_id: 1, eos_token_id: 2, pad_token_id: 0, max_position_embeddings: 64, rms_norm_eps: 1e-5 };

const VARIANTS: { name: string; raw: Record<string, unknown> }[] = [
  { name: 'qwen2: q/k/v biases, tied head, rope_theta 1e6, GQA 4/2', raw: { ...BASE, model_type: 'qwen2', num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true, rope_theta: 1000000.0, use_sliding_window: false } },
  {
    name: 'llama: head_dim 12 ≠ hidden/heads, multi-query (4/1), llama3 rope, attention and MLP biases',
    raw: { ...BASE, model_type: 'llama', num_attention_heads: 4, num_key_value_heads: 1, head_dim: 12, attention_bias: true, mlp_bias: true, rope_theta: 500000.0, rope_scaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 16 } },
  },
  { name: 'mistral: linear rope, 2 heads, sliding window 12', raw: { ...BASE, model_type: 'mistral', num_attention_heads: 2, num_key_value_heads: 2, sliding_window: 12, rope_scaling: { type: 'linear', factor: 2.0 } } },
];

const ENGINES: EngineName[] = ['ort', 'tfjs'];

describe.each(VARIANTS.flatMap((v, i) => ENGINES.map((engine) => ({ ...v, i, engine }))))('$name: $engine engine vs float64', (v) => {
  const dir = join(tmp, `m${v.i}-${v.engine}`);
  const { cfg, w } = writeModel(dir, v.raw, 100 + v.i);
  const load = async (d: string) => (await loadModel(d, { engine: v.engine, threads: 2 })) as OrtModel | TfjsCausalModel;
  const ids = [1, 7, 3, 22, 9, 31, 4, 15, 2, 11, 38, 6];

  it('logits to 1e-4 and per-example losses, base and with an rslora adapter on every projection', async () => {
    const model = await load(dir);
    try {
      const adapter = await everyProjectionAdapter(join(tmp, `a${v.i}-${v.engine}`), cfg, 200 + v.i);
      for (const lora of [undefined, adapter]) {
        const want = referenceLogits(cfg, w, ids, lora);
        const rows = { inputIds: [ids], attentionMask: [ids.map(() => 1)], positionIds: [ids.map((_, t) => t)], labels: [ids.map((t, j) => (j < 4 ? -100 : t))] };
        const got = await model.causalLogits(rows, lora);
        let m = 0;
        want.flat().forEach((x, i) => (m = Math.max(m, Math.abs(x - got.logits[i]))));
        expect(m).toBeLessThan(1e-4);
        // Cross-entropy of tokens 4.. from the float64 logits at 3..
        let sum = 0;
        for (let t = 3; t < ids.length - 1; t++) {
          const row = want[t];
          const mx = Math.max(...row);
          sum += Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0)) + mx - row[ids[t + 1]];
        }
        const [l] = await model.tokenLosses({ inputIds: [ids.slice(0, 4)], attentionMask: [[1, 1, 1, 1]], labels: [ids.slice(4)] }, lora ? [lora] : []);
        expect(l.tokens).toEqual([ids.length - 4]);
        expect(Math.abs(l.sum[0] - sum) / sum).toBeLessThan(1e-5);
      }
    } finally {
      await model.dispose();
    }
  });

  it.runIf(v.raw.model_type === 'mistral')('refuses a sequence longer than the sliding window', async () => {
    const model = await load(dir);
    try {
      await expect(model.tokenLosses({ inputIds: [ids], attentionMask: [ids.map(() => 1)], labels: [[5, 2]] })).rejects.toThrow(/is 14 tokens, longer than this mistral model's sliding_window \(12\)/);
      await expect(model.generate({ inputIds: [ids], attentionMask: [ids.map(() => 1)] }, { maxNewTokens: 4 })).rejects.toThrow(/sliding_window \(12\)/);
    } finally {
      await model.dispose();
    }
  });

  it.runIf(v.raw.model_type === 'qwen2')('a checkpoint without the q/k/v biases is refused, naming the tensor', async () => {
    const bad = join(tmp, `qwen2-no-bias-${v.engine}`);
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'config.json'), JSON.stringify(v.raw));
    writeSafetensors(join(bad, 'model.safetensors'), llamaWeightTable(cfg).filter((e) => !e.hf.endsWith('.bias')).map((e) => ({ name: e.hf, dtype: 'F32', shape: e.hfShape, data: w.get(e.hf) as Float32Array })));
    await expect(load(bad)).rejects.toThrow(/missing tensor "model\.layers\.0\.self_attn\.q_proj\.bias"/);
  });
});
