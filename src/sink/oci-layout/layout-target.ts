import { makeDirs } from '../../util/make-dirs.js';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { NixregError, describeSystemError, fileError, usageError } from '../../errors.js';
import { reclaimStaleTemps, removeOnSignal } from '../../util/atomic-file.js';
import type { ByteSink } from '../../nix/stream/sink.js';
import { TAR_TRAILER, padding } from '../../tar/go-ustar.js';
import { ociDirHeader, ociFileHeader } from './tar-entry.js';
import { makeTempDir } from '../../util/temp-dir.js';
import { writeAll } from '../../util/write-all.js';

/**
 * Where an OCI image layout goes: a directory (`--format oci`) or a tar of the same tree (`--format oci-archive`).
 * Layer blobs arrive as a stream whose digest and size are known only at its end (they are compressed on the
 * way), so each target takes a blob as begin → write… → finish(digest, size), writing the bytes exactly once.
 */
export interface BlobWriter {
  write(b: Buffer): Promise<void>;
  finish(digest: string, size: number): Promise<void>;
}

export interface LayoutTarget {
  beginBlob(): Promise<BlobWriter>;
  /** A small blob whose digest is known (config, manifest). */
  putBlob(digest: string, data: Buffer): Promise<void>;
  /** `oci-layout`, `index.json`. */
  putFile(name: string, data: Buffer): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

const blobPath = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/**
 * A layout directory (`oci:DIR:TAG`, as skopeo writes it).
 * - DIR does not exist: the layout is built in a hidden temp directory beside it (same filesystem, the name carries
 *   the PID so a later run reclaims it after a kill) and renamed into place at the end: complete or absent.
 * - DIR is an OCI layout (or an empty directory): the image is added to it. Blobs go to temp names carrying the PID
 *   in `blobs/` and are renamed to their digest; `index.json` is rewritten last, through a temp file and rename(2),
 *   with the other tags kept and an entry of the same tag replaced. A reader sees the old index or the new one,
 *   each with all its blobs; files of other images are never touched (blobs of a replaced tag stay, as with skopeo).
 * - DIR is anything else: refused (a regular file is replaced only with --force).
 */
export class DirTarget implements LayoutTarget {
  private n = 0;
  /** Temp paths of this run (removed by abort and by Ctrl-C). */
  private readonly temps = new Map<string, () => void>();
  /** Blobs this run added to an existing layout (removed again by abort). */
  private readonly added: string[] = [];
  /** Blob files still open (a blob abandoned mid-way is closed by abort). */
  private readonly open = new Set<FileHandle>();
  private constructor(
    private readonly target: string,
    /** Where the layout is written: the temp directory, or the target itself when updating a layout. */
    private readonly root: string,
    private readonly inPlace: boolean,
  ) {
    if (!inPlace) this.track(root);
  }

  static async open(target: string, force = false): Promise<DirTarget> {
    const st = await stat(target).catch(() => undefined);
    if (st?.isDirectory()) {
      const names = await readdir(target).catch((err: unknown) => {
        throw fileError(`cannot read output directory ${target}: ${describeSystemError(err)}`, err);
      });
      const isLayout = names.includes('oci-layout') && names.includes('index.json');
      if (!isLayout && names.length > 0)
        throw usageError(`output ${target} is a non-empty directory that is not an OCI layout (no oci-layout and index.json); choose another directory`);
      const t = new DirTarget(target, target, true);
      await reclaimStaleTemps(join(target, 'blobs', 'sha256'));
      await reclaimStaleTemps(join(target, 'index.json'));
      await reclaimStaleTemps(join(target, 'oci-layout'));
      await t.io(() => makeDirs(join(target, 'blobs', 'sha256')));
      return t;
    }
    if (st && !force) throw usageError(`output ${target} already exists; remove it or pass --force`);
    if (st && !st.isFile()) throw usageError(`output ${target} exists and is not a regular file or a directory; remove it first`);
    await reclaimStaleTemps(target);
    const tmp = tempName(target);
    try {
      await makeDirs(join(tmp, 'blobs', 'sha256'));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw fileError(`cannot write output ${target}: ${describeSystemError(err)}`, err);
    }
    return new DirTarget(target, tmp, false);
  }

  private track(p: string): void {
    this.temps.set(p, removeOnSignal(p));
  }

  private async untrack(p: string): Promise<void> {
    this.temps.get(p)?.();
    this.temps.delete(p);
  }

  /** Write a small file through a temp name (in place) or directly (into the temp layout). */
  private async writeSmall(rel: string, data: Buffer): Promise<void> {
    const dest = join(this.root, rel);
    if (!this.inPlace) return this.io(() => writeFile(dest, data));
    const tmp = tempName(dest);
    this.track(tmp);
    try {
      await this.io(() => writeFile(tmp, data, { flag: 'wx' }));
      await this.io(() => rename(tmp, dest));
    } finally {
      await rm(tmp, { force: true }).catch(() => {});
      await this.untrack(tmp);
    }
  }

  /** Move a finished blob to its digest name; in place, an existing blob (same digest, same bytes) is kept. */
  private async placeBlob(from: string, digest: string): Promise<void> {
    const dest = join(this.root, blobPath(digest));
    if (this.inPlace && (await exists(dest))) {
      await rm(from, { force: true });
      return;
    }
    await this.io(() => rename(from, dest));
    if (this.inPlace) this.added.push(dest);
  }

  async beginBlob(): Promise<BlobWriter> {
    const partial = this.inPlace ? tempName(join(this.root, 'blobs', 'sha256')) : join(this.root, 'blobs', 'sha256', `.partial-${this.n++}`);
    if (this.inPlace) this.track(partial);
    const fh = await this.io(() => open(partial, 'wx'));
    this.open.add(fh);
    let pos = 0;
    return {
      write: async (b) => {
        await this.io(() => writeAll(fh, b, pos));
        pos += b.length;
      },
      finish: async (digest) => {
        this.open.delete(fh);
        await this.io(() => fh.close());
        await this.placeBlob(partial, digest);
        if (this.inPlace) await this.untrack(partial);
      },
    };
  }

  async putBlob(digest: string, data: Buffer): Promise<void> {
    if (!this.inPlace) return this.io(() => writeFile(join(this.root, blobPath(digest)), data));
    if (await exists(join(this.root, blobPath(digest)))) return;
    const tmp = tempName(join(this.root, 'blobs', 'sha256'));
    this.track(tmp);
    try {
      await this.io(() => writeFile(tmp, data, { flag: 'wx' }));
      await this.placeBlob(tmp, digest);
    } finally {
      await rm(tmp, { force: true }).catch(() => {});
      await this.untrack(tmp);
    }
  }

  async putFile(name: string, data: Buffer): Promise<void> {
    if (this.inPlace && name === 'oci-layout' && (await exists(join(this.root, name)))) return;
    if (this.inPlace && name === 'index.json') data = await this.mergedIndex(data);
    await this.writeSmall(name, data);
  }

  /** The existing index.json with the new image's entries added, replacing any entry of the same tag. */
  private async mergedIndex(fresh: Buffer): Promise<Buffer> {
    const path = join(this.root, 'index.json');
    const raw = await readFile(path).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw fileError(`cannot read ${path}: ${describeSystemError(err)}`, err);
    });
    if (raw === undefined) return fresh;
    let index: { manifests?: unknown };
    try {
      index = JSON.parse(raw.toString('utf8')) as { manifests?: unknown };
    } catch {
      throw usageError(`${path} is not valid JSON; the directory is not a usable OCI layout`);
    }
    if (typeof index !== 'object' || index === null || !Array.isArray(index.manifests))
      throw usageError(`${path} has no "manifests" array; the directory is not a usable OCI layout`);
    const added = (JSON.parse(fresh.toString('utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }).manifests;
    const tags = new Set(added.map((m) => m.annotations?.[REF_NAME]).filter((t) => t !== undefined));
    const kept = (index.manifests as Array<{ annotations?: Record<string, string> }>).filter((m) => !tags.has(m?.annotations?.[REF_NAME] ?? ''));
    return Buffer.from(JSON.stringify({ ...index, manifests: [...kept, ...added] }), 'utf8');
  }

  async commit(): Promise<void> {
    if (this.inPlace) {
      this.added.length = 0;
      return;
    }
    let aside: string | undefined;
    if (await exists(this.target)) {
      aside = tempName(this.target);
      this.track(aside);
      await this.io(() => rename(this.target, aside!));
    }
    await this.io(() => rename(this.root, this.target));
    await this.untrack(this.root);
    if (aside) {
      await rm(aside, { recursive: true, force: true }).catch(() => {});
      await this.untrack(aside);
    }
  }

  async abort(): Promise<void> {
    for (const fh of this.open) await fh.close().catch(() => {});
    this.open.clear();
    for (const p of [...this.temps.keys()]) {
      await rm(p, { recursive: true, force: true }).catch(() => {});
      await this.untrack(p);
    }
    for (const p of this.added.splice(0)) await rm(p, { force: true }).catch(() => {});
  }

  private async io<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw fileError(`cannot write output ${this.target}: ${describeSystemError(err)}`, err);
    }
  }
}

const REF_NAME = 'org.opencontainers.image.ref.name';

/** A hidden temp name beside `path` that reclaimStaleTemps recognises (and removes once this PID is gone). */
const tempName = (path: string) => join(dirname(path), `.${basename(path)}.nixreg-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);

/**
 * The layout as one tar (what skopeo's `oci-archive:` reads). On a seekable sink (a file, stdout redirected to a
 * file) a blob's header is written as a placeholder and patched once the compressed size and digest are known:
 * the blob is compressed and written once. On a pipe the header must precede the data, so each compressed blob is
 * spooled to a temp file and then copied — still compressed only once, at the cost of one local copy.
 * The caller owns the sink's file (atomic commit/abort).
 */
export class TarTarget implements LayoutTarget {
  private offset = 0;
  private started = false;
  /** Spool directories of blobs not yet finished (removed by abort when a layer fails mid-way). */
  private readonly spools = new Set<string>();
  /** Spool files still open (closed by abort). */
  private readonly spoolFiles = new Set<FileHandle>();
  constructor(
    private readonly sink: ByteSink,
    private readonly label: string,
  ) {}

  private async put(b: Buffer): Promise<void> {
    if (!this.started) {
      this.started = true;
      await this.put(Buffer.concat([ociDirHeader('blobs/'), ociDirHeader('blobs/sha256/')]));
    }
    if (b.length === 0) return;
    await this.sink.write(b);
    this.offset += b.length;
  }

  async beginBlob(): Promise<BlobWriter> {
    await this.put(Buffer.alloc(0)); // directory entries first
    if (this.sink.patch) {
      const headerAt = this.offset;
      await this.put(ociFileHeader(blobPath(`sha256:${'0'.repeat(64)}`), 0));
      return {
        write: (b) => this.put(b),
        finish: async (digest, size) => {
          await this.put(padding(size));
          await this.sink.patch!(headerAt, ociFileHeader(blobPath(digest), size));
        },
      };
    }
    const dir = await makeTempDir('nixreg-oci-spool-');
    this.spools.add(dir);
    const file = join(dir, 'blob');
    const fh = await open(file, 'wx');
    this.spoolFiles.add(fh);
    let pos = 0;
    return {
      write: async (b) => {
        await writeAll(fh, b, pos);
        pos += b.length;
      },
      finish: async (digest, size) => {
        try {
          this.spoolFiles.delete(fh);
          await fh.close();
          await this.put(ociFileHeader(blobPath(digest), size));
          for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) await this.put(c as Buffer);
          await this.put(padding(size));
        } catch (err) {
          throw err instanceof NixregError ? err : fileError(`cannot write ${this.label}: ${describeSystemError(err)}`, err);
        } finally {
          this.spools.delete(dir);
          await rm(dir, { recursive: true, force: true }).catch(() => {});
        }
      },
    };
  }

  async putBlob(digest: string, data: Buffer): Promise<void> {
    await this.putFile(blobPath(digest), data);
  }

  async putFile(name: string, data: Buffer): Promise<void> {
    await this.put(Buffer.concat([ociFileHeader(name, data.length), data, padding(data.length)]));
  }

  async commit(): Promise<void> {
    await this.put(TAR_TRAILER);
    await this.sink.finish();
  }

  async abort(): Promise<void> {
    for (const fh of this.spoolFiles) await fh.close().catch(() => {});
    this.spoolFiles.clear();
    for (const dir of this.spools) await rm(dir, { recursive: true, force: true }).catch(() => {});
    this.spools.clear();
  }
}
