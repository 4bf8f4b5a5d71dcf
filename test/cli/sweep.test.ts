/**
 * The bad-input sweep (issue 16, A.3): a generated set of corrupt inputs — safetensors, config.json,
 * adapters, data files and command lines — each run through the real CLI in its own process. Every
 * one must end with a one-line `lorahub: error: …` on stderr, exit 2 for a usage error the user can
 * fix on the command line and 1 for a bad file or a runtime failure, show no stack trace and print
 * no result line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.ts';
import { T5_GATED, readJson, variant } from '../helpers.ts';
import { runCli } from '../library/helpers.ts';

const MODEL = `${T5_GATED}/model`;
const ADAPTERS = [0, 1, 2].map((k) => `${T5_GATED}/adapters/a${k}`);
const A0 = ADAPTERS[0];
/** A case that runs longer than this hangs: SIGKILLed, and the test fails on the signal. */
const DEADLINE_MS = 30_000;

interface Case {
  name: string;
  /** Writes the case's files under `tmp` and returns the CLI arguments. */
  setup: (tmp: string) => string[];
  /** 2: a usage error fixable on the command line; 1: a bad file or a runtime failure. */
  code: 1 | 2;
}

// ---- file makers ----------------------------------------------------------------------------

/** A copy of `src` (a folder) at tmp/name. */
function copy(tmp: string, src: string, name: string): string {
  const d = join(tmp, name);
  cpSync(src, d, { recursive: true });
  return d;
}

function write(tmp: string, name: string, content: string | Uint8Array): string {
  const f = join(tmp, name);
  writeFileSync(f, content);
  return f;
}

/** The fixture model at tmp/name with model.safetensors replaced by `bytes(original)`. */
function modelWithBytes(tmp: string, name: string, bytes: (orig: Buffer) => Uint8Array): string {
  const d = copy(tmp, MODEL, name);
  const p = join(d, 'model.safetensors');
  writeFileSync(p, bytes(readFileSync(p)));
  return d;
}

interface RawHeader {
  [name: string]: { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>;
}

/** Splits a safetensors file into its header object and data. */
function splitSt(buf: Buffer): { header: RawHeader; headerLen: number; data: Buffer } {
  const headerLen = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as RawHeader, headerLen, data: buf.subarray(8 + headerLen) };
}

function joinSt(header: RawHeader | string, data: Buffer): Buffer {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

/** The fixture model with its safetensors header edited (the data left as it is). */
function modelWithHeader(tmp: string, name: string, edit: (h: RawHeader) => void): string {
  return modelWithBytes(tmp, name, (orig) => {
    const { header, data } = splitSt(orig);
    edit(header);
    return joinSt(header, data);
  });
}

/** Tensor entries of a header, in data-offset order. */
function entries(h: RawHeader): [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][] {
  return (Object.entries(h).filter(([k]) => k !== '__metadata__') as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][]).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0],
  );
}

function editJson(path: string, edit: (c: Record<string, unknown>) => void): void {
  const c = readJson<Record<string, unknown>>(path);
  edit(c);
  writeFileSync(path, JSON.stringify(c));
}

function modelWithConfig(tmp: string, name: string, edit: (c: Record<string, unknown>) => void): string {
  const d = copy(tmp, MODEL, name);
  editJson(join(d, 'config.json'), edit);
  return d;
}

/** A copy of adapter a0 holding only adapter_model.safetensors, its tensors edited (as F32). */
function adapterWithTensors(tmp: string, name: string, edit: (t: TensorToWrite[]) => TensorToWrite[], editConfig: (c: Record<string, unknown>) => void = () => {}): string {
  const d = copy(tmp, A0, name);
  rmSync(join(d, 'adapter_model.bin'));
  const p = join(d, 'adapter_model.safetensors');
  const { tensors, metadata } = readSafetensors(p);
  const list: TensorToWrite[] = [...tensors].map(([n, t]) => ({ name: n, dtype: 'F32', shape: t.shape, data: t.data }));
  writeSafetensors(p, edit(list), metadata);
  editJson(join(d, 'adapter_config.json'), editConfig);
  return d;
}

/** A copy of adapter a0 holding only adapter_model.bin (no safetensors beside it). */
function binOnly(tmp: string, name: string): string {
  const d = copy(tmp, A0, name);
  rmSync(join(d, 'adapter_model.safetensors'));
  return d;
}

const ids = (lines: object[]): string => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';

// ---- shared inputs (written in beforeAll) ----------------------------------------------------

let GOOD = ''; // a good ids data file
let FIVE = ''; // five few-shot examples for compose

const score = (model: string, ...rest: string[]): string[] => ['score', '--model', model, '--data', GOOD, ...rest];
const scoreTfjs = (model: string): string[] => ['--engine', 'tfjs', ...score(model)];
const scoreAdapter = (adapter: string): string[] => score(MODEL, '--adapter', adapter);
const scoreData = (data: string): string[] => ['score', '--model', MODEL, '--data', data];
const compose = (tmp: string, name: string, ...flags: string[]): string[] => [
  'compose',
  '--model',
  MODEL,
  '--modules',
  ADAPTERS.join(','),
  '--data',
  FIVE,
  '--budget',
  '7',
  '--no-eval',
  '--out',
  join(tmp, `run-${name}`),
  ...flags,
];

// ---- the table ---------------------------------------------------------------------------------

const Q0 = 'encoder.block.0.layer.0.SelfAttention.q.weight';

const safetensorsCases = (engine: 'ort' | 'tfjs'): Case[] => {
  const run = engine === 'ort' ? (m: string) => score(m) : scoreTfjs;
  const all: Case[] = [
    { name: 'empty file', code: 1, setup: (t) => run(modelWithBytes(t, `st-empty-${engine}`, () => new Uint8Array(0))) },
    { name: '4-byte file', code: 1, setup: (t) => run(modelWithBytes(t, `st-4b-${engine}`, (o) => o.subarray(0, 4))) },
    {
      name: 'header length larger than the file',
      code: 1,
      setup: (t) =>
        run(
          modelWithBytes(t, `st-hlen-${engine}`, (o) => {
            const b = Buffer.from(o);
            b.writeBigUInt64LE(BigInt(b.length + 1000));
            return b;
          }),
        ),
    },
    {
      name: 'header not JSON',
      code: 1,
      setup: (t) =>
        run(
          modelWithBytes(t, `st-notjson-${engine}`, (o) => {
            const { headerLen, data } = splitSt(o);
            return joinSt('{"x": ' + '!'.repeat(headerLen - 5), data);
          }),
        ),
    },
    {
      name: 'header JSON not an object',
      code: 1,
      setup: (t) =>
        run(
          modelWithBytes(t, `st-array-${engine}`, (o) => {
            const { headerLen, data } = splitSt(o);
            return joinSt('[1, 2, 3]'.padEnd(headerLen, ' '), data);
          }),
        ),
    },
    {
      name: 'a tensor offset past the end',
      code: 1,
      setup: (t) =>
        run(
          modelWithHeader(t, `st-past-${engine}`, (h) => {
            const es = entries(h);
            const [, last] = es[es.length - 1];
            last.data_offsets = [last.data_offsets[0] + 64, last.data_offsets[1] + 64];
          }),
        ),
    },
    {
      name: 'offsets overlapping',
      code: 1,
      setup: (t) =>
        run(
          modelWithHeader(t, `st-overlap-${engine}`, (h) => {
            const es = entries(h);
            // the second tensor starts 4 bytes inside the first, keeping its size
            const [, a] = es[0];
            const [, b] = es[1];
            const size = b.data_offsets[1] - b.data_offsets[0];
            b.data_offsets = [a.data_offsets[1] - 4, a.data_offsets[1] - 4 + size];
          }),
        ),
    },
    {
      name: 'offsets out of order (two same-size tensors swapped, one pointing twice)',
      code: 1,
      setup: (t) =>
        run(
          modelWithHeader(t, `st-twice-${engine}`, (h) => {
            const es = entries(h);
            const [, a] = es[0];
            const [, b] = es.find(([, e]) => e !== a && e.data_offsets[1] - e.data_offsets[0] === a.data_offsets[1] - a.data_offsets[0]) ?? es[1];
            b.data_offsets = [...a.data_offsets];
          }),
        ),
    },
    { name: 'an unknown dtype', code: 1, setup: (t) => run(modelWithHeader(t, `st-dtype-${engine}`, (h) => ((h[Q0] as { dtype: string }).dtype = 'Q7'))) },
    {
      name: 'a dtype/shape byte-size mismatch (F32 bytes labelled F16)',
      code: 1,
      setup: (t) => run(modelWithHeader(t, `st-f16-${engine}`, (h) => ((h[Q0] as { dtype: string }).dtype = 'F16'))),
    },
    { name: 'a missing tensor', code: 1, setup: (t) => run(variant(t, `st-missing-${engine}`, () => {}, (ts) => ts.filter((x) => x.name !== Q0))) },
    {
      name: 'an extra unexpected tensor',
      code: 1,
      setup: (t) =>
        run(
          variant(t, `st-extra-${engine}`, () => {}, (ts) => [
            ...ts,
            { name: 'encoder.block.7.layer.0.SelfAttention.q.weight', dtype: 'F32', shape: [64, 64], data: new Float32Array(64 * 64) },
          ]),
        ),
    },
    {
      name: 'a tensor whose shape disagrees with config',
      code: 1,
      setup: (t) =>
        run(variant(t, `st-shape-${engine}`, () => {}, (ts) => ts.map((x) => (x.name === Q0 ? { ...x, shape: [32, 128] } : x)))),
    },
  ];
  // tfjs: a few of the same, to show both engines load through the same checks
  return engine === 'ort' ? all : all.filter((c) => ['empty file', 'header length larger than the file', 'a tensor offset past the end', 'an unknown dtype', 'a missing tensor'].includes(c.name));
};

const configCases: Case[] = [
  {
    name: 'config.json missing',
    code: 1,
    setup: (t) => {
      const d = copy(t, MODEL, 'cfg-missing');
      rmSync(join(d, 'config.json'));
      return score(d);
    },
  },
  {
    name: 'config.json invalid JSON',
    code: 1,
    setup: (t) => {
      const d = copy(t, MODEL, 'cfg-invalid');
      writeFileSync(join(d, 'config.json'), '{"d_model": 64,');
      return score(d);
    },
  },
  { name: 'd_model a string', code: 1, setup: (t) => score(modelWithConfig(t, 'cfg-dmodel', (c) => (c.d_model = '64'))) },
  { name: 'negative num_heads', code: 1, setup: (t) => score(modelWithConfig(t, 'cfg-heads', (c) => (c.num_heads = -4))) },
  { name: 'unknown feed_forward_proj', code: 1, setup: (t) => score(modelWithConfig(t, 'cfg-ffp', (c) => (c.feed_forward_proj = 'gated-swoosh'))) },
  { name: 'model_type "bert"', code: 1, setup: (t) => score(modelWithConfig(t, 'cfg-bert', (c) => (c.model_type = 'bert'))) },
  { name: 'd_ff disagreeing with the weights', code: 1, setup: (t) => score(modelWithConfig(t, 'cfg-dff', (c) => (c.d_ff = 256))) },
];

const adapterCases: Case[] = [
  {
    name: 'adapter_config.json missing',
    code: 1,
    setup: (t) => {
      const d = copy(t, A0, 'ad-nocfg');
      rmSync(join(d, 'adapter_config.json'));
      return scoreAdapter(d);
    },
  },
  {
    name: 'adapter_config.json invalid JSON',
    code: 1,
    setup: (t) => {
      const d = copy(t, A0, 'ad-badcfg');
      writeFileSync(join(d, 'adapter_config.json'), '{"peft_type": "LORA", "r": ');
      return scoreAdapter(d);
    },
  },
  {
    name: 'peft_type PREFIX_TUNING',
    code: 1,
    setup: (t) => {
      const d = copy(t, A0, 'ad-prefix');
      editJson(join(d, 'adapter_config.json'), (c) => (c.peft_type = 'PREFIX_TUNING'));
      return scoreAdapter(d);
    },
  },
  {
    name: 'r in config disagreeing with the tensors',
    code: 1,
    setup: (t) => {
      const d = copy(t, A0, 'ad-rank');
      editJson(join(d, 'adapter_config.json'), (c) => (c.r = 8));
      return scoreAdapter(d);
    },
  },
  {
    name: 'a target module that is not in the model',
    code: 1,
    setup: (t) =>
      scoreAdapter(
        adapterWithTensors(
          t,
          'ad-target',
          (ts) => ts.map((x) => ({ ...x, name: x.name.replace(/\.q\.lora_/, '.qq.lora_') })),
          (c) => (c.target_modules = ['qq', 'v']),
        ),
      ),
  },
  {
    name: 'lora_A/lora_B shape mismatch',
    code: 1,
    setup: (t) =>
      scoreAdapter(
        adapterWithTensors(t, 'ad-ab', (ts) => {
          let done = false;
          return ts.map((x) => {
            if (done || !x.name.includes('lora_B')) return x;
            done = true;
            return { ...x, shape: [x.shape[0], x.shape[1] - 1], data: (x.data as Float32Array).subarray(0, x.shape[0] * (x.shape[1] - 1)) };
          });
        }),
      ),
  },
  {
    name: 'a NaN in lora_B',
    code: 1,
    setup: (t) =>
      scoreAdapter(
        adapterWithTensors(t, 'ad-nan', (ts) =>
          ts.map((x) => (x.name.includes('lora_B') ? { ...x, data: Float32Array.from(x.data as Float32Array, (v, i) => (i === 0 ? Number.NaN : v)) } : x)),
        ),
      ),
  },
  {
    name: 'a truncated adapter_model.bin',
    code: 1,
    setup: (t) => {
      const d = binOnly(t, 'ad-trunc');
      const p = join(d, 'adapter_model.bin');
      const b = readFileSync(p);
      writeFileSync(p, b.subarray(0, b.length >> 1));
      return scoreAdapter(d);
    },
  },
  {
    name: 'a .bin whose pickle calls os.system',
    code: 1,
    setup: (t) => {
      const d = binOnly(t, 'ad-pickle');
      const p = join(d, 'adapter_model.bin');
      const files = unzipSync(readFileSync(p));
      const key = Object.keys(files).find((k) => k.endsWith('data.pkl')) as string;
      const pkl = Buffer.from(files[key]).toString('latin1');
      expect(pkl).toContain('torch._utils\n_rebuild_tensor_v2\n');
      files[key] = Buffer.from(pkl.replace('torch._utils\n_rebuild_tensor_v2\n', 'os\nsystem\n'), 'latin1');
      writeFileSync(p, zipSync(files));
      return scoreAdapter(d);
    },
  },
  {
    name: 'a tiny .bin: a pickle of GLOBAL os system alone',
    code: 1,
    setup: (t) => {
      const d = binOnly(t, 'ad-tinypickle');
      // PROTO 2, GLOBAL 'os system', SHORT_BINUNICODE 'echo pwned', TUPLE1, REDUCE, STOP
      const pkl = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\n', 'latin1'), Buffer.from([0x8c, 10]), Buffer.from('echo pwned', 'latin1'), Buffer.from([0x85, 0x52, 0x2e])]);
      writeFileSync(join(d, 'adapter_model.bin'), zipSync({ 'archive/data.pkl': pkl, 'archive/version': Buffer.from('3\n') }));
      return scoreAdapter(d);
    },
  },
];

const dataCases: Case[] = [
  { name: 'empty file', code: 1, setup: (t) => scoreData(write(t, 'data-empty.jsonl', '')) },
  { name: 'whitespace only', code: 1, setup: (t) => scoreData(write(t, 'data-ws.jsonl', '  \n\t\n\n')) },
  { name: 'a malformed JSON line', code: 1, setup: (t) => scoreData(write(t, 'data-malformed.jsonl', ids([{ input_ids: [5, 6, 1], labels: [7, 1] }]) + '{"input_ids": [5, 6\n')) },
  { name: 'a JSON array line', code: 1, setup: (t) => scoreData(write(t, 'data-array.jsonl', '[[5, 6, 1], [7, 1]]\n')) },
  { name: 'wrong keys', code: 1, setup: (t) => scoreData(write(t, 'data-keys.jsonl', ids([{ question: 'x', answer: 'y' }]))) },
  { name: 'an out-of-vocabulary id', code: 1, setup: (t) => scoreData(write(t, 'data-oov.jsonl', ids([{ input_ids: [5, 999, 1], labels: [7, 1] }]))) },
  { name: 'a negative id', code: 1, setup: (t) => scoreData(write(t, 'data-neg.jsonl', ids([{ input_ids: [5, -3, 1], labels: [7, 1] }]))) },
  { name: 'empty labels', code: 1, setup: (t) => scoreData(write(t, 'data-nolabels.jsonl', ids([{ input_ids: [5, 6, 1], labels: [] }]))) },
  { name: 'empty input_ids', code: 1, setup: (t) => scoreData(write(t, 'data-noinput.jsonl', ids([{ input_ids: [], labels: [7, 1] }]))) },
  {
    name: 'non-UTF-8 bytes',
    code: 1,
    setup: (t) => scoreData(write(t, 'data-latin1.jsonl', Buffer.concat([Buffer.from('{"input": "caf'), Buffer.from([0xe9, 0xff]), Buffer.from('", "target": "x"}\n')]))),
  },
  { name: 'a 5 MB line', code: 1, setup: (t) => scoreData(write(t, 'data-long.jsonl', ids([{ input: 'a'.repeat(5_000_000), target: 'x' }]))) },
  { name: 'labels that are not integers', code: 1, setup: (t) => scoreData(write(t, 'data-float.jsonl', ids([{ input_ids: [5, 6, 1], labels: [7.5, 1] }]))) },
  { name: 'labels that are strings', code: 1, setup: (t) => scoreData(write(t, 'data-strlabels.jsonl', ids([{ input_ids: [5, 6, 1], labels: ['7', '1'] }]))) },
];

const cliCases: Case[] = [
  { name: '--budget NaN', code: 2, setup: (t) => compose(t, 'budget-nan', '--budget', 'NaN') },
  { name: '--budget -3', code: 2, setup: (t) => compose(t, 'budget-neg', '--budget', '-3') },
  { name: '--budget 0', code: 2, setup: (t) => compose(t, 'budget-0', '--budget', '0') },
  { name: '--seed abc', code: 2, setup: (t) => compose(t, 'seed', '--seed', 'abc') },
  { name: '--examples 0', code: 2, setup: (t) => compose(t, 'examples', '--examples', '0') },
  { name: '--draw sideways', code: 2, setup: (t) => compose(t, 'draw', '--draw', 'sideways') },
  {
    name: 'an unknown module name in --modules',
    code: 1, // whether a name resolves depends on the library on disk
    setup: (t) => {
      const args = compose(t, 'unknown-module');
      args[args.indexOf('--modules') + 1] = `${ADAPTERS[0]},no-such-module`;
      return [...args, '--library', join(t, 'empty-library')];
    },
  },
  {
    name: '--out an existing file',
    code: 1, // a filesystem state, reported when the run folder is created
    setup: (t) => {
      const f = write(t, 'out-file', 'not a folder\n');
      return [...compose(t, 'out-file-unused'), '--out', f];
    },
  },
  { name: '--threads 0', code: 2, setup: (t) => ['--threads', '0', ...compose(t, 'threads')] },
  { name: '--engine foo', code: 2, setup: (t) => ['--engine', 'foo', ...compose(t, 'engine')] },
  { name: '--device tpu', code: 2, setup: (t) => ['--device', 'tpu', ...compose(t, 'device')] },
  { name: 'a misspelt flag (--budgte)', code: 2, setup: (t) => [...compose(t, 'misspelt'), '--budgte', '7'] },
  { name: 'an unknown command (compse)', code: 2, setup: () => ['compse', '--budget', '7'] },
  { name: 'score --max-length 0', code: 2, setup: () => ['score', '--model', MODEL, '--data', GOOD, '--max-length', '0'] },
];

const CASES: [string, Case[]][] = [
  ['safetensors (ort)', safetensorsCases('ort')],
  ['safetensors (tfjs)', safetensorsCases('tfjs')],
  ['config.json', configCases],
  ['adapter', adapterCases],
  ['data file', dataCases],
  ['command line', cliCases],
];

// ---- the sweep -----------------------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-sweep-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const args = new Map<Case, string[]>();

beforeAll(() => {
  GOOD = write(tmp, 'good.jsonl', ids([{ input_ids: [20, 21, 22, 1], labels: [30, 31, 1] }]));
  const ex = readJson<{ objective: { examples: { inputs: string[]; outputs: string[] } } }>(join(T5_GATED, 'adapter_cases.json')).objective.examples;
  FIVE = write(tmp, 'five.jsonl', ids(ex.inputs.map((input, i) => ({ input, target: ex.outputs[i] }))));
  mkdirSync(join(tmp, 'empty-library'));
  for (const [, cases] of CASES) for (const c of cases) args.set(c, c.setup(tmp));
});

it('the sweep holds at least 40 cases', () => {
  expect(CASES.reduce((n, [, cs]) => n + cs.length, 0)).toBeGreaterThanOrEqual(40);
});

describe.each(CASES)('%s', (_group, cases) => {
  it.concurrent.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await runCli(args.get(c) as string[], {}, DEADLINE_MS);
    const where = `lorahub ${(args.get(c) as string[]).join(' ').slice(0, 300)}\n--- stdout\n${r.stdout.slice(0, 2000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
    expect(r.signal, where).toBeNull();
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines.at(-1), where).toMatch(/^lorahub: error: /);
    expect(r.stderr, where).not.toMatch(/^ {4}at /m); // no stack trace
    expect(r.stderr, where).not.toMatch(/internal error/);
    expect(r.stdout.trim(), where).toBe(''); // no result line
    expect(r.code, where).toBe(c.code);
  });
});
