/**
 * One writer at a time per library. proper-lockfile makes `<library>/.lock` with mkdir (atomic) and
 * keeps its mtime fresh while held, so a lock left by a crashed process on another machine goes
 * stale after `STALE_MS`. Because proper-lockfile records no owner, the holder also writes
 * `.lock.owner` (pid + host): the "locked" error names the pid, and a lock whose owner is a dead
 * process on this host is broken at once instead of after the stale period (a SIGKILLed `add`
 * must not block the next command for long).
 *
 * Interactive commands fail fast on a live lock. Callers that have just spent minutes producing
 * something to register (`lorahub train`, `train-base`) pass `waitMs`: a mutation holds the lock
 * for a second or two (copy a few MB, rename, write the manifest), so a short poll turns the
 * collisions of a parallel build into a brief wait instead of a failed step.
 */
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { LorahubError } from '../errors.ts';
import { fileSystemError, processAlive, writeFileAtomic } from '../io/atomic.ts';

export const LOCK_DIR = '.lock';
export const LOCK_OWNER_FILE = '.lock.owner';
/** proper-lockfile refreshes the lock every STALE_MS / 2. */
const STALE_MS = 20_000;

interface Owner {
  pid: number;
  host: string;
  since: string;
}

export interface LibraryLock {
  /** Throws LOCKED if the lock was lost (e.g. its mtime could not be refreshed): do not commit then. */
  assertHeld(): void;
  release(): Promise<void>;
}

function readOwner(dir: string): Owner | undefined {
  try {
    const o = JSON.parse(readFileSync(join(dir, LOCK_OWNER_FILE), 'utf8')) as Partial<Owner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string') return { pid: o.pid, host: o.host, since: String(o.since) };
  } catch {
    // Missing or half-written owner file: the owner is unknown, fall back to mtime staleness.
  }
  return undefined;
}

/**
 * Breaks the lock of dead `owner`. Renaming the owner file is the claim: when several processes
 * find the same dead owner, exactly one rename succeeds, so only one of them removes the lock
 * directory (a second remover could otherwise delete the lock the first one just took).
 */
function claimDeadLock(dir: string, owner: Owner): boolean {
  const claimed = join(dir, `${LOCK_OWNER_FILE}.${process.pid}.claim.tmp`);
  try {
    renameSync(join(dir, LOCK_OWNER_FILE), claimed);
  } catch {
    return false; // someone else claimed it first (or the owner released it)
  }
  let same = false;
  try {
    const o = JSON.parse(readFileSync(claimed, 'utf8')) as Partial<Owner>;
    same = o.pid === owner.pid && o.host === owner.host;
  } catch {
    // unreadable: treat as not the owner we judged dead
  }
  if (same) {
    rmSync(claimed, { force: true });
    rmSync(join(dir, LOCK_DIR), { recursive: true, force: true });
  } else if (!existsSync(join(dir, LOCK_OWNER_FILE))) {
    // A live process re-took the lock in between: give its owner record back.
    renameSync(claimed, join(dir, LOCK_OWNER_FILE));
  } else {
    rmSync(claimed, { force: true });
  }
  return same;
}

async function tryLock(dir: string, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  return lockfile.lock(dir, {
    lockfilePath: join(dir, LOCK_DIR),
    realpath: false,
    stale: STALE_MS,
    retries: 0,
    onCompromised,
  });
}

export interface LockOptions {
  /** Keep retrying a lock held by a live process for up to this long (default 0: fail fast). */
  waitMs?: number;
}

/** Polling interval while waiting: starts short (mutations are brief), backs off to 1 s. */
const WAIT_FIRST_MS = 50;
const WAIT_MAX_MS = 1000;

/**
 * Takes the library lock. On a lock held by a live process: fails fast with LOCKED, or with
 * `waitMs` retries (backing off) until the deadline, then fails with LOCKED naming the wait.
 */
export async function acquireLibraryLock(dir: string, opts: LockOptions = {}): Promise<LibraryLock> {
  const waitMs = opts.waitMs ?? 0;
  const deadline = performance.now() + waitMs;
  for (let delay = WAIT_FIRST_MS; ; delay = Math.min(WAIT_MAX_MS, delay * 2)) {
    try {
      return await acquireOnce(dir);
    } catch (err) {
      if (!(err instanceof LorahubError) || err.code !== 'LOCKED' || waitMs === 0) throw err;
      const left = deadline - performance.now();
      if (left <= 0) throw new LorahubError('LOCKED', `${err.message} (waited ${(waitMs / 1000).toFixed(1)} s)`, { cause: err.cause });
      await new Promise((r) => setTimeout(r, Math.min(delay, left)));
    }
  }
}

/**
 * How long a lock without an owner record is given to get one. Its holder writes it right after
 * taking the lock, but on a loaded machine that can take a while: 200 ms was measured too short
 * under a parallel test run on 2 cores ("pid unknown"). Only a writer that lost a race waits.
 */
const OWNER_GRACE_MS = 2000;

/**
 * The owner of a held lock. A lock taken an instant ago has no owner record yet (proper-lockfile
 * makes `.lock`, then the holder writes `.lock.owner`): wait for it briefly, so that the error of
 * a writer that lost a race names the winner's pid, not "pid unknown".
 */
async function ownerOfFreshLock(dir: string): Promise<Owner | undefined> {
  const deadline = performance.now() + OWNER_GRACE_MS;
  for (;;) {
    const owner = readOwner(dir);
    if (owner || performance.now() >= deadline || !existsSync(join(dir, LOCK_DIR))) return owner;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function acquireOnce(dir: string): Promise<LibraryLock> {
  let compromised: Error | undefined;
  const onCompromised = (err: Error) => {
    compromised = err;
  };
  let release: () => Promise<void>;
  try {
    release = await tryLock(dir, onCompromised);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
      throw fileSystemError(dir, 'take the library lock', err);
    }
    const owner = await ownerOfFreshLock(dir);
    // Free after all: released while we looked (a holder removes its owner record, then the
    // lock), or held by a process on this host that died without unlocking (SIGKILL, power loss),
    // whose lock is broken here. Either way take it, retrying once, rather than report it held.
    const released = !owner && !existsSync(join(dir, LOCK_DIR));
    const broken = owner !== undefined && owner.host === hostname() && owner.pid !== process.pid && !processAlive(owner.pid) && claimDeadLock(dir, owner);
    if (!released && !broken) throw lockedError(dir, owner, err);
    try {
      release = await tryLock(dir, onCompromised);
    } catch (err2) {
      throw lockedError(dir, await ownerOfFreshLock(dir), err2);
    }
  }
  const me: Owner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  try {
    writeFileAtomic(join(dir, LOCK_OWNER_FILE), JSON.stringify(me));
  } catch (err) {
    // A lock without an owner record (a full disk refused it) would block every writer until it
    // goes stale: give it back before reporting.
    await release().catch(() => {});
    throw err;
  }
  return {
    assertHeld() {
      if (compromised) {
        throw new LorahubError('LOCKED', `library ${dir}: lost the lock (${compromised.message}); nothing was committed`, {
          cause: compromised,
        });
      }
    },
    async release() {
      rmSync(join(dir, LOCK_OWNER_FILE), { force: true });
      try {
        await release();
      } catch (err) {
        // Already released or compromised: nothing more to undo.
        if (!compromised) throw new LorahubError('BAD_FILE', `library ${dir}: cannot release the lock`, { cause: err });
      }
    },
  };
}

function lockedError(dir: string, owner: Owner | undefined, cause: unknown): LorahubError {
  const who = owner ? `pid ${owner.pid}${owner.host === hostname() ? '' : ` on ${owner.host}`}` : 'pid unknown';
  return new LorahubError('LOCKED', `library ${dir} is locked by another lorahub process (${who}); retry later`, { cause });
}

/** Runs `fn` holding the library lock; always releases it. */
export async function withLibraryLock<T>(dir: string, fn: (lock: LibraryLock) => Promise<T>): Promise<T> {
  const lock = await acquireLibraryLock(dir);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
