import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from './pid-alive.js';

/**
 * Temp directories named `PREFIX<pid>-XXXXXX`, so a later run can tell whose they are: creating one first removes
 * the `PREFIX<pid>-*` directories in the same place whose process no longer exists (a run killed with kill -9
 * never reaches its cleanup). Directories of live processes are left alone.
 */
export function makeTempDirSync(prefix: string, base: string = tmpdir()): string {
  reclaimStaleTempDirs(prefix, base);
  return mkdtempSync(join(base, `${prefix}${process.pid}-`));
}

export async function makeTempDir(prefix: string, base: string = tmpdir()): Promise<string> {
  reclaimStaleTempDirs(prefix, base);
  return mkdtemp(join(base, `${prefix}${process.pid}-`));
}

/** Remove `base/PREFIX<pid>-XXXXXX` directories whose pid is gone; returns how many. Never throws. */
export function reclaimStaleTempDirs(prefix: string, base: string = tmpdir()): number {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-[A-Za-z0-9]{6}$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    try {
      rmSync(join(base, name), { recursive: true, force: true });
      removed++;
    } catch {
      // another run removed it first, or it is not ours to remove: leave it
    }
  }
  return removed;
}
