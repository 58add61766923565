import { compressArchiveStream, type ArchiveCompression } from '../../compression/archive.js';
import type { PushCompression } from '../../compression/compress.js';
import { checkLevel } from '../../compression/compress.js';
import { usageError } from '../../errors.js';
import { writeOciArchive, writeOciDirectory, type OciImageResult } from '../../oci/index.js';
import { openAtomic } from '../../util/atomic-file.js';
import type { StreamConf } from './conf.js';
import { writeImage, type StreamResult } from '../../sink/nixpkgs-archive/stream-image.js';
import { prepareImage, type StreamImageOptions } from './image.js';
import { WritableSink } from './sink.js';

/**
 * Every output `nixreg stream` and `nixreg build` can write, chosen by --format / --compression / --compress.
 * The plain docker-archive keeps its own paths (streamImageToFile / streamImageToStdout in index.ts); this
 * module adds the compressed docker-archive and the OCI layouts.
 */
export type OutputFormat = 'docker-archive' | 'oci' | 'oci-archive';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['docker-archive', 'oci', 'oci-archive'];

export interface StreamOutputOptions extends StreamImageOptions {
  format?: OutputFormat;
  /** Layer compression of the OCI formats (default gzip). */
  compression?: PushCompression;
  compressionLevel?: number;
  /** Whole-archive compression of a docker-archive (default none). */
  compress?: ArchiveCompression;
  force?: boolean;
}

export type StreamOutputResult = ({ format: 'docker-archive' } & StreamResult) | ({ format: 'oci' | 'oci-archive' } & OciImageResult);

/** Flag combinations that make no sense, rejected before any work. */
export function checkOutputOptions(output: string | undefined, o: StreamOutputOptions): void {
  const format = o.format ?? 'docker-archive';
  if (format === 'docker-archive') {
    if (o.compression !== undefined || o.compressionLevel !== undefined)
      throw usageError('--compression applies to --format oci/oci-archive (layers); for a compressed docker-archive use --compress gz|zstd');
    return;
  }
  if (o.compress && o.compress !== 'none')
    throw usageError(`--compress applies to docker-archive outputs; --format ${format} compresses each layer (--compression)`);
  if (format === 'oci' && (!output || output === '-')) throw usageError('--format oci writes a directory: give -o DIR');
  if (o.compressionLevel !== undefined) {
    const bad = checkLevel(o.compression ?? 'gzip', o.compressionLevel);
    if (bad) throw usageError(bad);
  }
}

/** `output`: a path, or '-' / undefined for stdout. Plain docker-archives are the caller's (index.ts) business. */
export async function writeStreamOutput(conf: StreamConf, output: string | undefined, o: StreamOutputOptions): Promise<StreamOutputResult> {
  checkOutputOptions(output, o);
  const format = o.format ?? 'docker-archive';
  const oci = { ...o, level: o.compressionLevel };
  if (format === 'oci') return { format, ...(await writeOciDirectory(conf, output!, oci)) };
  if (format === 'oci-archive') return { format, ...(await writeOciArchive(conf, output ?? '-', oci)) };
  return { format, ...(await streamCompressedArchive(conf, output, o.compress ?? 'none', o)) };
}

/**
 * A docker-archive through a whole-file compressor (buildLayeredImage's image.tar.gz / .tar.zst).
 * The file output's back-patching (layer header written before its digest is known, fixed afterwards) cannot
 * work here: the patched bytes would already be inside the compressed stream. So this takes the path stdout
 * takes on a pipe: a store layer whose diffID is not in the layer cache gets a hashing pass before it is written
 * (cached, so a second run has none), and each byte is compressed exactly once.
 */
export async function streamCompressedArchive(
  conf: StreamConf,
  output: string | undefined,
  kind: ArchiveCompression,
  opts: StreamImageOptions & { force?: boolean },
): Promise<StreamResult> {
  const img = await prepareImage(conf, opts);
  if (!output || output === '-') {
    const c = compressArchiveStream(kind, process.stdout, { endOut: false });
    const result = await writeImage(img, new WritableSink(c.input, 'stdout', true), opts);
    await c.done;
    return result;
  }
  let file;
  try {
    file = await openAtomic(output, { force: opts.force });
  } catch (err) {
    await img.base?.archive.close();
    throw err;
  }
  try {
    const c = compressArchiveStream(kind, file.stream);
    const result = await writeImage(img, new WritableSink(c.input, output, true), opts);
    await c.done;
    await file.commit();
    return result;
  } catch (err) {
    await file.abort();
    throw err;
  }
}
