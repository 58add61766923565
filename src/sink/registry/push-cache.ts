import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { nixregCacheDir, readCacheEntry, writeCacheEntry } from '../../util/cache-file.js';

/**
 * What `nixreg push` remembers between runs, so an unchanged layer costs one HEAD and no store read:
 *
 * - layer entries, keyed by the layer's exact inputs (store paths are immutable, so paths + owner/mtime + tar
 *   rules fully determine the tar; under --store-root a tree fingerprint is added) → diffID and tar size;
 * - blob entries, keyed by diffID + codec (compression and level, see codecId) → compressed digest and size, plus the repositories (per
 *   registry) the blob was pushed to or found in, which become cross-repository mount candidates;
 * - repository lists keyed by blob digest alone, for registry-to-registry copies, which never see a diffID (skopeo's
 *   blob-info cache does the same): a second copy of an image into another repository of that registry mounts.
 *
 * One small JSON file per entry under `$XDG_CACHE_HOME/nixreg/push` (or `~/.cache/nixreg/push`), see
 * src/util/cache-file.ts (whole entries under concurrent pushes, bad entries are misses, failed writes ignored):
 * the cache only saves work, every digest is still verified by the registry.
 *
 * Each layer and blob entry carries `sum`, a sha256 binding the entry's own name (so its key: inputs, or diffID +
 * codec) to the diffID and the blob's digest and size it records. An entry whose sum does not match (edited,
 * swapped with another entry's fields, moved under another name, written by an older version) is a miss and is
 * replaced by the next record. Repository lists carry no sum: they only name mount candidates, and a mount of a
 * digest the repository does not hold is refused by the registry.
 */
const VERSION = 2;
const MAX_REPOS = 16;

export interface LayerEntry {
  diffID: string;
  size: number;
  /**
   * The layer's blob per codec, copied here from the blob entry so a warm push of a store layer costs one
   * cache read (and no write when this repository is already listed).
   */
  blobs?: Record<string, BlobEntry>;
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
    return join(nixregCacheDir(env), 'push');
  }

  async getLayer(inputsKey: string): Promise<LayerEntry | undefined> {
    const name = `layer-${inputsKey}`;
    const e = await this.read(name);
    if (!e || typeof e.diffID !== 'string' || !DIGEST.test(e.diffID) || !Number.isSafeInteger(e.size)) return undefined;
    if (e.sum !== entrySum(name, e.diffID, e.size)) return undefined;
    const blobs: Record<string, BlobEntry> = {};
    for (const [codec, v] of Object.entries(typeof e.blobs === 'object' && e.blobs ? e.blobs : {})) {
      const b = asBlob(v, e.diffID, codec);
      if (b) blobs[codec] = b;
    }
    return { diffID: e.diffID, size: e.size, blobs };
  }

  async getBlob(diffID: string, codec: string): Promise<BlobEntry | undefined> {
    return asBlob(await this.read(blobKey(diffID, codec)), diffID, codec);
  }

  /**
   * Record a layer's compressed blob and that it now exists in `repo` (`registry/repository`; undefined: only
   * the digest is known, e.g. from --precompute-digests): in the blob entry
   * and, for a store layer, in its layer entry. `known` is what the caller read before (skips the re-read);
   * nothing is written when nothing changed.
   */
  async recordBlob(
    layer: { diffID: string; size: number; inputsKey?: string },
    codec: string,
    blob: { digest: string; size: number },
    repo: string | undefined,
    known?: BlobEntry,
  ): Promise<void> {
    const old = known ?? (await this.getBlob(layer.diffID, codec));
    if (old && old.digest === blob.digest && old.size === blob.size && (repo === undefined || old.repos.includes(repo))) return;
    const repos = old && old.digest === blob.digest ? old.repos : [];
    const entry: BlobEntry = { digest: blob.digest, size: blob.size, repos: repo ? mostRecentFirst(repo, repos) : repos.slice(0, MAX_REPOS) };
    await this.write(blobKey(layer.diffID, codec), withSum(entry, layer.diffID, codec));
    if (layer.inputsKey) {
      const name = `layer-${layer.inputsKey}`;
      const prev = await this.getLayer(layer.inputsKey);
      const blobs = prev && prev.diffID === layer.diffID ? { ...prev.blobs } : {};
      blobs[codec] = entry;
      const summed = Object.fromEntries(Object.entries(blobs).map(([c, b]) => [c, withSum(b, layer.diffID, c)]));
      await this.write(name, { diffID: layer.diffID, size: layer.size, sum: entrySum(name, layer.diffID, layer.size), blobs: summed });
    }
  }

  /** `registry/repository` names where the blob with this digest was copied to or found, most recent first. */
  async reposOf(digest: string): Promise<string[]> {
    if (!DIGEST.test(digest)) return [];
    const e = await this.read(`repos-${digest.slice('sha256:'.length)}`);
    return stringList(e?.repos).slice(0, MAX_REPOS);
  }

  /** Record that `repo` now holds the blob; `known` is what reposOf gave (nothing is written when it is already first). */
  async recordRepo(digest: string, repo: string, known?: string[]): Promise<void> {
    if (!DIGEST.test(digest)) return;
    const old = known ?? (await this.reposOf(digest));
    if (old[0] === repo) return;
    await this.write(`repos-${digest.slice('sha256:'.length)}`, { repos: mostRecentFirst(repo, old) });
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  // biome-ignore lint/suspicious/noExplicitAny: a cache entry's JSON, checked field by field by each caller
  private async read(name: string): Promise<any> {
    return readCacheEntry(this.file(name), VERSION);
  }

  private async write(name: string, value: Record<string, unknown>): Promise<void> {
    await writeCacheEntry(this.file(name), VERSION, value);
  }
}

/** The blob entry of layer `diffID` under `codec` in `e`, when well formed and its sum binds it to that layer and codec. */
function asBlob(e: unknown, diffID: string, codec: string): BlobEntry | undefined {
  const o = e as { digest?: unknown; size?: unknown; repos?: unknown; sum?: unknown } | undefined;
  if (!o || typeof o.digest !== 'string' || !DIGEST.test(o.digest) || !Number.isSafeInteger(o.size)) return undefined;
  if (o.sum !== entrySum(blobKey(diffID, codec), diffID, o.digest, o.size as number)) return undefined;
  return { digest: o.digest, size: o.size as number, repos: stringList(o.repos) };
}

/** A blob entry as stored (in its own file and inside layer entries): with the sum binding it to its layer and codec. */
const withSum = (b: BlobEntry, diffID: string, codec: string) => ({ ...b, sum: entrySum(blobKey(diffID, codec), diffID, b.digest, b.size) });

/** sha256 over an entry's name and the values it records (see the class comment). */
function entrySum(name: string, ...values: (string | number)[]): string {
  return createHash('sha256')
    .update(JSON.stringify([name, ...values]))
    .digest('hex');
}

/** The strings of a JSON value that should be a list of them (a damaged entry gives fewer, never a crash). */
const stringList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((r): r is string => typeof r === 'string') : []);

/** `repo` moved to the front of a repository list, capped at MAX_REPOS. */
const mostRecentFirst = (repo: string, repos: readonly string[]): string[] => [repo, ...repos.filter((r) => r !== repo)].slice(0, MAX_REPOS);

function blobKey(diffID: string, codec: string): string {
  return `blob-${codec}-${diffID.slice('sha256:'.length)}`;
}

/** Stable cache key over a JSON-able description of a layer's inputs. */
export function inputsKey(inputs: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}
