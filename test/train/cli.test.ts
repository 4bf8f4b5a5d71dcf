/**
 * `lorahub train-base` and `lorahub train` end to end on the tiny preset: base model into a
 * library, a module trained on it and registered with metrics, target tasks refused, and Ctrl-C
 * (a real SIGINT to a child process) saving a checkpoint that --resume continues, and a held
 * library lock waited for rather than failing the run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAdapter } from '../../src/io/peft.ts';
import { openLibrary } from '../../src/library/index.ts';
import { acquireLibraryLock } from '../../src/library/lock.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { runCli } from '../cli/run.ts';
import { REPO } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lorahub-train-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const base = join(tmp, 'base');
const lib = join(tmp, 'lib');

describe('lorahub train-base / train', () => {
  it('trains a base into a library, then a module on it with its metrics', async () => {
    const b = await runCli([
      'train-base', '--out', base, '--size', 'tiny', '--steps', '3', '--pretrain-steps', '1', '--max-per-task', '2',
      '--batch-size', '4', '--eval-per-task', '1', '--dtype', 'f32', '--set-base', '--library', lib, '--json',
    ]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const report = JSON.parse(b.stdout) as { parameters: number; steps: number; exactMatch: Record<string, number> };
    expect(report.steps).toBe(3);
    // The tiny preset with the default word vocabulary, counted from these 2 examples per task:
    // 246,784 parameters with ByT5's 384 ids, less an embedding row and a head column (64 each) per id fewer.
    const config = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')) as { vocab_size: number; lorahub_training: { tokenizer: string } };
    expect(config.lorahub_training.tokenizer).toBe('words');
    expect(config.vocab_size).toBe((JSON.parse(readFileSync(join(base, 'tokenizer.json'), 'utf8')) as { model: { vocab: unknown[] } }).model.vocab.length);
    expect(report.parameters).toBe(246784 - 2 * 64 * (384 - config.vocab_size));
    expect(Object.keys(report.exactMatch)).toContain('bool_and');
    expect(existsSync(join(base, 'model.safetensors'))).toBe(true);
    expect(readCheckpoint(`${base}.ckpt`)?.state.step).toBe(3);

    const ck = join(tmp, 'ck-bool_and');
    const t = await runCli([
      'train', '--task', 'bool_and', '--library', lib, '--steps', '3', '--rank', '2', '--alpha', '4',
      '--batch-size', '4', '--eval-test', '2', '--eval-train', '2', '--checkpoint-dir', ck, '--json',
    ]);
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    const r = JSON.parse(t.stdout) as { name: string; metrics: Record<string, number> };
    expect(r.name).toBe('bool_and');
    const entry = (await openLibrary(lib)).getModule('bool_and');
    expect(entry.task).toBe('bool_and');
    expect(entry.base.fingerprint).not.toBeNull();
    expect(entry.metrics).toMatchObject({ steps: 3, test_exact_match: r.metrics.test_exact_match, train_exact_match: r.metrics.train_exact_match });
    expect(entry.peft).toMatchObject({ r: 2, alpha: 4, targetModules: ['q', 'v'], baseModelNameOrPath: 'lorahub/t5-word-tiny' });
    // The run's checkpoint only serves recovery: gone after success.
    expect(existsSync(ck)).toBe(false);

    const out = join(tmp, 'dy');
    const d = await runCli(['train', '--task', 'bool_or', '--library', lib, '--dylora', '1:4', '--steps', '2', '--batch-size', '4', '--eval-test', '1', '--eval-train', '1', '--out', out, '--no-add', '--json']);
    expect(d.code).toBe(0);
    expect((await readAdapter(out)).config.r).toBe(4);
    // --eval-train 0: no train metric (not an error on an empty set).
    const e = await runCli(['train', '--task', 'bool_or', '--library', lib, '--steps', '2', '--batch-size', '4', '--eval-test', '1', '--eval-train', '0', '--out', join(tmp, 'no-train-eval'), '--no-add', '--json']);
    expect(e.stderr).toBe('');
    expect(Object.keys((JSON.parse(e.stdout) as { metrics: Record<string, number> }).metrics)).not.toContain('train_exact_match');
    expect((await openLibrary(lib)).hasModule('bool_or-dylora')).toBe(false);
  });

  it('waits for a library lock held by another writer instead of failing at the end of a run', async () => {
    const lock = await acquireLibraryLock(lib);
    const ck = join(tmp, 'ck-locked');
    // Hold the lock until a second after training has finished (its final checkpoint is written
    // before evaluation and registration), so the registration meets a held lock.
    let released = false;
    const poll = setInterval(() => {
      if (readCheckpoint(ck)?.state.step === 2 && !released) {
        released = true;
        setTimeout(() => void lock.release(), 1000);
      }
    }, 20);
    try {
      const t = await runCli([
        'train', '--task', 'bool_not_chain', '--library', lib, '--steps', '2', '--rank', '2', '--alpha', '4', '--batch-size', '2',
        '--eval-test', '1', '--eval-train', '1', '--checkpoint-dir', ck, '--json',
      ]);
      expect(t.stderr).toBe('');
      expect(t.code).toBe(0);
    } finally {
      clearInterval(poll);
      if (!released) await lock.release();
    }
    expect(released).toBe(true);
    expect((await openLibrary(lib)).hasModule('bool_not_chain')).toBe(true);
  });

  it('refuses, before training, a module that would not compose with the library\'s modules (unless --force)', async () => {
    const ck = join(tmp, 'ck-rank4');
    const r = await runCli(['train', '--task', 'bool_or', '--library', lib, '--steps', '1', '--rank', '4', '--alpha', '4', '--checkpoint-dir', ck]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^lorahub: error: module "bool_or" \(trained on bool_or\) does not compose with the library's modules for its base: module "bool_or", key "[^"]+": rank 4, expected 2 \(as "[^"]+"\); use --force to add it anyway \(compose then never samples it; give it to compose by name with --harmonize truncate\|pad\)\n$/,
    );
    expect(existsSync(ck)).toBe(false);
    expect((await openLibrary(lib)).hasModule('bool_or')).toBe(false);
  });

  it('--tasks trains on the named upstream tasks only; a target or unknown name is refused', async () => {
    const out = join(tmp, 'subset');
    const r = await runCli([
      'train-base', '--out', out, '--size', 'tiny', '--steps', '1', '--pretrain-steps', '0', '--tasks', 'bool_or, bool_and',
      '--max-per-task', '2', '--batch-size', '2', '--eval-per-task', '1', '--weight-decay', '0.01', '--tokenizer', 'bytes', '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Object.keys((JSON.parse(r.stdout) as { exactMatch: Record<string, number> }).exactMatch)).toEqual(['bool_and', 'bool_or']);
    const training = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).lorahub_training;
    expect(training.upstream_tasks).toEqual(['bool_and', 'bool_or']);
    // The recipe a base was trained with travels in its config (the shipped one: 0.1).
    expect(training.weight_decay).toBe(0.01);
    // --tokenizer bytes: ByT5's vocabulary and tokenizer files, no tokenizer.json.
    expect(training.tokenizer).toBe('bytes');
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({ _name_or_path: 'lorahub/t5-byte-tiny', vocab_size: 384 });
    expect(JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')).tokenizer_class).toBe('ByT5Tokenizer');
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(false);

    const target = await runCli(['train-base', '--out', join(tmp, 'no'), '--size', 'tiny', '--steps', '1', '--tasks', 'bool_and,boolean_expressions']);
    expect(target.code).toBe(2);
    expect(target.stderr).toMatch(/base training must not see target tasks, got "boolean_expressions" \(target\)/);
    const unknown = await runCli(['train-base', '--out', join(tmp, 'no'), '--size', 'tiny', '--steps', '1', '--tasks', 'bool_nope']);
    expect(unknown.stderr).toMatch(/unknown task "bool_nope" \(available: .*bool_and/);
    expect(existsSync(join(tmp, 'no'))).toBe(false);
  });

  it('refuses to put a module trained on a target task into the library', async () => {
    const r = await runCli(['train', '--task', 'boolean_expressions', '--library', lib, '--steps', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lorahub: error: task "boolean_expressions" is a target task/);
  });

  it('Ctrl-C saves a checkpoint and exits; --resume continues from it', async () => {
    const out = join(tmp, 'sig');
    const args = ['train-base', '--out', out, '--size', 'tiny', '--max-per-task', '2', '--batch-size', '2', '--eval-per-task', '0'];
    const child = spawn(process.execPath, [join(REPO, 'bin', 'lorahub.mjs'), '--backend', 'wasm', ...args, '--steps', '400', '--log-every', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!sent && /step 2\/400/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    expect(stderr).toMatch(/lorahub: error: interrupted at step \d+; checkpoint saved in .*sig\.ckpt \(continue with --resume\)/);
    expect(code).toBe(1);
    const step = readCheckpoint(`${out}.ckpt`)?.state.step ?? -1;
    expect(step).toBeGreaterThanOrEqual(2);
    // The same engine (a checkpoint resumes only on the engine that wrote it).
    const r = await runCli(['--backend', 'wasm', ...args, '--steps', String(step + 1), '--resume', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ steps: step + 1, resumedFrom: step });
    const training = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).lorahub_training;
    expect(training.steps).toBe(step + 1);
    // AdamW's λ = 0.1 is train-base's default (README, "The shipped default").
    expect(training.weight_decay).toBe(0.1);
  });
});
