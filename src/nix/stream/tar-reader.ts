import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createLayerDecoder } from '../../compression/decompress.js';
import { NixregError } from '../../errors.js';
import type { PyTarInfo, PyTarType } from '../../tar/python-pax.js';

/**
 * Reads tar headers the way CPython's `tarfile` does (TarInfo.frombuf + _proc_pax + GNU longnames), so that a
 * base-image member can be re-serialised by our Python-compatible writer exactly as stream_layered_image.py
 * re-serialises it. Own code rather than tar-stream's extract because we need header fields verbatim (raw
 * typeflag, mode with type bits, PAX records in order) and the data offset of each member to copy layers
 * in manifest order without extracting to disk.
 */

export interface TarMember {
  /** The TarInfo as Python holds it after reading (dirs without trailing '/'). */
  info: PyTarInfo;
  /** Name as a string for lookups (Python's TarInfo.name). */
  name: string;
  dataOffset: number;
  size: number;
  /** Member data, kept only for the small .json members captured during the index scan. */
  data?: Buffer;
}

export class NotATarError extends Error {}

/** Sequential byte source over an uncompressed, gzip'd or zstd'd tar. */
interface Cursor {
  position: number;
  read(n: number): Promise<Buffer>; // may return fewer bytes at EOF
  skip(n: number): Promise<void>;
  close(): Promise<void>;
}

class FileCursor implements Cursor {
  position = 0;
  constructor(private readonly fh: FileHandle) {}
  async read(n: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const { bytesRead } = await this.fh.read(buf, off, n - off, this.position + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    this.position += off;
    return off === n ? buf : buf.subarray(0, off);
  }
  async skip(n: number): Promise<void> {
    this.position += n;
  }
  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * A compressed archive (buildLayeredImage's image.tar.gz / .tar.zst), decompressed forward. zstd goes through
 * fzstd (pure JS; Node 20's zlib has no zstd), as layer decompression does (compression/decompress.ts).
 */
class DecompressCursor implements Cursor {
  position = 0;
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private readonly stream;
  constructor(
    path: string,
    private readonly kind: 'gzip' | 'zstd',
  ) {
    // pipeline (not .pipe): a read error must fail the decompressing side instead of leaving it waiting forever
    this.stream = pipeline(createReadStream(path), createLayerDecoder(kind), () => {});
    this.it = this.stream[Symbol.asyncIterator]();
  }
  private async next(): Promise<IteratorResult<Buffer>> {
    try {
      return await this.it.next();
    } catch (err) {
      // fzstd's errors name a "layer"; here the whole archive is compressed (gzip errors keep their Z_ code)
      if (this.kind === 'zstd' && err instanceof NixregError) throw new NotATarError(`is not a valid zstd file (${err.message.replace(/^.*?: /, '')})`);
      throw err;
    }
  }
  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      const r = await this.next();
      if (r.done) return;
      this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
  }
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.position += out.length;
    return out;
  }
  async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.buf.length === 0) {
        const r = await this.next();
        if (r.done) return;
        this.buf = r.value;
      }
      const k = Math.min(n, this.buf.length);
      this.buf = this.buf.subarray(k);
      this.position += k;
      n -= k;
    }
  }
  async close(): Promise<void> {
    this.stream.destroy();
  }
}

export type ArchiveCompressionKind = 'none' | 'gzip' | 'zstd';

/** A tar file, plain, gzip'd or zstd'd, indexed once and then readable member by member. */
export class TarArchive {
  private cursor?: Cursor;
  private cursorBusy = false;
  /** Decompressing cursors created after the scan (each one inflates the archive from its start): for tests. */
  inflations = 0;
  private constructor(
    readonly path: string,
    readonly compression: ArchiveCompressionKind,
    readonly members: TarMember[],
  ) {}

  /** True for any compressed outer archive (gzip or zstd): members can only be reached by decompressing forward. */
  get gzip(): boolean {
    return this.compression !== 'none';
  }

  static async detectCompression(path: string): Promise<ArchiveCompressionKind> {
    const fh = await open(path, 'r');
    try {
      const b = Buffer.alloc(6);
      await fh.read(b, 0, 6, 0);
      if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
      if (b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
      if (b.subarray(0, 3).toString('latin1') === 'BZh' || b.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
        throw new NotATarError('is compressed with bzip2/xz, which nixreg cannot read; decompress it or use gzip or zstd');
      return 'none';
    } finally {
      await fh.close();
    }
  }

  /** Scan every header once; keep the data of small `*.json` members (manifest, config) on the way. */
  static async open(path: string, keepData: (m: TarMember) => boolean): Promise<TarArchive> {
    const compression = await TarArchive.detectCompression(path);
    const cursor = compression === 'none' ? new FileCursor(await open(path, 'r')) : new DecompressCursor(path, compression);
    try {
      const members = await scan(cursor, keepData);
      return new TarArchive(path, compression, members);
    } finally {
      await cursor.close();
    }
  }

  /** Python's getmember(): the LAST member with that name. */
  getMember(name: string): TarMember | undefined {
    const want = name.replace(/\/+$/, '');
    for (let i = this.members.length - 1; i >= 0; i--) if (this.members[i]!.name === want) return this.members[i];
    return undefined;
  }

  /**
   * A member's `size` data bytes. A compressed archive keeps one forward cursor that each reader takes over in
   * turn: members read one after the other in archive order (base layers, layers pushed or exported) inflate the
   * archive once, and going back restarts it. A reader that comes while the cursor is in use gets a private one
   * (inflating from the start), as does every reader of a plain tar, where positional reads cost nothing.
   */
  async *memberData(m: TarMember): AsyncGenerator<Buffer> {
    if (m.data) return yield m.data;
    if (this.compression === 'none' || this.cursorBusy) return yield* this.openMemberData(m);
    this.cursorBusy = true;
    let ok = false;
    try {
      if (!this.cursor || this.cursor.position > m.dataOffset) {
        await this.cursor?.close();
        this.cursor = await this.newCursor();
      }
      yield* this.copyFrom(this.cursor, m);
      ok = true;
    } finally {
      this.cursorBusy = false;
      // a failed or abandoned read may leave the cursor anywhere (or broken): the next reader starts a fresh one
      if (!ok && this.cursor) {
        const c = this.cursor;
        this.cursor = undefined;
        await c.close();
      }
    }
  }

  /** Like memberData but with a private cursor, so several members can be read at the same time. */
  async *openMemberData(m: TarMember): AsyncGenerator<Buffer> {
    if (m.data) return yield m.data;
    const c = await this.newCursor();
    try {
      yield* this.copyFrom(c, m);
    } finally {
      await c.close();
    }
  }

  private async newCursor(): Promise<Cursor> {
    if (this.compression !== 'none') this.inflations++;
    return this.compression === 'none' ? new FileCursor(await open(this.path, 'r')) : new DecompressCursor(this.path, this.compression);
  }

  private async *copyFrom(c: Cursor, m: TarMember): AsyncGenerator<Buffer> {
    await c.skip(m.dataOffset - c.position);
    let left = m.size;
    while (left > 0) {
      const b = await c.read(Math.min(left, 1 << 20));
      if (b.length === 0) throw new NotATarError(`ends inside member ${m.name}`);
      left -= b.length;
      yield b;
    }
  }

  async readMember(m: TarMember): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const b of this.memberData(m)) parts.push(b);
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    await this.cursor?.close();
    this.cursor = undefined;
  }
}

const nts = (b: Buffer): Buffer => {
  const i = b.indexOf(0);
  return i < 0 ? b : b.subarray(0, i);
};

/** nti(): octal text (or GNU base-256). */
function nti(b: Buffer): number {
  if (b[0] === 0o200 || b[0] === 0o377) {
    let n = 0n;
    for (let i = 1; i < b.length; i++) n = (n << 8n) + BigInt(b[i]!);
    if (b[0] === 0o377) n = -((1n << BigInt(8 * (b.length - 1))) - n);
    return Number(n);
  }
  const s = nts(b).toString('latin1').trim();
  if (s && !/^[0-7]+$/.test(s)) throw new NotATarError('has an invalid number field in a tar header');
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  const stored = nti(h.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += v;
    signed += v >= 128 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

const TYPES: Record<number, PyTarType> = { 48: 'file', 49: 'hardlink', 50: 'symlink', 51: 'char', 52: 'block', 53: 'dir', 54: 'fifo' };

function parsePaxRecords(data: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let i = 0;
  while (i < data.length && data[i] !== 0) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(data.subarray(i, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) throw new NotATarError('has a malformed PAX header');
    const rec = data.subarray(sp + 1, i + len - 1); // without trailing \n
    const eq = rec.indexOf(0x3d);
    out.push([rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1)]);
    i += len;
  }
  return out;
}

async function scan(c: Cursor, keepData: (m: TarMember) => boolean): Promise<TarMember[]> {
  const members: TarMember[] = [];
  const globalPax: Array<[string, Buffer]> = [];
  let localPax: Array<[string, Buffer]> | undefined;
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  for (;;) {
    const headerOffset = c.position;
    const h = await c.read(512);
    if (h.length < 512) {
      if (headerOffset === 0) throw new NotATarError('is not a tar archive (empty or shorter than one header)');
      break;
    }
    if (h.every((x) => x === 0)) break; // end of archive
    if (!checksumOk(h)) {
      if (headerOffset === 0) throw new NotATarError('is not a tar archive');
      throw new NotATarError(`has a corrupt tar header at offset ${headerOffset}`);
    }
    const tf = h[156]!;
    let size = nti(h.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) throw new NotATarError(`has an invalid member size at offset ${headerOffset}`);
    const dataOffset = c.position;
    const padded = size + ((512 - (size % 512)) % 512);
    if (tf === 0x78 /* x */ || tf === 0x67 /* g */ || tf === 0x4c /* L */ || tf === 0x4b /* K */) {
      const data = await c.read(padded);
      if (data.length < padded) throw new NotATarError('is truncated');
      const body = data.subarray(0, size);
      if (tf === 0x78) localPax = [...globalPax, ...parsePaxRecords(body)];
      else if (tf === 0x67) globalPax.push(...parsePaxRecords(body));
      else if (tf === 0x4c) longName = nts(body);
      else longLink = nts(body);
      continue;
    }
    let nameB = nts(h.subarray(0, 100));
    const prefix = nts(h.subarray(345, 500));
    const magic = h.subarray(257, 263).toString('latin1');
    let type: PyTarType = TYPES[tf] ?? 'raw';
    if (tf === 0 && nameB[nameB.length - 1] === 0x2f) type = 'dir'; // old V7 directory
    if (type === 'dir') nameB = stripSlashes(nameB);
    if (prefix.length && magic.startsWith('ustar') && tf !== 0x53) nameB = Buffer.concat([prefix, Buffer.from('/'), nameB]);
    const info: PyTarInfo = {
      name: nameB,
      type,
      rawTypeflag: type === 'raw' ? tf : undefined,
      mode: nti(h.subarray(100, 108)),
      uid: nti(h.subarray(108, 116)),
      gid: nti(h.subarray(116, 124)),
      size,
      mtime: nti(h.subarray(136, 148)),
      linkname: nts(h.subarray(157, 257)),
      uname: nts(h.subarray(265, 297)),
      gname: nts(h.subarray(297, 329)),
      devmajor: nti(h.subarray(329, 337)),
      devminor: nti(h.subarray(337, 345)),
    };
    if (longName) info.name = type === 'dir' ? stripSlashes(longName) : longName;
    if (longLink) info.linkname = longLink;
    const pax = localPax ?? globalPax;
    for (const [k, v] of pax) {
      const s = v.toString('utf8');
      if (k === 'path') info.name = type === 'dir' ? stripSlashes(v) : v;
      else if (k === 'linkpath') info.linkname = v;
      else if (k === 'uname') info.uname = v;
      else if (k === 'gname') info.gname = v;
      // tarfile._apply_pax_info: a value int()/float() cannot read becomes 0 (never NaN, which would derail the scan).
      else if (k === 'uid' || k === 'gid' || k === 'size') info[k] = /^\s*[+-]?\d+(_\d+)*\s*$/.test(s) ? Number(s.replace(/[_\s]/g, '')) : 0;
      else if (k === 'mtime') info.mtime = Number.isFinite(Number(s)) && s.trim() !== '' ? Number(s) : 0;
    }
    if (localPax) info.paxHeaders = localPax.map(([k, v]) => [k, v]);
    size = info.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new NotATarError(`has an invalid member size at offset ${headerOffset}`);
    const name = (info.name as Buffer).toString('utf8');
    const m: TarMember = { info, name, dataOffset, size };
    // Only regular-ish members carry data (Python: isreg() or sparse); links/dirs have none whatever the size field.
    const hasData = type === 'file' || type === 'raw';
    const dataLen = hasData ? size + ((512 - (size % 512)) % 512) : 0;
    if (hasData && keepData(m)) {
      const d = await c.read(dataLen);
      if (d.length < dataLen) throw new NotATarError('is truncated');
      m.data = d.subarray(0, size);
    } else {
      await c.skip(dataLen);
    }
    members.push(m);
    localPax = undefined;
    longName = undefined;
    longLink = undefined;
  }
  return members;
}

function stripSlashes(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0x2f) end--;
  return b.subarray(0, end);
}
