import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { PushCompression } from '../compression/compress.js';

/**
 * What `nixreg push` remembers between runs, so an unchanged layer costs one HEAD and no store read:
 *
 * - layer entries, keyed by the layer's exact inputs (store paths are immutable, so paths + owner/mtime + tar
 *   rules fully determine the tar; under --store-root a tree fingerprint is added) → diffID and tar size;
 * - blob entries, keyed by diffID + compression → compressed digest and size, plus the repositories (per
 *   registry) the blob was pushed to or found in, which become cross-repository mount candidates.
 *
 * One small JSON file per entry under `$XDG_CACHE_HOME/nixreg/push` (or `~/.cache/nixreg/push`), written to a
 * temp name and renamed, so concurrent pushes only ever see whole entries. Unreadable entries are misses and a
 * failed write is ignored: the cache only saves work, every digest is still verified by the registry.
 */
const VERSION = 1;
const MAX_REPOS = 16;

export interface LayerEntry {
  diffID: string;
  size: number;
}

export interface BlobEntry {
  digest: string;
  size: number;
  /** `registry/repository` names where the blob was seen, most recent first. */
  repos: string[];
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export class PushCache {
  constructor(readonly dir: string = PushCache.defaultDir()) {}

  static defaultDir(env: NodeJS.ProcessEnv = process.env): string {
    const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
    return join(base, 'nixreg', 'push');
  }

  async getLayer(inputsKey: string): Promise<LayerEntry | undefined> {
    const e = await this.read(`layer-${inputsKey}`);
    if (e && DIGEST.test(e.diffID) && Number.isSafeInteger(e.size)) return { diffID: e.diffID, size: e.size };
    return undefined;
  }

  async putLayer(inputsKey: string, entry: LayerEntry): Promise<void> {
    await this.write(`layer-${inputsKey}`, { diffID: entry.diffID, size: entry.size });
  }

  async getBlob(diffID: string, compression: PushCompression): Promise<BlobEntry | undefined> {
    const e = await this.read(blobKey(diffID, compression));
    if (e && DIGEST.test(e.digest) && Number.isSafeInteger(e.size)) {
      const repos = Array.isArray(e.repos) ? e.repos.filter((r: unknown): r is string => typeof r === 'string') : [];
      return { digest: e.digest, size: e.size, repos };
    }
    return undefined;
  }

  /** Record the compressed blob of a layer and that it now exists in `repo` (`registry/repository`). */
  async putBlob(diffID: string, compression: PushCompression, blob: { digest: string; size: number }, repo: string): Promise<void> {
    const old = await this.getBlob(diffID, compression);
    if (old && old.digest === blob.digest && old.size === blob.size && old.repos.includes(repo)) return; // nothing new: no write
    const repos = old && old.digest === blob.digest ? old.repos.filter((r) => r !== repo) : [];
    await this.write(blobKey(diffID, compression), { digest: blob.digest, size: blob.size, repos: [repo, ...repos].slice(0, MAX_REPOS) });
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private async read(name: string): Promise<any> {
    try {
      const e = JSON.parse(await readFile(this.file(name), 'utf8'));
      return e?.v === VERSION ? e : undefined;
    } catch {
      return undefined;
    }
  }

  private async write(name: string, value: Record<string, unknown>): Promise<void> {
    const target = this.file(name);
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(tmp, JSON.stringify({ v: VERSION, ...value }) + '\n');
      await rename(tmp, target);
    } catch {
      await rm(tmp, { force: true }).catch(() => {});
    }
  }
}

function blobKey(diffID: string, compression: PushCompression): string {
  return `blob-${compression}-${diffID.slice('sha256:'.length)}`;
}

/** Stable cache key over a JSON-able description of a layer's inputs. */
export function inputsKey(inputs: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}
