import { PassThrough, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { usageError } from '../errors.js';
import { compressorStages, type PushCompression } from './compress.js';

/**
 * Whole-archive compression (`--compress none|gz|zstd`, buildLayeredImage's `compressor`: image.tar.gz /
 * image.tar.zst). The same deterministic compressors as push's layers (compress.ts: gzip level 1 (BestSpeed) with no name,
 * MTIME 0 and OS byte 255; zstd -3 -T1), so the same archive gives the same compressed bytes on every run.
 */
export type ArchiveCompression = 'none' | 'gz' | 'zstd';

export const ARCHIVE_COMPRESSIONS: readonly string[] = ['none', 'gz', 'gzip', 'zstd'];

/** `--compress` value → kind ('gzip' accepted as a synonym of 'gz'). */
export function parseArchiveCompression(v: string | undefined): ArchiveCompression {
  if (v === undefined || v === 'none') return 'none';
  if (v === 'gz' || v === 'gzip') return 'gz';
  if (v === 'zstd') return 'zstd';
  throw usageError(`--compress must be none, gz or zstd (got ${v})`);
}

const codec = (kind: ArchiveCompression): PushCompression => (kind === 'gz' ? 'gzip' : kind);

export interface CompressedOutput {
  /** Write the uncompressed archive here; end() it when the archive is complete. */
  input: Writable;
  /** Settles once every compressed byte has been handed to `out` (rejects on a compressor or `out` error). */
  done: Promise<void>;
}

/**
 * Put a deterministic compressor in front of `out`. `endOut: false` leaves `out` open (process.stdout);
 * with 'none', `input` is a pass-through so callers need only one code path.
 */
export function compressArchiveStream(kind: ArchiveCompression, out: Writable, opts: { endOut?: boolean } = {}): CompressedOutput {
  const stages = compressorStages(codec(kind));
  const input = new PassThrough({ highWaterMark: 1 << 20 });
  const done = pipeline([input, ...stages, out], { end: opts.endOut ?? true });
  // the caller sees failures through `done` (and through writes failing); avoid an unhandled rejection meanwhile
  done.catch(() => {});
  return { input, done };
}
