import { Transform, type TransformCallback } from 'node:stream';
import { constants, createGzip, deflateRawSync } from 'node:zlib';
import { NixregError } from '../errors.js';
import { type NativeCodecs, nativeDecoder } from '../native/codecs.js';
import { deflateProbeInput, PROBE_DIGESTS, probeDigest } from './deflate-probe.js';
import { type GzipStream, openGzipStream } from './encoder-pool.js';

/**
 * Deterministic gzip for layers and archives. The bytes are canonical zlib's (1.2.12 and later; the system zlib of
 * Debian and of nixpkgs), which pako 3.0.3 with its classic hash reproduces in pure JavaScript: pako is pinned to an
 * exact version in package.json and is the reference, so the same nixreg version gives the same blob digests on
 * every install whichever engine below writes them.
 *
 * Why not node:zlib alone: its deflate is whichever zlib the Node binary carries. The official builds bundle
 * Chromium's zlib, whose match finder hashes 4 bytes with a multiply (the "ANZAC++" hasher) unless built with
 * CHROMIUM_ZLIB_NO_CASTAGNOLI (https://github.com/nodejs/node/blob/main/deps/zlib/contrib/optimizations/insert_string.h);
 * older ones picked a CRC32C hash at run time by CPU; a Node built with --shared-zlib (nixpkgs' nodejs, Debian's
 * nodejs) uses the system zlib. Each gives other bytes (measured: blobs of the official build 3% smaller at level 1).
 * Canonical zlib is the reference because it is what the Nix package runs and what every system zlib writes.
 *
 * Engines, the first that writes exactly pako's bytes (checked once per level and process by deflating a fixed
 * 1.1 MiB probe, deflate-probe.ts, ~10 ms at level 1, and comparing digests): node:zlib (the thread pool; passes
 * where Node uses the system zlib), the native encoder over a static zlib (src/native/codecs.c, the thread pool;
 * for official Node builds), else pako (on worker threads, ~40% of their speed per core). NIXREG_DEFLATE=pako forces pako;
 * NIXREG_DEBUG=1 names the choice.
 */
export type DeflateEngine = 'node:zlib' | 'native' | 'pako';

const chosen = new Map<number, DeflateEngine>();
let probe: Buffer | undefined;

export function deflateEngine(level: number): DeflateEngine {
  if (process.env.NIXREG_DEFLATE === 'pako') return 'pako';
  let engine = chosen.get(level);
  if (engine === undefined) {
    probe ??= deflateProbeInput();
    const expected = PROBE_DIGESTS[level];
    const viaNode = probeDigest(deflateRawSync(probe, { level, windowBits: 15, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY }));
    const native = viaNode === expected ? undefined : nativeDecoder('deflate');
    engine = viaNode === expected ? 'node:zlib' : native && rawOfGzip(native.deflateSync?.(probe, level)) === expected ? 'native' : 'pako';
    chosen.set(level, engine);
    if (process.env.NIXREG_DEBUG)
      process.stderr.write(
        `nixreg: debug: gzip level ${level}: ${engine} (node:zlib ${process.versions.zlib} ${viaNode === expected ? 'writes' : 'does not write'} the reference bytes)\n`,
      );
  }
  return engine;
}

/** sha256 of the deflate data inside a one-member gzip with a bare 10-byte header (as deflateSync writes it). */
function rawOfGzip(gz: Buffer | undefined): string | undefined {
  return gz && gz.length > 18 ? probeDigest(gz.subarray(10, gz.length - 8)) : undefined;
}

/** Byte 9 of a gzip member header is the OS field; 255 = unknown. */
const GZIP_OS_OFFSET = 9;
const GZIP_OS_UNKNOWN = 0xff;
const OUT_CHUNK = 256 * 1024;
/** Input chunks queued on pako's worker per stream. */
const IN_FLIGHT = 4;

export function createDeterministicGzip(level: number): Transform[] {
  const engine = deflateEngine(level);
  if (engine === 'pako') return [new PakoGzip(level), new FixGzipOsByte()];
  if (engine === 'native') return [new NativeGzip(nativeDecoder('deflate') as NativeCodecs, level), new FixGzipOsByte()];
  const gzip = createGzip({ level, strategy: constants.Z_DEFAULT_STRATEGY, windowBits: 15, memLevel: 8, chunkSize: OUT_CHUNK });
  return [gzip, new FixGzipOsByte()];
}

/** The native encoder as a Transform: each input chunk is compressed on the thread pool, its output pushed in order. */
class NativeGzip extends Transform {
  private readonly handle: unknown;

  constructor(
    private readonly codecs: NativeCodecs,
    level: number,
  ) {
    super();
    this.handle = codecs.open('deflate', level);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.run(chunk, cb);
  }

  override _flush(cb: TransformCallback): void {
    this.codecs.endInput?.(this.handle);
    this.run(Buffer.alloc(0), cb);
  }

  private run(input: Buffer, cb: TransformCallback, offset = 0): void {
    this.codecs.decode(this.handle, input, offset, 4 << 20, (err, r) => {
      if (err) return cb(new NixregError(`gzip compression failed: ${err.message}`));
      for (let i = 2; i < r.length; i++) this.push(r[i] as Buffer);
      if (r[1]) return cb();
      this.run(input, cb, offset + r[0]);
    });
  }
}

/**
 * pako's streaming deflate on a worker thread (encoder-pool.ts) as a Transform: up to IN_FLIGHT chunks are queued on
 * the worker, their output pushed in order. All engines write a bare 10-byte header (no name, no comment, MTIME 0)
 * with zlib's OS byte, which FixGzipOsByte then sets to 255.
 */
class PakoGzip extends Transform {
  private readonly stream: GzipStream;
  private readonly pending: Promise<Buffer[]>[] = [];
  private ended = false;

  constructor(level: number) {
    super();
    this.stream = openGzipStream(level);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.queue(this.stream.write(chunk));
    this.drain(IN_FLIGHT - 1).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.ended = true;
    this.queue(this.stream.end());
    this.drain(0).then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (!this.ended) this.stream.abort();
    cb(err);
  }

  private queue(job: Promise<Buffer[]>): void {
    job.catch(() => {}); // observed by drain(); a stream destroyed meanwhile must not leave an unhandled rejection
    this.pending.push(job);
  }

  private async drain(keep: number): Promise<void> {
    while (this.pending.length > keep) {
      const out = await (this.pending[0] as Promise<Buffer[]>);
      this.pending.shift();
      for (const c of out) this.push(c);
    }
  }
}

/** Rewrites the OS byte of the (single) gzip header; everything after passes through untouched. */
class FixGzipOsByte extends Transform {
  private seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen <= GZIP_OS_OFFSET && this.seen + chunk.length > GZIP_OS_OFFSET) {
      chunk = Buffer.from(chunk); // never write into a buffer zlib may still own
      chunk[GZIP_OS_OFFSET - this.seen] = GZIP_OS_UNKNOWN;
    }
    this.seen += chunk.length;
    cb(null, chunk);
  }
}
