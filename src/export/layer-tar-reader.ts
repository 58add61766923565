import type { Readable } from 'node:stream';

/**
 * A streaming reader for one layer tar, built for untrusted input: every header field is bounds-checked, PAX and
 * GNU long-name records are capped (a hostile layer must not make us buffer gigabytes of "header"), and the data of
 * each member is handed out as a chunk stream so memory stays flat whatever the file sizes.
 *
 * Own code instead of tar-stream's extract: tar-stream buffers PAX/long-name bodies without a limit and hides the raw
 * typeflag (we must refuse sparse and unknown types instead of guessing), and src/nix/stream/tar-reader.ts works on a
 * seekable file, not on a verified network stream.
 */

export type LayerEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface LayerTarEntry {
  /** Raw name as stored (PAX `path` / GNU long name applied), not yet normalised. */
  name: string;
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds (sub-second PAX mtimes are truncated: the output carries no fractional times). */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** `SCHILY.xattr.*` PAX records, sorted by key, carried over to the output. */
  xattrs: Array<[string, Buffer]>;
}

/** Thrown for anything that is not a well-formed tar; the caller adds which layer it was. */
export class MalformedTarError extends Error {}

/** PAX / GNU long-name bodies larger than this are refused (real ones are a few hundred bytes). */
export const MAX_META_BYTES = 1 << 20;
/** Longest path accepted (Linux PATH_MAX). */
export const MAX_NAME_BYTES = 4096;

const BLOCK = 512;
const pad512 = (n: number): number => (BLOCK - (n % BLOCK)) % BLOCK;

const TYPES: Record<number, LayerEntryType> = {
  0: 'file',
  48: 'file',
  55: 'file', // contiguous file: a regular file everywhere that matters
  49: 'hardlink',
  50: 'symlink',
  51: 'char',
  52: 'block',
  53: 'dir',
  54: 'fifo',
};

/** Sequential reader over a chunk stream with exact-length reads and zero-copy data passthrough. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  offset = 0;
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }
  private async more(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) return false;
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }
  /** Exactly n bytes, or fewer only at end of input. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) if (!(await this.more())) break;
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.offset += out.length;
    return out;
  }
  /** n bytes as a sequence of chunks (no copy); throws if the input ends first. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new MalformedTarError('is truncated (ends inside a file)');
      const k = Math.min(n, this.buf.length);
      const out = this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      this.offset += k;
      n -= k;
      yield out;
    }
  }
  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) void _;
  }
  /** Stop early (the consumer failed): release the source stream instead of leaving it paused. */
  async close(): Promise<void> {
    await this.it.return?.();
  }
  /** Read to the end so a verifying source (diffID check) sees every byte. */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.more()) this.buf = Buffer.alloc(0);
  }
}

const nts = (b: Buffer): Buffer => {
  const i = b.indexOf(0);
  return i < 0 ? b : b.subarray(0, i);
};

/** A numeric header field: octal text (NUL/space padded) or GNU base-256. */
function num(b: Buffer, field: string): number {
  if (b[0]! & 0x80) {
    let n = 0n;
    for (let i = 1; i < b.length; i++) n = (n << 8n) | BigInt(b[i]!);
    if (b[0] === 0xff) n -= 1n << BigInt(8 * (b.length - 1)); // negative (two's complement)
    if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER))
      throw new MalformedTarError(`has a tar header whose ${field} is out of range`);
    return Number(n);
  }
  const s = nts(b).toString('latin1').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new MalformedTarError(`has a tar header with an invalid ${field} field`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = nts(h.subarray(148, 156)).toString('latin1').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const want = parseInt(stored, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += v;
    signed += v >= 128 ? v - 256 : v;
  }
  return want === unsigned || want === signed;
}

function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    const lenText = sp < 0 ? '' : body.subarray(i, sp).toString('latin1');
    const len = /^[0-9]{1,8}$/.test(lenText) ? Number(lenText) : NaN;
    if (!(len > 0) || i + len > body.length || body[i + len - 1] !== 0x0a) throw new MalformedTarError('has a malformed PAX header');
    const rec = body.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new MalformedTarError('has a malformed PAX record');
    out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    i += len;
  }
  return out;
}

function paxInt(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  if (!/^-?[0-9]{1,16}(\.[0-9]*)?$/.test(s)) throw new MalformedTarError(`has an invalid PAX ${key} record`);
  const n = Math.trunc(Number(s));
  if (!Number.isSafeInteger(n)) throw new MalformedTarError(`has an out-of-range PAX ${key} record`);
  return n;
}

function checkName(name: string, what: string): string {
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new MalformedTarError(`has a ${what} longer than ${MAX_NAME_BYTES} bytes`);
  if (name.includes('\0')) throw new MalformedTarError(`has a ${what} containing a NUL byte`);
  return name;
}

export interface LayerTarReader {
  /** Headers in archive order. Call `body()` to stream the current file's data; unread data is skipped. */
  entries(): AsyncGenerator<LayerTarEntry>;
  body(): AsyncGenerator<Buffer>;
}

/**
 * Iterate a layer tar. `entries()` yields each real member (PAX `x`/`g` and GNU `L`/`K` records folded in);
 * between two yields the caller may stream the member's data once with `body()`. The input is always read to its
 * end, including the padding after the end-of-archive blocks, so digest-verifying sources get to check it.
 */
export function readLayerTar(source: Readable | AsyncIterable<Buffer>): LayerTarReader {
  const r = new ByteReader(source as AsyncIterable<Buffer>);
  let pendingData = 0; // unread data + padding of the current member
  let currentSize = 0;
  let bodyTaken = true;

  async function readMeta(size: number, what: string): Promise<Buffer> {
    if (size > MAX_META_BYTES) throw new MalformedTarError(`has a ${what} of ${size} bytes (limit ${MAX_META_BYTES})`);
    const b = await r.read(size + pad512(size));
    if (b.length < size + pad512(size)) throw new MalformedTarError('is truncated (ends inside a header)');
    return b.subarray(0, size);
  }

  async function* entries(): AsyncGenerator<LayerTarEntry> {
    let finished = false;
    try {
      yield* walk();
      finished = true;
    } finally {
      if (!finished) await r.close().catch(() => {});
    }
  }

  async function* walk(): AsyncGenerator<LayerTarEntry> {
    const globalPax = new Map<string, Buffer>();
    let localPax: Map<string, Buffer> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      await r.skip(pendingData);
      pendingData = 0;
      bodyTaken = true;
      const at = r.offset;
      const h = await r.read(BLOCK);
      if (h.length === 0 && at > 0) break; // EOF without trailer blocks: tolerated like GNU tar does
      if (h.length < BLOCK) throw new MalformedTarError(at === 0 ? 'is empty or not a tar archive' : 'is truncated (ends inside a header)');
      if (h.every((x) => x === 0)) break;
      if (!checksumOk(h)) throw new MalformedTarError(at === 0 ? 'is not a tar archive' : `has a corrupt tar header at offset ${at}`);
      const tf = h[156]!;
      const rawSize = num(h.subarray(124, 136), 'size');
      if (rawSize < 0) throw new MalformedTarError('has a tar header with a negative size');
      if (tf === 0x78 || tf === 0x67) {
        const pax = parsePax(await readMeta(rawSize, 'PAX header'));
        if (tf === 0x67) for (const [k, v] of pax) globalPax.set(k, v);
        else localPax = pax;
        continue;
      }
      if (tf === 0x4c || tf === 0x4b) {
        const v = checkName(nts(await readMeta(rawSize, 'GNU long name')).toString('utf8'), 'name');
        if (tf === 0x4c) longName = v;
        else longLink = v;
        continue;
      }
      const pax = new Map([...globalPax, ...(localPax ?? [])]);
      localPax = undefined;
      let type = TYPES[tf];
      if (!type) {
        const shown = tf >= 0x20 && tf < 0x7f ? `'${String.fromCharCode(tf)}'` : `0x${tf.toString(16)}`;
        throw new MalformedTarError(`has an unsupported tar entry type ${shown}${tf === 0x53 ? ' (GNU sparse file)' : ''}`);
      }
      if ([...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) throw new MalformedTarError('has a PAX sparse file, which nixreg does not support');
      let name = nts(h.subarray(0, 100)).toString('utf8');
      const magic = h.subarray(257, 263).toString('latin1');
      const prefix = nts(h.subarray(345, 500));
      if (magic === 'ustar\0' && prefix.length) name = prefix.toString('utf8') + '/' + name;
      if (longName !== undefined) name = longName;
      if (pax.has('path')) name = pax.get('path')!.toString('utf8');
      let linkname = nts(h.subarray(157, 257)).toString('utf8');
      if (longLink !== undefined) linkname = longLink;
      if (pax.has('linkpath')) linkname = pax.get('linkpath')!.toString('utf8');
      longName = longLink = undefined;
      if (tf === 0x00 && name.endsWith('/')) type = 'dir'; // old V7 directory
      const size = pax.has('size') ? paxInt(pax.get('size')!, 'size') : rawSize;
      if (size < 0) throw new MalformedTarError('has a negative PAX size');
      const xattrs = [...pax.entries()].filter(([k]) => k.startsWith('SCHILY.xattr.')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const entry: LayerTarEntry = {
        name: checkName(name, 'name'),
        type,
        mode: num(h.subarray(100, 108), 'mode') & 0o7777,
        uid: pax.has('uid') ? paxInt(pax.get('uid')!, 'uid') : num(h.subarray(108, 116), 'uid'),
        gid: pax.has('gid') ? paxInt(pax.get('gid')!, 'gid') : num(h.subarray(116, 124), 'gid'),
        size: type === 'file' ? size : 0,
        mtime: pax.has('mtime') ? paxInt(pax.get('mtime')!, 'mtime') : num(h.subarray(136, 148), 'mtime'),
        linkname: checkName(linkname, 'link target'),
        devmajor: type === 'char' || type === 'block' ? num(h.subarray(329, 337), 'devmajor') : 0,
        devminor: type === 'char' || type === 'block' ? num(h.subarray(337, 345), 'devminor') : 0,
        xattrs,
      };
      if (entry.uid < 0 || entry.gid < 0) throw new MalformedTarError(`has a negative uid/gid on ${JSON.stringify(entry.name)}`);
      // Only regular files carry data: Go's archive/tar (isHeaderOnlyType) reads no bytes after a link, dir,
      // device or fifo header whatever its size field says, and so do we.
      const stored = type === 'file' ? size : 0;
      currentSize = stored;
      pendingData = stored + pad512(stored);
      bodyTaken = false;
      yield entry;
    }
    await r.drain();
  }

  async function* body(): AsyncGenerator<Buffer> {
    if (bodyTaken) throw new Error('layer tar: body() called twice or outside an entry');
    bodyTaken = true;
    const size = currentSize;
    pendingData -= size;
    yield* r.chunks(size);
  }

  return { entries, body };
}
