import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * diffID + size of generated layers, keyed by everything that determines the layer bytes, so a second stream of
 * an unchanged image needs no hashing pass. Entries are tiny JSON files written temp+rename, so concurrent runs
 * can only ever see a whole entry or none; a corrupt or unreadable entry is a miss, a failed write is ignored
 * (the cache is an optimisation, never a reason to fail a stream).
 */
export interface LayerCacheEntry {
  diffID: string;
  size: number;
}

const ENTRY_VERSION = 1;

export class LayerCache {
  constructor(readonly dir: string = LayerCache.defaultDir()) {}

  /** `$XDG_CACHE_HOME/nixreg/layers`, else `~/.cache/nixreg/layers`. */
  static defaultDir(env: NodeJS.ProcessEnv = process.env): string {
    const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
    return join(base, 'nixreg', 'layers');
  }

  fileFor(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  async get(key: string): Promise<LayerCacheEntry | undefined> {
    try {
      const e = JSON.parse(await readFile(this.fileFor(key), 'utf8'));
      if (e?.v === ENTRY_VERSION && /^sha256:[0-9a-f]{64}$/.test(e.diffID) && Number.isSafeInteger(e.size)) return { diffID: e.diffID, size: e.size };
    } catch {
      /* miss */
    }
    return undefined;
  }

  async put(key: string, entry: LayerCacheEntry): Promise<void> {
    const target = this.fileFor(key);
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(tmp, JSON.stringify({ v: ENTRY_VERSION, ...entry }) + '\n');
      await rename(tmp, target);
    } catch {
      await rm(tmp, { force: true }).catch(() => {});
    }
  }
}

/** Stable key: sha256 over a canonical JSON of the inputs (callers include a tar-rules version). */
export function layerCacheKey(inputs: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}
