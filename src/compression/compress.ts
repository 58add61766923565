import type { Duplex } from 'node:stream';
import { createDeterministicGzip } from './gzip-encoder.js';
import { FramedZstd } from './zstd-encoder.js';

/**
 * Deterministic layer compressors for `nixreg push`, `stream --format oci` and `--compress`: the same layer tar must
 * give the same compressed bytes (and so the same blob digest) on every run and every install of a nixreg version,
 * so an unchanged layer is found by a HEAD, a cache entry or a mount.
 *
 * - gzip (gzip-encoder.ts): pako 3.0.3's bytes, written by node:zlib where it has been checked to give exactly those,
 *   at a fixed level (default 1, BestSpeed, as go-containerregistry/crane/ko compress layers: on generated Nix layers
 *   it measured 2x the CPU throughput of level 6 for blobs about 4% larger; `--compression-level` picks another),
 *   default strategy, window and memLevel; a bare 10-byte header (no name, no comment, MTIME 0) with OS byte 255
 *   ("unknown", as https://github.com/nlewo/nix2container/pull/222 does) so it does not depend on where nixreg runs.
 * - zstd (zstd-encoder.ts): 4 MiB frames, each compressed by the pinned WebAssembly zstd (default level 3) on worker
 *   threads.
 * - none: the tar itself (blob digest = diffID).
 */
export type PushCompression = 'gzip' | 'zstd' | 'none';

export const GZIP_LEVEL = 1;
export const ZSTD_LEVEL = 3;

/**
 * The pipeline stages turning a layer tar into its deterministic compressed bytes (none for 'none'); put them
 * into stream.pipeline between the tar source and the consumer.
 */
export function compressorStages(kind: PushCompression, level?: number): Duplex[] {
  if (kind === 'none') return [];
  if (kind === 'gzip') return createDeterministicGzip(level ?? GZIP_LEVEL);
  return [new FramedZstd(level ?? ZSTD_LEVEL)];
}

/**
 * Names the exact compressed bytes a layer gets ('gzip-1-zlib', 'gzip-6-zlib', 'zstd-3-frames4m', 'none'): the push cache
 * keys compressed digests by it, so a different level never reuses another level's digest. The level is always
 * spelled out, so cache entries written when the default level was different (bare 'gzip' meant level 6) can never
 * be taken for today's default. The suffixes name today's encoders: entries written when gzip was whichever zlib
 * Node carried ('gzip-1') or zstd was the `zstd` binary ('zstd-3', one frame) hold other digests.
 */
export function codecId(kind: PushCompression, level?: number): string {
  if (kind === 'none') return 'none';
  if (kind === 'zstd') return `zstd-${level ?? ZSTD_LEVEL}-frames4m`;
  return `gzip-${level ?? GZIP_LEVEL}-zlib`;
}

/** Valid levels: gzip 1–9, zstd 1–19. */
export function checkLevel(kind: PushCompression, level: number): string | undefined {
  if (kind === 'none') return '--compression-level does not apply to --compression none';
  const max = kind === 'gzip' ? 9 : 19;
  if (!Number.isInteger(level) || level < 1 || level > max) return `--compression-level for ${kind} must be an integer from 1 to ${max}`;
  return undefined;
}
