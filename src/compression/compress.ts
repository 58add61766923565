import { Duplex, Transform, type TransformCallback } from 'node:stream';
import { spawn } from 'node:child_process';
import { constants, createGzip } from 'node:zlib';
import { NixregError, describeSystemError } from '../errors.js';

/**
 * Deterministic layer compressors for `nixreg push`: the same layer tar must give the same compressed bytes
 * (and so the same blob digest) on every run and every machine, so an unchanged layer is found by a HEAD.
 *
 * - gzip: node:zlib at a fixed level (default 1, BestSpeed, as go-containerregistry/crane/ko compress layers: on
 *   generated Nix layers it measured 2x the CPU throughput of level 6 for blobs about 4% larger — and Node's zlib
 *   runs one thread per layer where skopeo's pgzip splits a layer across cores, so level 6 made a cold push CPU-bound
 *   at 2.3x skopeo's CPU time; `--compression-level` picks another) with default strategy/window/memLevel. Node writes a bare 10-byte header
 *   (no name, no comment, MTIME 0), but the OS byte is zlib's compile-time OS_CODE (3 on Unix, other values on
 *   Windows/macOS builds); we overwrite it with 255 ("unknown", as https://github.com/nlewo/nix2container/pull/222 does) so the header
 *   does not depend on where nixreg runs. The deflate stream depends on the input, zlib's parameters, the zlib
 *   Node bundles (one per release) and the CPU: Chromium's zlib picks its match-finder hash at run time (CRC32C
 *   where SSE4.2+PCLMUL or ARMv8 CRC32 exist, zlib's own hash otherwise; nodejs/node
 *   deps/zlib/contrib/optimizations/insert_string.h). Another Node or CPU class can so give other digests: the
 *   result is a re-upload, never a wrong image, because the registry verifies every digest.
 * - zstd: Node 20's zlib has no zstd encoder, so the system `zstd` binary (default level 3) in single-thread mode
 *   (`-T1`): multi-threaded zstd output depends on how the input is split (https://github.com/nlewo/nix2container/pull/223).
 * - none: the tar itself (blob digest = diffID).
 */
export type PushCompression = 'gzip' | 'zstd' | 'none';

export const GZIP_LEVEL = 1;
export const ZSTD_LEVEL = 3;
/** Byte 9 of a gzip member header is the OS field; 255 = unknown. */
const GZIP_OS_OFFSET = 9;
const GZIP_OS_UNKNOWN = 0xff;

/**
 * The pipeline stages turning a layer tar into its deterministic compressed bytes (none for 'none'); put them
 * into stream.pipeline between the tar source and the consumer.
 */
export function compressorStages(kind: PushCompression, level?: number): Duplex[] {
  if (kind === 'none') return [];
  if (kind === 'gzip') return createDeterministicGzip(level);
  return [createZstd(level)];
}

/**
 * Names the exact compressed bytes a layer gets ('gzip-1', 'gzip-6', 'zstd-3', 'zstd-19', 'none'): the push cache
 * keys compressed digests by it, so a different level never reuses another level's digest. The level is always
 * spelled out, so cache entries written when the default level was different (bare 'gzip' meant level 6) can never
 * be taken for today's default.
 */
export function codecId(kind: PushCompression, level?: number): string {
  if (kind === 'none') return 'none';
  return `${kind}-${level ?? (kind === 'gzip' ? GZIP_LEVEL : ZSTD_LEVEL)}`;
}

/** Valid levels: gzip 1–9, zstd 1–19. */
export function checkLevel(kind: PushCompression, level: number): string | undefined {
  if (kind === 'none') return '--compression-level does not apply to --compression none';
  const max = kind === 'gzip' ? 9 : 19;
  if (!Number.isInteger(level) || level < 1 || level > max) return `--compression-level for ${kind} must be an integer from 1 to ${max}`;
  return undefined;
}

export function createDeterministicGzip(level = GZIP_LEVEL): Transform[] {
  const gzip = createGzip({
    level,
    strategy: constants.Z_DEFAULT_STRATEGY,
    windowBits: 15,
    memLevel: 8,
    chunkSize: 256 * 1024,
  });
  return [gzip, new FixGzipOsByte()];
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

function createZstd(level = ZSTD_LEVEL): Duplex {
  const child = spawn('zstd', [`-${level}`, '-T1', '-q', '-c', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 2000) stderr += d.toString();
  });
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (err) => duplex.destroy(new NixregError(`cannot run zstd for --compression zstd: ${describeSystemError(err)}`)));
  child.on('exit', (code, signal) => {
    if (code !== 0 && !duplex.destroyed) duplex.destroy(new NixregError(`zstd failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n')[0] ?? ''}`));
  });
  duplex.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return duplex;
}
