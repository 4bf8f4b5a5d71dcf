/**
 * Bad inputs: every one exits non-zero with a single "lorahub: error: …" line naming the file
 * and the problem, and no stack trace (unless --verbose).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { readAdapter, writeAdapter } from '../../src/io/peft.ts';
import { T5_GATED } from '../helpers.ts';
import { runCli } from './run.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const MODEL = `${T5_GATED}/model`;
const A0 = `${T5_GATED}/adapters/a0`;

function copyDir(src: string): string {
  const d = join(tmp, `d${n++}`);
  cpSync(src, d, { recursive: true });
  return d;
}

function data(lines: object[]): string {
  const f = join(tmp, `data${n++}.jsonl`);
  writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n'));
  return f;
}

const GOOD = data([{ input: 'not ( True ) and ( True ) is', target: 'False' }]);

async function expectOneLineError(args: string[], pattern: RegExp): Promise<void> {
  const r = await runCli(args);
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^lorahub: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const p = join(dir, 'config.json');
  const c = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
  edit(c);
  writeFileSync(p, JSON.stringify(c));
}

describe('score/generate: the happy path', () => {
  it('score --json prints {"loss","tokens","engine","device"} per line', async () => {
    const r = await runCli(['score', '--model', MODEL, '--data', GOOD, '--json']);
    expect(r.code).toBe(0);
    const row = JSON.parse(r.stdout.trim()) as { loss: number; tokens: number; engine: string; device: string };
    expect(row.tokens).toBe(6); // "False" + eos
    expect(row.loss).toBeGreaterThan(0);
    expect(['ort', 'tfjs']).toContain(row.engine);
    expect(row.device).toBe('cpu');
  });
  it('generate --json prints output_ids after the start token, up to and including eos', async () => {
    const r = await runCli(['generate', '--model', MODEL, '--data', data([{ input_ids: [20, 21, 22, 1] }]), '--max-new-tokens', '8', '--json']);
    expect(r.code).toBe(0);
    const row = JSON.parse(r.stdout.trim()) as { output_ids: number[]; text: string; engine: string; device: string };
    expect(row.output_ids.length).toBeLessThanOrEqual(8);
    expect(row.output_ids[0]).not.toBe(0);
    expect(['ort', 'tfjs']).toContain(row.engine);
    expect(row.device).toBe('cpu');
  });
  it('--verbose shows the engine, device, provider and threads', async () => {
    const r = await runCli(['--verbose', 'score', '--model', MODEL, '--data', GOOD]);
    expect(r.stderr).toMatch(/^lorahub: engine (ort|tfjs) on cpu \(.+, \d+ threads?\)/m);
    const t = await runCli(['--verbose', '--engine', 'tfjs', 'score', '--model', MODEL, '--data', GOOD]);
    expect(t.stderr).toMatch(/^lorahub: engine tfjs on cpu \(@tensorflow\/tfjs[-a-z]* \((wasm|tensorflow|cpu)\), \d+ threads?\)$/m);
  });
  it('--engine tfjs and --device cuda do not go together', async () => {
    await expectOneLineError(['--engine', 'tfjs', '--device', 'cuda', 'score', '--model', MODEL, '--data', GOOD], /--device cuda needs the ort engine/);
  });
  it('bad --engine, --device and --threads values', async () => {
    await expectOneLineError(['--engine', 'tpu', 'score', '--model', MODEL, '--data', GOOD], /--engine must be one of ort, tfjs, got "tpu"/);
    await expectOneLineError(['--device', 'npu', 'score', '--model', MODEL, '--data', GOOD], /--device must be one of cpu, cuda, got "npu"/);
    await expectOneLineError(['--threads', '0', 'score', '--model', MODEL, '--data', GOOD], /--threads must be a positive integer, got "0"/);
  });
  it('--backend is the tfjs engine\'s: refused with --engine ort, and picks tfjs when no engine is named', async () => {
    await expectOneLineError(['--engine', 'ort', '--backend', 'wasm', 'score', '--model', MODEL, '--data', GOOD], /^lorahub: error: --backend applies to the tfjs engine only; add --engine tfjs$/);
    const r = await runCli(['--backend', 'wasm', 'score', '--model', MODEL, '--data', GOOD, '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout.trim()) as { engine: string }).engine).toBe('tfjs');
  });
});

describe('bad model inputs (issue 3)', () => {
  it('missing config field → HF default → shape mismatch naming file and tensor', async () => {
    const d = copyDir(MODEL);
    editConfig(d, (c) => delete c.d_model);
    await expectOneLineError(['score', '--model', d, '--data', GOOD], /model\.safetensors: tensor "shared\.weight" has shape \[259, 64\], config expects \[259, 512\]/);
  });
  it('unknown feed_forward_proj', async () => {
    const d = copyDir(MODEL);
    editConfig(d, (c) => (c.feed_forward_proj = 'gated-swish'));
    await expectOneLineError(['score', '--model', d, '--data', GOOD], /config\.json: unknown feed_forward_proj "gated-swish"/);
  });
  it('shape mismatch (num_heads)', async () => {
    const d = copyDir(MODEL);
    editConfig(d, (c) => (c.num_heads = 8));
    await expectOneLineError(['score', '--model', d, '--data', GOOD], /SelfAttention\.q\.weight" has shape \[64, 64\], config expects \[128, 64\]/);
  });
  it('truncated model.safetensors', async () => {
    const d = copyDir(MODEL);
    const f = join(d, 'model.safetensors');
    truncateSync(f, statSync(f).size - 1000);
    await expectOneLineError(['score', '--model', d, '--data', GOOD], /model\.safetensors: .*(truncated|exceed)/);
  });
  it('unknown token ids', async () => {
    await expectOneLineError(['score', '--model', MODEL, '--data', data([{ input_ids: [5, 999, 1], labels: [5, 1] }])], /token id 999 is outside the vocabulary \[0, 259\)/);
  });
  it('malformed data line', async () => {
    const f = join(tmp, 'bad.jsonl');
    writeFileSync(f, '{"input": "a", "target": "b"}\n{oops\n');
    await expectOneLineError(['score', '--model', MODEL, '--data', f], /bad\.jsonl:2: invalid JSON/);
  });
  it('unknown tfjs backend', async () => {
    await expectOneLineError(['--engine', 'tfjs', '--backend', 'tpu', 'score', '--model', MODEL, '--data', GOOD], /unknown backend "tpu"/);
  });
});

describe('bad adapters and libraries (issue 4)', () => {
  it('missing adapter files', async () => {
    const d = copyDir(A0);
    rmSync(join(d, 'adapter_model.safetensors'));
    rmSync(join(d, 'adapter_model.bin'));
    await expectOneLineError(['score', '--model', MODEL, '--adapter', d, '--data', GOOD], /adapter_model\.(safetensors|bin)/);
  });
  it('truncated adapter safetensors', async () => {
    const d = copyDir(A0);
    const f = join(d, 'adapter_model.safetensors');
    truncateSync(f, statSync(f).size - 100);
    await expectOneLineError(['score', '--model', MODEL, '--adapter', d, '--data', GOOD], /adapter_model\.safetensors: .*(truncated|exceed)/);
  });
  it('a pickle that references a non-tensor global', async () => {
    const d = copyDir(A0);
    rmSync(join(d, 'adapter_model.safetensors'));
    const bin = join(d, 'adapter_model.bin');
    const files = unzipSync(readFileSync(bin));
    const key = Object.keys(files).find((k) => k.endsWith('data.pkl')) as string;
    const pkl = Buffer.from(files[key]).toString('latin1').replace('torch._utils\n_rebuild_tensor_v2\n', 'os\nsystem\n');
    files[key] = Buffer.from(pkl, 'latin1');
    writeFileSync(bin, zipSync(files));
    await expectOneLineError(['score', '--model', MODEL, '--adapter', d, '--data', GOOD], /refuses pickle global os\.system/);
  });
  it('NaN in weights', async () => {
    const d = copyDir(A0);
    rmSync(join(d, 'adapter_model.bin'));
    const f = join(d, 'adapter_model.safetensors');
    const buf = readFileSync(f);
    const headerLen = Number(buf.readBigUInt64LE(0));
    buf.writeFloatLE(Number.NaN, 8 + headerLen + 4 * 5);
    writeFileSync(f, buf);
    await expectOneLineError(['score', '--model', MODEL, '--adapter', d, '--data', GOOD], /NaN/);
  });
  it('rank mismatch in compose-weights names module, key, expected and actual', async () => {
    const m = await readAdapter(A0);
    const r2 = join(tmp, 'rank2');
    await writeAdapter(r2, {
      ...m,
      config: { ...m.config, r: 2 },
      targets: new Map([...m.targets].map(([p, t]) => {
        const b = new Float32Array(t.dOut * 2);
        for (let o = 0; o < t.dOut; o++) b.set(t.b.subarray(o * 4, o * 4 + 2), o * 2);
        return [p, { ...t, r: 2, a: t.a.slice(0, 2 * t.dIn), b, scaling: 16 }];
      })),
    });
    await expectOneLineError(
      ['compose-weights', '--model', MODEL, '--modules', `${A0},${r2}`, '--weights', '1,1', '--out', join(tmp, 'c0')],
      /module "rank2", key "[^"]+": rank 2, expected 4/,
    );
    const ok = await runCli(['compose-weights', '--model', MODEL, '--modules', `${A0},${r2}`, '--weights', '1,1', '--harmonize', 'truncate', '--out', join(tmp, 'c1'), '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout.trim())).toMatchObject({ rank: 2, targets: 12 });
  });
  it('target mismatch: an adapter for layers the base does not have', async () => {
    const m = await readAdapter(A0);
    const t = m.targets.get('encoder.block.1.layer.0.SelfAttention.q');
    expect(t).toBeDefined();
    const bad = join(tmp, 'extra-layer');
    const targets = new Map(m.targets);
    targets.set('encoder.block.7.layer.0.SelfAttention.q', { ...(t as NonNullable<typeof t>), path: 'encoder.block.7.layer.0.SelfAttention.q' });
    await writeAdapter(bad, { ...m, targets });
    await expectOneLineError(['score', '--model', MODEL, '--adapter', bad, '--data', GOOD], /encoder\.block\.7/);
  });
  it('base mismatch: an adapter for a model with another width', async () => {
    const m = await readAdapter(A0);
    const bad = join(tmp, 'wide');
    await writeAdapter(bad, {
      ...m,
      targets: new Map([...m.targets].map(([p, t]) => [p, { ...t, dIn: 128, a: new Float32Array(t.r * 128) }])),
    });
    await expectOneLineError(['score', '--model', MODEL, '--adapter', bad, '--data', GOOD], /wide.*\[64, 128\]|128/);
  });
  it('a library manifest edited into invalid JSON is reported, never overwritten', async () => {
    const lib = join(tmp, 'lib');
    expect((await runCli(['modules', 'add', A0, '--library', lib, '--base', MODEL])).code).toBe(0);
    const manifest = join(lib, 'manifest.json');
    writeFileSync(manifest, '{ "version": 1, oops');
    await expectOneLineError(['modules', 'list', '--library', lib], /manifest\.json: .*JSON/);
    await expectOneLineError(['modules', 'add', `${T5_GATED}/adapters/a1`, '--library', lib, '--base', MODEL], /manifest\.json/);
    expect(readFileSync(manifest, 'utf8')).toBe('{ "version": 1, oops');
  });
});

describe('merge and compose-weights (issue 4)', () => {
  it('merge writes a loadable checkpoint; compose-weights writes a PEFT adapter', async () => {
    const out = join(tmp, 'merged');
    const r = await runCli(['merge', '--model', MODEL, '--adapter', A0, '--out', out, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim()).merged).toHaveLength(12);
    const s = await runCli(['score', '--model', out, '--data', GOOD, '--json']);
    const s2 = await runCli(['score', '--model', MODEL, '--adapter', A0, '--data', GOOD, '--json']);
    const l1 = (JSON.parse(s.stdout) as { loss: number }).loss;
    const l2 = (JSON.parse(s2.stdout) as { loss: number }).loss;
    expect(Math.abs(l1 - l2)).toBeLessThan(1e-4);
    const c = join(tmp, 'composed');
    const rc = await runCli(['compose-weights', '--model', MODEL, '--modules', `${A0},${T5_GATED}/adapters/a1`, '--weights', '0.5,-0.3', '--out', c]);
    expect(rc.code).toBe(0);
    const back = await readAdapter(c);
    expect(back.targets.size).toBe(12);
    expect(JSON.parse(back.metadata?.lorahub_composition ?? '{}')).toMatchObject({ weights: [0.5, -0.3] });
  });
});
