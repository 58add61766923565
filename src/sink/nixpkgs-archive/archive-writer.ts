import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { NixregError, describeSystemError, fileError, integrityError } from '../../errors.js';
import type { ByteSink } from '../../nix/stream/sink.js';
import { encodePythonPaxHeader, endOfArchive, padTo512, type PyTarInfo } from '../../tar/python-pax.js';
import { removeOnSignal } from '../../util/atomic-file.js';

/**
 * The outer tar nixpkgs writes around an image: stream_layered_image.py's `tarfile.open(mode="w|", format=PAX)`
 * (https://github.com/NixOS/nixpkgs/blob/master/pkgs/build-support/docker/stream_layered_image.py), also the
 * shape of `merge`'s output. Python-PAX member headers (tar/python-pax.ts), data padded to 512 bytes, and
 * tarfile's end of archive (two zero blocks, then zeros up to the 10240-byte record).
 *
 * A store layer's member name is its diffID, known only once its bytes went by. With the diffID known beforehand,
 * the header goes first as usual; otherwise, on a seekable sink, `beginLayer` writes a header with a placeholder
 * name (same length: the name's hex digits do not change the PAX record's size) and patches it at `finish`, so
 * the layer is generated and written once. On a sink that cannot be patched, either the caller knows the diffID
 * first (a hashing pass or the layer cache: what `stream` does on a pipe), or the layer's bytes are spooled to a
 * temp file and copied in, header first, at `finish` (what the push `--output` tee does on a FIFO).
 */
export const layerMemberPath = (diffID: string): string => `${diffID.slice('sha256:'.length)}/layer.tar`;

const PLACEHOLDER_DIFFID = `sha256:${'0'.repeat(64)}`;

export interface MemberData {
  chunks: AsyncIterable<Buffer>;
  /** Names the member in errors: `<what>: <cause>`, `<what> came out N bytes, expected M`. */
  what: string;
  /** Sees each chunk before it is written (a sink may recycle a chunk once written). */
  onChunk?: (c: Buffer) => void | Promise<void>;
  /** The error for data that ends short of or past the header's size (default: "came out N bytes"). */
  sizeError?: (got: number) => Error;
}

/** A layer member being written; see `NixpkgsArchiveWriter.beginLayer`. */
export interface LayerMember {
  /** Bytes of the layer, in order (the sink owns each chunk once written). */
  put(b: Buffer): Promise<void>;
  /**
   * After the last byte: checks the size (and a diffID given to beginLayer against `diffID`), pads, and patches the
   * header's name when it was a placeholder (or, spooled, writes header, bytes and padding).
   */
  finish(diffID: string): Promise<void>;
  /** Forget the bytes put so far (a retried upload generates the layer again). Needs `rewindable` at begin. */
  rewind(): Promise<void>;
}

export interface BeginLayerOptions {
  /** Known beforehand (base and customisation layers, a cached store layer): the header goes out final. */
  diffID?: string;
  /** The layer may be put again from its start (`rewind`): on a sink that cannot seek, its bytes are spooled. */
  rewindable?: boolean;
}

/**
 * A pass-through stage that puts every chunk into `member` on its way (the push tee: archive and upload). The
 * chunk goes on to the next stage too, so the archive must be done with it when `put` resolves and never recycle it:
 * begin the layer `rewindable` on a FileSink with `sharedChunks`, or on an output that cannot seek, where the layer
 * is spooled (each spool write completes before `put` resolves).
 */
export function teeStage(member: LayerMember): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      member.put(chunk).then(() => cb(null, chunk), cb);
    },
  });
}

export class NixpkgsArchiveWriter {
  private pos = 0;
  constructor(
    private readonly sink: ByteSink,
    /** mtime of the members the writer names itself (layers by diffID, config, manifest.json). */
    private readonly mtime: number,
  ) {}

  /** Bytes written so far. */
  get offset(): number {
    return this.pos;
  }

  /** True when a layer of unknown diffID can be written in one pass (its header patched afterwards). */
  get canPatch(): boolean {
    return this.sink.patch !== undefined;
  }

  private async put(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    await this.sink.write(b);
    this.pos += b.length;
  }

  /** The header stream_layered_image.py gives the members it names itself: a regular file, root-less owner. */
  regular(name: string, size: number): PyTarInfo {
    return { name, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size, mtime: this.mtime };
  }

  /** One member: its header, then (for a regular file) exactly `info.size` bytes from `data` and the padding. */
  async addMember(info: PyTarInfo, data?: MemberData): Promise<void> {
    await this.put(encodePythonPaxHeader(info));
    if (!data) return;
    let n = 0;
    try {
      for await (const c of data.chunks) {
        n += c.length;
        await data.onChunk?.(c);
        await this.put(c);
      }
    } catch (err) {
      if (err instanceof NixregError) throw err;
      throw new NixregError(`${data.what}: ${(err as Error).message}`);
    }
    if (n !== info.size) throw data.sizeError?.(n) ?? new NixregError(`${data.what} came out ${n} bytes, expected ${info.size}`);
    await this.put(Buffer.alloc(padTo512(info.size)));
  }

  /** A small regular member (the config, manifest.json, repositories). */
  async addFile(name: string, bytes: Buffer): Promise<void> {
    await this.put(encodePythonPaxHeader(this.regular(name, bytes.length)));
    await this.put(bytes);
    await this.put(Buffer.alloc(padTo512(bytes.length)));
  }

  /**
   * A layer member named `<diffID hex>/layer.tar` whose bytes the caller puts as they are generated (so the same
   * chunks can go elsewhere too, e.g. to a registry upload). `header(name)` gives the member's header for a name.
   */
  async beginLayer(size: number, what: string, header: (name: string) => PyTarInfo, o: BeginLayerOptions = {}): Promise<LayerMember> {
    const check = (got: string) => {
      if (o.diffID && o.diffID !== got)
        throw integrityError(`${what} came out as ${got}, expected ${o.diffID}: its files changed or its generation is not reproducible`);
    };
    const seekable = this.sink.patch !== undefined && (!o.rewindable || this.sink.seek !== undefined);
    if (!seekable && (!o.diffID || o.rewindable)) return this.spooledLayer(size, what, header, check);
    const headerAt = this.pos;
    const first = encodePythonPaxHeader(header(layerMemberPath(o.diffID ?? PLACEHOLDER_DIFFID)));
    await this.put(first);
    const dataAt = this.pos;
    let n = 0;
    return {
      put: async (b) => {
        n += b.length;
        await this.put(b);
      },
      finish: async (got) => {
        if (n !== size) throw new NixregError(`${what} came out ${n} bytes, expected ${size}`);
        check(got);
        await this.put(Buffer.alloc(padTo512(size)));
        if (o.diffID) return;
        const real = encodePythonPaxHeader(header(layerMemberPath(got)));
        if (real.length !== first.length) throw new NixregError('internal error: layer header length changed');
        await this.sink.patch!(headerAt, real);
      },
      rewind: async () => {
        if (!this.sink.seek) throw new NixregError(`internal error: ${what} cannot be rewound on this output`);
        await this.sink.seek(dataAt);
        this.pos = dataAt;
        n = 0;
      },
    };
  }

  /** Temp directories of spooled layers not yet copied in (removed by `abort`). */
  private readonly spools = new Map<string, () => void>();
  private readonly spoolFiles = new Set<FileHandle>();

  private async spooledLayer(size: number, what: string, header: (name: string) => PyTarInfo, check: (got: string) => void): Promise<LayerMember> {
    let dir: string | undefined;
    let fh: FileHandle;
    try {
      dir = await mkdtemp(join(tmpdir(), 'nixreg-archive-spool-'));
      this.spools.set(dir, removeOnSignal(dir));
      fh = await open(join(dir, 'layer.tar'), 'wx+');
      this.spoolFiles.add(fh);
    } catch (err) {
      if (dir) await this.dropSpool(dir);
      throw fileError(`cannot create a spool file in ${tmpdir()} for ${what}: ${describeSystemError(err)}`, err);
    }
    const spoolDir = dir;
    let n = 0;
    return {
      put: async (b) => {
        try {
          for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off, n + off)).bytesWritten;
        } catch (err) {
          throw fileError(`cannot write a spool file in ${tmpdir()} for ${what}: ${describeSystemError(err)}`, err);
        }
        n += b.length;
      },
      finish: async (got) => {
        try {
          if (n !== size) throw new NixregError(`${what} came out ${n} bytes, expected ${size}`);
          check(got);
          await this.put(encodePythonPaxHeader(header(layerMemberPath(got))));
          if (size > 0)
            for await (const c of createReadStream('', { fd: fh, autoClose: false, start: 0, end: size - 1, highWaterMark: 1 << 20 }))
              await this.put(c as Buffer);
          await this.put(Buffer.alloc(padTo512(size)));
        } finally {
          this.spoolFiles.delete(fh);
          await fh.close().catch(() => {});
          await this.dropSpool(spoolDir);
        }
      },
      rewind: async () => {
        n = 0;
      },
    };
  }

  private async dropSpool(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    this.spools.get(dir)?.();
    this.spools.delete(dir);
  }

  /** After a failure: removes spool files of layers not finished (the caller aborts the output itself). */
  async abort(): Promise<void> {
    for (const fh of this.spoolFiles) await fh.close().catch(() => {});
    this.spoolFiles.clear();
    for (const dir of [...this.spools.keys()]) await this.dropSpool(dir);
  }

  /** The end of the archive, then the sink's finish. Returns the archive's size. */
  async finish(): Promise<number> {
    await this.put(endOfArchive(this.pos));
    await this.sink.finish();
    return this.pos;
  }
}
