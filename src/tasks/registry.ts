/**
 * The task registry: the JSON files in tasks/ (or another directory), validated on load.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LorahubError } from '../errors.ts';
import { validateTask } from './schema.ts';
import type { TaskDef } from './types.ts';

/** <repo>/tasks, found from this file's location so it works from any working directory. */
export const DEFAULT_TASKS_DIR = fileURLToPath(new URL('../../tasks/', import.meta.url));

/**
 * Where this project's checkouts keep the real BIG-Bench Hard files: ../shared/bbh beside the
 * repository. Used for evaluation only (compose reports accuracy on <task>.json there when present).
 */
export const DEFAULT_BBH_DIR = fileURLToPath(new URL('../../../shared/bbh/', import.meta.url));

/** Reads and validates one task file; the file name (without .json) must equal the task's name. */
export function loadTaskFile(path: string): TaskDef {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LorahubError('NOT_FOUND', `cannot read task file ${path}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new LorahubError('BAD_FILE', `${path}: invalid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  const task = validateTask(raw, path);
  const stem = basename(path, '.json');
  if (task.name !== stem) {
    throw new LorahubError('BAD_FILE', `${path}: field "name": "${task.name}" does not match the file name "${stem}.json"`);
  }
  return task;
}

const KIND_ORDER = { upstream: 0, target: 1 } as const;

/** Every task in `dir`, upstream first, then by name. Also checks that `related` names exist. */
export function listTasks(dir: string = DEFAULT_TASKS_DIR): TaskDef[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new LorahubError('NOT_FOUND', `tasks directory not found: ${dir}`);
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const tasks = files.map((f) => loadTaskFile(join(dir, f)));
  const names = new Set(tasks.map((t) => t.name));
  tasks.forEach((t, i) => {
    (t.related ?? []).forEach((r, j) => {
      if (!names.has(r)) {
        throw new LorahubError('BAD_FILE', `${join(dir, files[i])}: field "related[${j}]": unknown task "${r}"`);
      }
    });
  });
  return tasks.sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function getTask(name: string, dir: string = DEFAULT_TASKS_DIR): TaskDef {
  return getTasks([name], dir)[0];
}

/** The named tasks, each once, in registry order (one read of the folder); an unknown name is an error. */
export function getTasks(names: readonly string[], dir: string = DEFAULT_TASKS_DIR): TaskDef[] {
  const tasks = listTasks(dir);
  const known = new Set(tasks.map((t) => t.name));
  const unknown = names.find((n) => !known.has(n));
  if (unknown !== undefined) {
    throw new LorahubError('NOT_FOUND', `unknown task "${unknown}" (available: ${tasks.map((t) => t.name).join(', ')})`);
  }
  const wanted = new Set(names);
  return tasks.filter((t) => wanted.has(t.name));
}
