/**
 * `lorahub tasks list|show|sample`: the task registry (src/tasks). Each sub-command is one library
 * call plus formatting; errors are LorahubErrors for main.ts to print.
 */
import { Command } from 'commander';
import { getTask, listTasks, sampleExamples, taskExamples, type Split, type TaskDef } from '../../tasks/index.ts';
import { choiceArg, intArg } from '../shared/common.ts';

interface DirOpts {
  tasksDir?: string;
}

const TASKS_ENV = 'LORAHUB_TASKS';
const tasksDir = (opts: DirOpts): string | undefined => opts.tasksDir ?? process.env[TASKS_ENV];

function summary(t: TaskDef): { name: string; kind: string; description: string; generator: string; splits: TaskDef['splits'] } {
  return { name: t.name, kind: t.kind, description: t.description, generator: t.generator, splits: t.splits };
}

/** Left-aligned columns; the last column is not padded. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

export function register(program: Command, write: (text: string) => void = (t) => process.stdout.write(t)): void {
  const out = (text: string): void => write(text.endsWith('\n') ? text : `${text}\n`);
  const tasks = program
    .command('tasks')
    .description('upstream skill tasks and BBH-format target tasks: list, show, sample examples');
  const dirOption = (cmd: Command): Command =>
    cmd.option('--tasks-dir <path>', `task files directory (default: <repo>/tasks; env ${TASKS_ENV})`);

  dirOption(tasks.command('list'))
    .description('list every task: name, kind, split sizes, description')
    .option('--json', 'print JSON')
    .action((opts: DirOpts & { json?: boolean }) => {
      const all = listTasks(tasksDir(opts));
      if (opts.json) {
        out(JSON.stringify(all.map(summary), null, 2));
        return;
      }
      const rows = [['NAME', 'KIND', 'TRAIN', 'TEST', 'DESCRIPTION']];
      for (const t of all) rows.push([t.name, t.kind, String(t.splits.train), String(t.splits.test), t.description]);
      out(table(rows));
    });

  dirOption(tasks.command('show'))
    .description('a task definition and two of its training examples')
    .argument('<name>', 'task name')
    .option('--json', 'print JSON')
    .action((name: string, opts: DirOpts & { json?: boolean }) => {
      const task = getTask(name, tasksDir(opts));
      const examples = taskExamples(task, 'train').slice(0, 2);
      if (opts.json) {
        out(JSON.stringify({ task, examples }, null, 2));
        return;
      }
      const lines = [JSON.stringify(task, null, 2), '', 'Examples (train):'];
      for (const e of examples) lines.push('---', e.input, `=> ${e.target}`);
      out(lines.join('\n'));
    });

  dirOption(tasks.command('sample'))
    .description('K examples of a split as jsonl ({"input","target"} per line); --json: BBH json')
    .argument('<name>', 'task name')
    .option('-n, --num <k>', 'number of examples', intArg('-n', 'positive'), 5)
    .option('--split <split>', 'train | test', choiceArg('--split', ['train', 'test']), 'train')
    .option('--seed <s>', 'sampling seed', intArg('--seed', 'any'), 0)
    .option('--json', 'print one BBH-format document {"examples": [...]} instead of jsonl')
    .action((name: string, opts: DirOpts & { num: number; split: Split; seed: number; json?: boolean }) => {
      const examples = sampleExamples(getTask(name, tasksDir(opts)), opts.split, opts.num, opts.seed).map((e) => ({
        input: e.input,
        target: e.target,
      }));
      if (opts.json) out(JSON.stringify({ examples }, null, 2));
      else out(examples.map((e) => JSON.stringify(e)).join('\n'));
    });
}
