import { NixregError } from '../../errors.js';
import type { ByteSink } from '../../nix/stream/sink.js';
import { encodePythonPaxHeader, endOfArchive, padTo512, type PyTarInfo } from '../../tar/python-pax.js';

/**
 * The outer tar nixpkgs writes around an image: stream_layered_image.py's `tarfile.open(mode="w|", format=PAX)`
 * (https://github.com/NixOS/nixpkgs/blob/master/pkgs/build-support/docker/stream_layered_image.py), also the
 * shape of `merge`'s output. Python-PAX member headers (tar/python-pax.ts), data padded to 512 bytes, and
 * tarfile's end of archive (two zero blocks, then zeros up to the 10240-byte record).
 *
 * A store layer's member name is its diffID, known only once its bytes went by. With the diffID known beforehand,
 * the header goes first as usual; otherwise, on a seekable sink, `beginLayer` writes a header with a placeholder
 * name (same length: the name's hex digits do not change the PAX record's size) and patches it at `finish`, so
 * the layer is generated and written once. On a sink that cannot be patched, the caller must know the diffID
 * first (a hashing pass or the layer cache).
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
  /** After the last byte: checks the size, pads, and patches the header's name when it was a placeholder. */
  finish(diffID: string): Promise<void>;
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
   * Without `diffID` the sink must be patchable (`canPatch`).
   */
  async beginLayer(size: number, what: string, header: (name: string) => PyTarInfo, diffID?: string): Promise<LayerMember> {
    if (!diffID && !this.sink.patch) throw new NixregError(`internal error: ${what} has no diffID yet and the output cannot be patched`);
    const headerAt = this.pos;
    const first = encodePythonPaxHeader(header(layerMemberPath(diffID ?? PLACEHOLDER_DIFFID)));
    await this.put(first);
    let n = 0;
    return {
      put: async (b) => {
        n += b.length;
        await this.put(b);
      },
      finish: async (got) => {
        if (n !== size) throw new NixregError(`${what} came out ${n} bytes, expected ${size}`);
        await this.put(Buffer.alloc(padTo512(size)));
        if (diffID) return;
        const real = encodePythonPaxHeader(header(layerMemberPath(got)));
        if (real.length !== first.length) throw new NixregError('internal error: layer header length changed');
        await this.sink.patch!(headerAt, real);
      },
    };
  }

  /** The end of the archive, then the sink's finish. Returns the archive's size. */
  async finish(): Promise<number> {
    await this.put(endOfArchive(this.pos));
    await this.sink.finish();
    return this.pos;
  }
}
