import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { NixregError, describeSystemError, fileError, usageError } from '../errors.js';
import { removeOnSignal } from '../util/atomic-file.js';
import type { ByteSink } from '../nix/stream/sink.js';
import { TAR_TRAILER, padding } from '../tar/go-ustar.js';
import { ociDirHeader, ociFileHeader } from './tar-entry.js';

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
 * A layout directory, built in a hidden temp directory beside the target (same filesystem) and renamed into
 * place at the end, so the target is either the complete layout or untouched. Each blob goes to a temp name and
 * is renamed to its digest once known. An existing target is replaced only with --force (then it is moved aside
 * first and removed after the rename, so there is no moment without a complete layout or a leftover mix).
 */
export class DirTarget implements LayoutTarget {
  private n = 0;
  /** Ctrl-C removes the half-built directory like it removes an atomic file's temp file. */
  private readonly untrack: () => void;
  private constructor(
    private readonly target: string,
    private readonly tmp: string,
  ) {
    this.untrack = removeOnSignal(tmp);
  }

  static async open(target: string, force = false): Promise<DirTarget> {
    if (!force && (await exists(target))) throw usageError(`output ${target} already exists; remove it or pass --force`);
    const tmp = join(dirname(target), `.${basename(target)}.nixreg-${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true });
    } catch (err) {
      throw fileError(`cannot write output ${target}: ${describeSystemError(err)}`, err);
    }
    return new DirTarget(target, tmp);
  }

  async beginBlob(): Promise<BlobWriter> {
    const partial = join(this.tmp, 'blobs', 'sha256', `.partial-${this.n++}`);
    const fh = await this.io(() => open(partial, 'wx'));
    let pos = 0;
    return {
      write: async (b) => {
        await this.io(() => writeAll(fh, b, pos));
        pos += b.length;
      },
      finish: async (digest) => {
        await this.io(() => fh.close());
        await this.io(() => rename(partial, join(this.tmp, blobPath(digest))));
      },
    };
  }

  async putBlob(digest: string, data: Buffer): Promise<void> {
    await this.io(() => writeFile(join(this.tmp, blobPath(digest)), data));
  }

  async putFile(name: string, data: Buffer): Promise<void> {
    await this.io(() => writeFile(join(this.tmp, name), data));
  }

  async commit(): Promise<void> {
    let aside: string | undefined;
    if (await exists(this.target)) {
      aside = join(dirname(this.target), `.${basename(this.target)}.nixreg-old-${randomBytes(6).toString('hex')}`);
      await this.io(() => rename(this.target, aside!));
    }
    await this.io(() => rename(this.tmp, this.target));
    this.untrack();
    if (aside) await rm(aside, { recursive: true, force: true }).catch(() => {});
  }

  async abort(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true }).catch(() => {});
    this.untrack();
  }

  private async io<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw fileError(`cannot write output ${this.target}: ${describeSystemError(err)}`, err);
    }
  }
}

async function writeAll(fh: FileHandle, b: Buffer, at: number): Promise<void> {
  for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off, at + off)).bytesWritten;
}

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
    const dir = await mkdtemp(join(tmpdir(), 'nixreg-oci-spool-'));
    this.spools.add(dir);
    const file = join(dir, 'blob');
    const fh = await open(file, 'wx');
    let pos = 0;
    return {
      write: async (b) => {
        await writeAll(fh, b, pos);
        pos += b.length;
      },
      finish: async (digest, size) => {
        try {
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
    for (const dir of this.spools) await rm(dir, { recursive: true, force: true }).catch(() => {});
    this.spools.clear();
  }
}
