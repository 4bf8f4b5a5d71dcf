/**
 * Fault injection for a lorahub child process, with no hook in product code: the test passes
 * `--import <this file>` in the child's NODE_OPTIONS and describes one fault in LORAHUB_FAULT
 * (JSON). This module patches `node:fs` and then calls syncBuiltinESMExports(), so the patch is
 * seen both by `fs.renameSync(…)` callers (io/atomic.ts) and by ESM named imports
 * (`import { renameSync } from 'node:fs'` in library.ts).
 *
 * LORAHUB_FAULT = {
 *   op:     'rename' | 'copyFile' | 'write' | 'rm'   which call to watch
 *   match:  regular expression (JavaScript source) tested against the call's path: for rename and
 *           copyFile `"<from> -> <to>"`, for write the file the descriptor was opened on, for rm
 *           the path removed
 *   nth:    fire on the nth matching call (default 1)
 *   when:   'before' | 'after' the real call ('stop' only; default 'before')
 *   action: 'stop'   write `lorahub-fault: stopped <when> <op> <path>` to stderr, then SIGSTOP this
 *                    process: the test SIGKILLs it there (a crash at exactly this point) or
 *                    SIGCONTs it (a writer held in the middle of its work)
 *           'enospc' the call fails as a full disk does: write lets `bytes` bytes (default 0,
 *                    summed over the matching files) through, returning short counts, then throws
 *                    ENOSPC; copyFile writes the first half of the file, then throws
 * }
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const spec = process.env.LORAHUB_FAULT ? JSON.parse(process.env.LORAHUB_FAULT) : undefined;

if (spec) {
  const re = new RegExp(spec.match);
  const nth = spec.nth ?? 1;
  const when = spec.when ?? 'before';
  // The originals: the hook's own writes and copies must not go through the patch.
  const real = {
    renameSync: fs.renameSync,
    copyFileSync: fs.copyFileSync,
    writeSync: fs.writeSync,
    openSync: fs.openSync,
    closeSync: fs.closeSync,
    rmSync: fs.rmSync,
  };
  let seen = 0;
  /** Whether this call is the one to act on (the nth that matches). */
  const hit = (op, path) => op === spec.op && re.test(path) && ++seen === nth;

  const stop = (what) => {
    real.writeSync(2, `lorahub-fault: stopped ${when} ${spec.op} ${what}\n`);
    process.kill(process.pid, 'SIGSTOP');
  };

  const enospc = (syscall, path) =>
    Object.assign(new Error(`ENOSPC: no space left on device, ${syscall} '${path}'`), { errno: -28, code: 'ENOSPC', syscall, path });

  /** Runs `call` with the stop fault around it when this is the call. */
  const around = (op, what, call) => {
    if (!hit(op, what)) return call();
    if (spec.action !== 'stop') throw new Error(`lorahub-fault: action ${spec.action} does not apply to ${op}`);
    if (when === 'before') stop(what);
    const out = call();
    if (when === 'after') stop(what);
    return out;
  };

  fs.renameSync = (from, to) => around('rename', `${from} -> ${to}`, () => real.renameSync(from, to));
  fs.rmSync = (path, opts) => around('rm', String(path), () => real.rmSync(path, opts));

  fs.copyFileSync = (from, to, mode) => {
    const what = `${from} -> ${to}`;
    if (spec.op === 'copyFile' && spec.action === 'enospc' && re.test(what)) {
      const data = fs.readFileSync(from);
      fs.writeFileSync(to, data.subarray(0, data.length >> 1));
      throw enospc('copyfile', `${from}' -> '${to}`);
    }
    return around('copyFile', what, () => real.copyFileSync(from, to, mode));
  };

  // For write faults: which file each descriptor is, and the bytes still allowed.
  const paths = new Map();
  let budget = spec.bytes ?? 0;
  fs.openSync = (path, ...rest) => {
    const fd = real.openSync(path, ...rest);
    paths.set(fd, String(path));
    return fd;
  };
  fs.closeSync = (fd) => {
    paths.delete(fd);
    return real.closeSync(fd);
  };
  fs.writeSync = (fd, data, ...rest) => {
    const path = paths.get(fd);
    if (spec.op !== 'write' || path === undefined || !re.test(path)) return real.writeSync(fd, data, ...rest);
    if (spec.action === 'stop') return around('write', path, () => real.writeSync(fd, data, ...rest));
    // writeSync(fd, buffer, offset?, length?, position?) is what io/atomic.ts calls.
    if (typeof data === 'string') data = Buffer.from(data);
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    const length = typeof rest[1] === 'number' ? rest[1] : data.byteLength - offset;
    if (budget <= 0) throw enospc('write', path);
    const n = Math.min(budget, length);
    budget -= n;
    return real.writeSync(fd, data, offset, n, rest[2]);
  };

  syncBuiltinESMExports();
}
