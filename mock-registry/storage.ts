import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from './errors.js';
import { parseManifest, type ManifestInfo } from './manifests.js';

/**
 * Registry state: content-addressed blobs shared by all repositories, per-repository blob links, manifests and
 * tags, and open upload sessions.
 *
 * Metadata always lives in memory (maps below). With a directory, every change is also persisted so the registry
 * survives restarts, and in an order that never leaves a dangling reference after a crash:
 *   blob bytes → <dir>/_uploads/<id> (temp), verified, renamed into <dir>/blobs/sha256/<hex>, then linked;
 *   manifest bytes and tags → temp file + rename.
 * Stale upload temp files are removed at start-up. Path components starting with "_" cannot clash with repository
 * names (the name grammar starts every component with [a-z0-9]).
 */
export interface StoredManifest {
  info: ManifestInfo;
  body: Buffer;
}

interface Repo {
  blobs: Set<string>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

export interface Upload {
  id: string;
  name: string;
  size: number;
  /** running sha256 over everything received, so closing never re-reads the bytes */
  hash: Hash;
  busy: boolean;
  chunks?: Buffer[]; // memory mode
  file?: string; // directory mode
}

const hexOf = (digest: string) => digest.slice('sha256:'.length);

export class Storage {
  private readonly repos = new Map<string, Repo>();
  /** digest → size, for every blob whose bytes are stored */
  private readonly sizes = new Map<string, number>();
  private readonly memBlobs = new Map<string, Buffer>();
  private readonly uploads = new Map<string, Upload>();

  private constructor(readonly dir: string | undefined) {}

  static async open(dir?: string): Promise<Storage> {
    const s = new Storage(dir);
    if (dir) await s.load(dir);
    return s;
  }

  // ---------------------------------------------------------------- repositories
  private repo(name: string, create: true): Repo;
  private repo(name: string, create?: false): Repo | undefined;
  private repo(name: string, create = false): Repo | undefined {
    let r = this.repos.get(name);
    if (!r && create) this.repos.set(name, (r = { blobs: new Set(), manifests: new Map(), tags: new Map() }));
    return r;
  }
  hasRepo(name: string): boolean {
    return this.repos.has(name);
  }
  /** Digests of the blobs linked into a repository, sorted (tests: "exactly these blobs"). */
  repoBlobs(name: string): string[] {
    return [...(this.repo(name)?.blobs ?? [])].sort();
  }
  repoNames(): string[] {
    return [...this.repos.keys()].sort();
  }
  private repoDir(name: string): string {
    return join(this.dir!, 'repositories', name);
  }

  // ---------------------------------------------------------------- blobs
  /** Size of a blob linked into `name`, or undefined. */
  blobSize(name: string, digest: string): number | undefined {
    return this.repo(name)?.blobs.has(digest) ? this.sizes.get(digest) : undefined;
  }
  /** Size of a blob stored anywhere in the registry (for anonymous mounts). */
  anyBlobSize(digest: string): number | undefined {
    return this.sizes.get(digest);
  }
  /** Stream bytes [start, end] (inclusive) of a stored blob. */
  readBlob(digest: string, start: number, end: number): Readable {
    if (!this.dir) return Readable.from([this.memBlobs.get(digest)!.subarray(start, end + 1)]);
    if (end < start) return Readable.from([]);
    return createReadStream(this.blobPath(digest), { start, end, highWaterMark: 256 * 1024 });
  }
  private blobPath(digest: string): string {
    return join(this.dir!, 'blobs', 'sha256', hexOf(digest));
  }
  async linkBlob(name: string, digest: string): Promise<void> {
    const r = this.repo(name, true);
    if (r.blobs.has(digest)) return;
    if (this.dir) {
      const p = join(this.repoDir(name), '_layers', hexOf(digest));
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, '');
    }
    r.blobs.add(digest);
  }
  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    const r = this.repo(name);
    if (!r?.blobs.delete(digest)) return false;
    if (this.dir) await rm(join(this.repoDir(name), '_layers', hexOf(digest)), { force: true });
    // Drop the bytes once no repository links them, so a deleted blob cannot be mounted anonymously either.
    if (![...this.repos.values()].some((x) => x.blobs.has(digest))) {
      this.sizes.delete(digest);
      this.memBlobs.delete(digest);
      if (this.dir) await rm(this.blobPath(digest), { force: true });
    }
    return true;
  }

  // ---------------------------------------------------------------- uploads
  async startUpload(name: string): Promise<Upload> {
    const id = randomUUID();
    const u: Upload = { id, name, size: 0, hash: createHash('sha256'), busy: false };
    if (this.dir) {
      u.file = join(this.dir, '_uploads', id);
      await mkdir(dirname(u.file), { recursive: true });
      await writeFile(u.file, '');
    } else u.chunks = [];
    this.uploads.set(id, u);
    return u;
  }
  /** Upload sessions started and neither completed nor cancelled (resilience tests: none may leak). */
  get openUploads(): number {
    return this.uploads.size;
  }
  getUpload(name: string, id: string): Upload | undefined {
    const u = this.uploads.get(id);
    return u && u.name === name ? u : undefined;
  }

  /**
   * Stream `body` onto the end of the upload. If the body fails, or its length differs from `expectedLength`,
   * the upload is rolled back to where it was, so a client may retry the chunk.
   */
  async append(u: Upload, body: Readable, expectedLength?: number): Promise<number> {
    const before = { size: u.size, hash: u.hash.copy(), chunks: u.chunks?.length ?? 0 };
    let count = 0;
    const hash = u.hash;
    const meter = new Transform({
      transform(chunk: Buffer, _e, cb: TransformCallback) {
        hash.update(chunk);
        count += chunk.length;
        cb(null, chunk);
      },
    });
    const sink: Writable = u.file
      ? createWriteStream(u.file, { flags: 'r+', start: u.size })
      : new Writable({
          write(chunk: Buffer, _e, cb) {
            u.chunks!.push(chunk);
            cb();
          },
        });
    try {
      await pipeline(body, meter, sink);
      if (expectedLength !== undefined && count !== expectedLength)
        throw new RegistryError(400, 'SIZE_INVALID', `received ${count} bytes, but the request announced ${expectedLength}`);
    } catch (err) {
      u.hash = before.hash;
      if (u.chunks) u.chunks.length = before.chunks;
      if (u.file) await truncate(u.file, before.size).catch(() => undefined);
      throw err;
    }
    u.size += count;
    return count;
  }

  /** Close the upload: verify the digest over what was received, then publish the blob. */
  async commitUpload(u: Upload, digest: string): Promise<void> {
    const got = 'sha256:' + u.hash.copy().digest('hex');
    if (got !== digest) {
      await this.cancelUpload(u);
      throw new RegistryError(400, 'DIGEST_INVALID', `digest mismatch: upload has ${got}, client said ${digest}`, {
        expected: digest,
        actual: got,
      });
    }
    this.uploads.delete(u.id);
    if (!this.sizes.has(digest)) {
      if (u.file) {
        const fh = await open(u.file, 'r+');
        await fh.sync(); // the rename below must never publish bytes that are not on disk yet
        await fh.close();
        const target = this.blobPath(digest);
        await mkdir(dirname(target), { recursive: true });
        await rename(u.file, target);
      } else this.memBlobs.set(digest, Buffer.concat(u.chunks!));
      this.sizes.set(digest, u.size);
    } else if (u.file) await rm(u.file, { force: true });
    await this.linkBlob(u.name, digest);
  }

  async cancelUpload(u: Upload): Promise<void> {
    this.uploads.delete(u.id);
    if (u.file) await rm(u.file, { force: true });
  }

  // ---------------------------------------------------------------- manifests and tags
  resolve(name: string, ref: string): StoredManifest | undefined {
    const r = this.repo(name);
    if (!r) return undefined;
    const digest = ref.includes(':') ? ref : r.tags.get(ref);
    return digest ? r.manifests.get(digest) : undefined;
  }
  manifests(name: string): StoredManifest[] {
    return [...(this.repo(name)?.manifests.values() ?? [])];
  }
  hasManifest(name: string, digest: string): boolean {
    return this.repo(name)?.manifests.has(digest) ?? false;
  }
  tags(name: string): string[] | undefined {
    const r = this.repo(name);
    // Plain sort = Go's sort.Strings (byte order), which the spec names.
    return r ? [...r.tags.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : undefined;
  }

  async putManifest(name: string, info: ManifestInfo, body: Buffer, tag?: string): Promise<void> {
    const r = this.repo(name, true);
    if (this.dir) {
      const mdir = join(this.repoDir(name), '_manifests');
      await mkdir(mdir, { recursive: true });
      const hex = hexOf(info.digest);
      // media type first: a body file without it is never created, a type file without a body is ignored on load
      await atomicWrite(join(mdir, hex + '.type'), info.mediaType);
      await atomicWrite(join(mdir, hex), body);
      if (tag) {
        await mkdir(join(this.repoDir(name), '_tags'), { recursive: true });
        await atomicWrite(join(this.repoDir(name), '_tags', tag), info.digest);
      }
    }
    r.manifests.set(info.digest, { info, body });
    if (tag) r.tags.set(tag, info.digest);
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    const r = this.repo(name);
    if (!r?.tags.delete(tag)) return false;
    if (this.dir) await rm(join(this.repoDir(name), '_tags', tag), { force: true });
    return true;
  }

  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const r = this.repo(name);
    if (!r?.manifests.delete(digest)) return false;
    for (const [t, d] of [...r.tags]) if (d === digest) await this.deleteTag(name, t);
    if (this.dir) {
      const base = join(this.repoDir(name), '_manifests', hexOf(digest));
      await rm(base, { force: true });
      await rm(base + '.type', { force: true });
    }
    return true;
  }

  // ---------------------------------------------------------------- persistence
  private async load(dir: string): Promise<void> {
    await rm(join(dir, '_uploads'), { recursive: true, force: true });
    const blobDir = join(dir, 'blobs', 'sha256');
    await mkdir(blobDir, { recursive: true });
    for (const f of await readdir(blobDir)) {
      if (!/^[a-f0-9]{64}$/.test(f)) {
        await rm(join(blobDir, f), { force: true }); // leftover temp file
        continue;
      }
      this.sizes.set('sha256:' + f, (await stat(join(blobDir, f))).size);
    }
    const root = join(dir, 'repositories');
    if (existsSync(root)) await this.loadRepos(root, '');
  }

  private async loadRepos(root: string, prefix: string): Promise<void> {
    const here = join(root, prefix);
    const entries = await readdir(here, { withFileTypes: true });
    const names = new Set(entries.map((e) => e.name));
    if (names.has('_layers') || names.has('_manifests') || names.has('_tags')) {
      const r = this.repo(prefix, true);
      if (names.has('_layers')) for (const f of await readdir(join(here, '_layers'))) if (this.sizes.has('sha256:' + f)) r.blobs.add('sha256:' + f);
      if (names.has('_manifests')) {
        for (const f of await readdir(join(here, '_manifests'))) {
          if (!/^[a-f0-9]{64}$/.test(f)) continue;
          const typeFile = join(here, '_manifests', f + '.type');
          if (!existsSync(typeFile)) continue;
          const body = await readFile(join(here, '_manifests', f));
          const info = parseManifest(body, await readFile(typeFile, 'utf8'), 'sha256:' + f);
          r.manifests.set(info.digest, { info, body });
        }
      }
      if (names.has('_tags'))
        for (const t of await readdir(join(here, '_tags'))) {
          if (t.startsWith('.')) continue;
          const d = (await readFile(join(here, '_tags', t), 'utf8')).trim();
          if (r.manifests.has(d)) r.tags.set(t, d);
        }
    }
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('_')) await this.loadRepos(root, prefix ? `${prefix}/${e.name}` : e.name);
  }
}

/** temp file beside the target + rename: readers (and a restart after a crash) see old or new, never half. */
async function atomicWrite(path: string, data: string | Buffer): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${randomUUID()}`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
