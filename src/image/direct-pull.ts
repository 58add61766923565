import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import pLimit from 'p-limit';
import { archiveLayout, type ArchiveResult, type RepoTag } from '../archive/docker-archive-writer.js';
import { gzipError } from '../compression/decompress.js';
import { decodeEach, nativePump } from '../compression/native-decompress.js';
import { MediaType } from '../manifest/media-types.js';
import type { NativeCodecs } from '../native/codecs.js';
import { writeAll } from '../util/write-all.js';
import { configDiffIDs, diffIDMismatch, distinctLayers, openPlainLayer } from './copy.js';
import type { CopyProgress, ImageSource } from './types.js';

/**
 * `pull`'s fast path into a file. A docker-archive holds layers uncompressed, each behind a tar header that carries
 * its size, so the general pipeline (copy.ts) decompresses every layer into a spool and then copies it into the
 * archive in manifest order: each byte written twice and read once more. But a gzip member ends with its
 * uncompressed size (ISIZE, mod 2^32): read those first (one 4-byte Range request per layer) and the whole archive
 * can be laid out up front; every layer is then decompressed straight into its place, in parallel, each byte
 * written once (512 MiB in 8 layers: see the README's Performance section).
 *
 * The trailer is only a hint. A layer of 4 GiB or more, or one made of several gzip members (ISIZE then covers the
 * last only), comes out at another size: noticed when the layer overruns its place or ends short, and thrown as
 * SizeMispredicted, after which the caller empties the file and takes the general path. diffIDs are verified as
 * always, and the file is the atomic output's temporary file: nothing half-written is ever visible.
 */
export class SizeMispredicted extends Error {}

export const GZIP_LAYERS = new Set<string>([
  MediaType.dockerLayerGzip,
  MediaType.ociLayerGzip,
  MediaType.ociLayerNondistributableGzip,
  MediaType.dockerForeignLayerGzip,
]);
const TAR_LAYERS = new Set<string>([MediaType.ociLayer, 'application/vnd.docker.image.rootfs.diff.tar']);
const TAIL_REQUESTS = 16;

/** Each distinct layer's uncompressed size from its gzip trailer (or its size, uncompressed); undefined if any is unknown. */
export async function predictSizes(source: ImageSource, unique: readonly number[]): Promise<number[] | undefined> {
  const tail = source.layerTail?.bind(source);
  if (!tail) return undefined;
  const limit = pLimit(TAIL_REQUESTS);
  const sizes = await Promise.all(
    unique.map((i) =>
      limit(async () => {
        const d = source.layers[i]!;
        if (TAR_LAYERS.has(d.mediaType)) return d.size;
        if (!GZIP_LAYERS.has(d.mediaType) || d.size < 18) return undefined; // 18: the smallest gzip member
        return (await tail(i, 4))?.readUInt32LE(0);
      }),
    ),
  );
  return sizes.every((s) => s !== undefined) ? (sizes as number[]) : undefined;
}

/**
 * Write the docker-archive of `source` into `fh` (an empty file) with every layer decompressed into place.
 * undefined: the image does not qualify (a layer neither gzip nor plain tar, or a registry that will not give the
 * trailers): nothing was written, use the general path. `hash`: also the archive's sha256, read back from the file.
 */
export async function pullIntoFile(
  source: ImageSource,
  fh: FileHandle,
  repoTags: readonly RepoTag[],
  opts: { jobs?: number; progress?: CopyProgress; hash: boolean; log?: (line: string) => void },
): Promise<ArchiveResult | undefined> {
  const p = opts.progress ?? {};
  const diffIDs = configDiffIDs(source.configBytes, source.layers.length, source.description);
  const { unique, repeats } = distinctLayers(diffIDs);
  const sizes = await predictSizes(source, unique);
  if (!sizes) return undefined;
  p.begin?.(source.layers);
  for (const [i, sameAs] of repeats) p.layerSkipped?.(i, sameAs); // only now that this path is taken
  opts.log?.(`${source.description}: ${unique.length} layer(s) decompressed into place (sizes from their gzip trailers)`);
  const layout = archiveLayout({ configBytes: source.configBytes, configDigest: source.config.digest, diffIDs, repoTags }, sizes);
  for (const piece of layout.pieces) await fh.write(piece.bytes, 0, piece.bytes.length, piece.offset);

  const open = new Set<Readable>();
  let failure: { err: unknown } | undefined;
  const intoPlace = async (k: number): Promise<void> => {
    const i = unique[k]!;
    const hash = createHash('sha256');
    const base = layout.dataOffsets[k]!;
    const want = sizes[k]!;
    let n = 0;
    // hashed at once, written at its place; the returned write is awaited before that buffer is touched again
    const take: LayerReader = (b) => {
      if (n + b.length > want) throw new SizeMispredicted(`layer ${i}: more than the ${want} bytes its gzip trailer gives`);
      hash.update(b);
      const at = base + n;
      n += b.length;
      return writeAll(fh, b, at);
    };
    const pump = GZIP_LAYERS.has(source.layers[i]!.mediaType) ? nativePump('gzip') : undefined;
    if (pump) await decodeGzipLayer(source, i, p, pump, take, { open });
    else await plainLayer(source, i, p, take, { open });
    if (n !== want) throw new SizeMispredicted(`layer ${i}: ${n} bytes, its gzip trailer gives ${want}`);
    const diffID = `sha256:${hash.digest('hex')}`;
    if (diffID !== diffIDs[i]) throw diffIDMismatch(source, i, diffID, diffIDs[i]!);
    p.layerSpooled?.(i, n);
    p.layerWritten?.(i);
  };
  // `jobs` layers at a time; the first failure stops the rest (their downloads are cut) and is thrown
  const limit = pLimit(Math.max(1, opts.jobs ?? 4));
  await Promise.all(
    unique.map((_, k) =>
      limit(async () => {
        if (failure) return;
        try {
          await intoPlace(k);
        } catch (err) {
          failure ??= { err };
          for (const r of open) r.destroy();
        }
      }),
    ),
  );
  if (failure) throw failure.err;
  return { size: layout.size, sha256: opts.hash ? await hashFile(fh, layout.size) : null };
}

/** What reads a layer's decoded bytes: it hashes or copies them at once, or returns a promise (a file write) before which the chunk is not reused. */
export type LayerReader = (b: Buffer) => void | Promise<void>;

export interface LayerReadOptions {
  /** raw downloads in flight, for the caller to cut on a failure elsewhere */
  open?: Set<Readable>;
  /** called once if the decoder keeps waiting for input (decodeEach) */
  onStarved?: () => void;
}

/**
 * A gzip layer through the native decoder's two reused buffers (decodeEach), each piece to `take`. A first byte that
 * is not gzip throws SizeMispredicted: the media type is not trusted (zstd and plain tar appear under gzip types),
 * and the general path sorts those out.
 */
export async function decodeGzipLayer(
  source: ImageSource,
  i: number,
  p: CopyProgress,
  codecs: NativeCodecs,
  take: LayerReader,
  o: LayerReadOptions = {},
): Promise<void> {
  p.layerStart?.(i, source.layers[i]!);
  const raw = await source.openLayer(i);
  o.open?.add(raw);
  if (p.layerBytes) raw.on('data', (c: Buffer) => p.layerBytes!(i, c.length));
  const gzipFirst = (first: Buffer) => {
    if (first[0] !== 0x1f || (first.length > 1 && first[1] !== 0x8b)) throw new SizeMispredicted(`layer ${i}: not gzip, although its media type says so`);
  };
  try {
    await decodeEach(codecs, 'gzip', raw, take, gzipError, gzipFirst, o.onStarved);
  } finally {
    o.open?.delete(raw);
  }
}

/**
 * Any other layer through the general decompression by magic, each chunk to `take` as decoded ('data' in flowing
 * mode: an async iterator would concatenate what is buffered); a returned promise pauses the stream until it settles.
 */
export async function plainLayer(source: ImageSource, i: number, p: CopyProgress, take: LayerReader, o: LayerReadOptions = {}): Promise<void> {
  const { raw, plain, fetched } = await openPlainLayer(source, i, p);
  o.open?.add(raw);
  let last: Promise<void> | undefined;
  plain.on('data', (b: Buffer) => {
    try {
      const pending = take(b);
      if (!(pending instanceof Promise)) return;
      plain.pause();
      last = pending.then(
        () => void plain.resume(),
        (e: Error) => void plain.destroy(e),
      );
    } catch (e) {
      plain.destroy(e as Error);
    }
  });
  try {
    await Promise.all([finished(plain), fetched]);
    await last;
  } catch (err) {
    raw.destroy();
    plain.destroy();
    throw err;
  } finally {
    o.open?.delete(raw);
  }
}

async function hashFile(fh: FileHandle, size: number): Promise<Buffer> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafeSlow(1 << 20);
  for (let at = 0; at < size; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
    if (bytesRead === 0) throw new Error(`internal: the archive ends at ${at} of ${size} bytes`);
    h.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return h.digest();
}
