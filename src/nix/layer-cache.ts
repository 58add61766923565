import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { nixregCacheDir, readCacheEntry, writeCacheEntry } from '../util/cache-file.js';

/**
 * diffID + size of generated layers, keyed by everything that determines the layer bytes, so a second stream of
 * an unchanged image needs no hashing pass. Entries are tiny JSON files (src/util/cache-file.ts: whole or absent
 * under concurrent runs; a bad entry is a miss, a failed write is ignored: the cache never fails a stream).
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
    return join(nixregCacheDir(env), 'layers');
  }

  fileFor(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  async get(key: string): Promise<LayerCacheEntry | undefined> {
    const e = readCacheEntry(this.fileFor(key), ENTRY_VERSION);
    if (e && typeof e.diffID === 'string' && /^sha256:[0-9a-f]{64}$/.test(e.diffID) && Number.isSafeInteger(e.size)) return { diffID: e.diffID, size: e.size };
    return undefined;
  }

  async put(key: string, entry: LayerCacheEntry): Promise<void> {
    await writeCacheEntry(this.fileFor(key), ENTRY_VERSION, { ...entry });
  }
}

/** Stable key: sha256 over a canonical JSON of the inputs (callers include a tar-rules version). */
export function layerCacheKey(inputs: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}
