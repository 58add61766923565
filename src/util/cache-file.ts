import { makeDirs } from './make-dirs.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The small JSON entry files of nixreg's caches (layer diffIDs, push blobs). The caches only save work, so:
 * an unreadable, corrupt or other-version entry is a miss, and a failed write is ignored. Writes go to a
 * temp name beside the entry and are renamed into place, so concurrent runs only ever see a whole entry or none.
 */

/** `$XDG_CACHE_HOME/nixreg` (only an absolute XDG_CACHE_HOME counts, as the XDG spec says), else `~/.cache/nixreg`. */
export function nixregCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg?.startsWith('/') ? xdg : join(homedir(), '.cache'), 'nixreg');
}

/** The entry's JSON when it carries `v: version`, else undefined. */
// biome-ignore lint/suspicious/noExplicitAny: the entry's JSON, checked field by field by each caller
export function readCacheEntry(file: string, version: number): any {
  try {
    // Synchronous on purpose: entries are ~200 bytes, and a warm push reads one per layer; readFileSync costs
    // microseconds where fs/promises' open/fstat/read/close round trips through the thread pool cost ~1 ms each
    // (measured: 101 layers, 140 ms → a few ms).
    const e = JSON.parse(readFileSync(file, 'utf8'));
    return e?.v === version ? e : undefined;
  } catch {
    return undefined;
  }
}

/** Write `{v: version, ...value}` to `file` (temp + rename); never throws. */
export async function writeCacheEntry(file: string, version: number, value: Record<string, unknown>): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await makeDirs(dirname(file));
    await writeFile(tmp, JSON.stringify({ v: version, ...value }) + '\n');
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true }).catch(() => {});
  }
}
