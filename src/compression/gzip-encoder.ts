import { Transform, type TransformCallback } from 'node:stream';
import { constants, createGzip, deflateRawSync } from 'node:zlib';
import { Deflate } from 'pako';
import { NixregError } from '../errors.js';
import { deflateProbeInput, PROBE_DIGESTS, probeDigest } from './deflate-probe.js';

/**
 * Deterministic gzip for layers and archives: the bytes are those of pako 3.0.3 (pure JavaScript, pinned to an exact
 * version in package.json), so the same nixreg version gives the same blob digests on every install.
 *
 * Why not node:zlib alone: its deflate is whichever zlib the Node binary carries. The official builds bundle
 * Chromium's zlib, whose match finder hashes 4 bytes with a multiply (the "ANZAC++" hasher) unless built with
 * CHROMIUM_ZLIB_NO_CASTAGNOLI (https://github.com/nodejs/node/blob/main/deps/zlib/contrib/optimizations/insert_string.h);
 * older Chromium zlib picked a CRC32C hash at run time by CPU; a Node built with --shared-zlib (Debian's nodejs, for
 * one) uses the system's canonical zlib (Rabin-Karp hash). Each gives other bytes. pako 3 implements the ANZAC++
 * hasher, so it writes what the official Node builds write (measured: identical for levels 1–9 on the probe and on a
 * 128 MiB layer).
 *
 * Speed: pako runs at ~37% of node:zlib (bench/encoders.mjs). So node:zlib is used wherever it writes pako's bytes:
 * once per level and process, it deflates a fixed probe (deflate-probe.ts, 1.1 MiB: 10 ms at level 1) and compares
 * the digest with pako's; on a match it compresses (on libuv's thread pool), otherwise pako does (on the main thread).
 * NIXREG_DEFLATE=pako forces pako; NIXREG_DEBUG=1 names the choice.
 */
export type DeflateEngine = 'node:zlib' | 'pako';

const chosen = new Map<number, DeflateEngine>();
let probe: Buffer | undefined;

export function deflateEngine(level: number): DeflateEngine {
  if (process.env.NIXREG_DEFLATE === 'pako') return 'pako';
  let engine = chosen.get(level);
  if (engine === undefined) {
    probe ??= deflateProbeInput();
    const raw = deflateRawSync(probe, { level, windowBits: 15, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY });
    engine = probeDigest(raw) === PROBE_DIGESTS[level] ? 'node:zlib' : 'pako';
    chosen.set(level, engine);
    if (process.env.NIXREG_DEBUG) {
      const why = engine === 'node:zlib' ? 'writes the same bytes as pako' : 'differs from pako on the probe';
      process.stderr.write(`nixreg: debug: gzip level ${level}: ${engine} (node:zlib ${process.versions.zlib} ${why})\n`);
    }
  }
  return engine;
}

/** Byte 9 of a gzip member header is the OS field; 255 = unknown. */
const GZIP_OS_OFFSET = 9;
const GZIP_OS_UNKNOWN = 0xff;
const OUT_CHUNK = 256 * 1024;

export function createDeterministicGzip(level: number): Transform[] {
  if (deflateEngine(level) === 'pako') return [new PakoGzip(level), new FixGzipOsByte()];
  const gzip = createGzip({ level, strategy: constants.Z_DEFAULT_STRATEGY, windowBits: 15, memLevel: 8, chunkSize: OUT_CHUNK });
  return [gzip, new FixGzipOsByte()];
}

/**
 * pako's streaming deflate as a Transform. Both engines write a bare 10-byte header (no name, no comment, MTIME 0)
 * with zlib's OS byte, which FixGzipOsByte then sets to 255.
 */
class PakoGzip extends Transform {
  private readonly deflate: Deflate;

  constructor(level: number) {
    super();
    this.deflate = new Deflate({ level, gzip: true, windowBits: 15, memLevel: 8, chunkSize: OUT_CHUNK });
    this.deflate.onData = (chunk) => this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.deflate.onEnd = () => {};
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(this.deflate.push(chunk, false) ? null : this.failure());
  }

  override _flush(cb: TransformCallback): void {
    cb(this.deflate.push(new Uint8Array(0), true) ? null : this.failure());
  }

  private failure(): Error {
    return new NixregError(`gzip compression failed: ${this.deflate.msg || `zlib status ${this.deflate.err}`}`);
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
