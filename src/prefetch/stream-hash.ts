import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { archiveLayout, type ArchiveResult, type RepoTag } from '../archive/docker-archive-writer.js';
import { asWriteError } from '../util/write-error.js';
import { configDiffIDs, diffIDMismatch, distinctLayers } from '../image/copy.js';
import { decodeGzipLayer, GZIP_LAYERS, plainLayer, predictSizes, SizeMispredicted } from '../image/direct-pull.js';
import type { CopyProgress, ImageSource } from '../image/types.js';
import { SpoolDir } from '../image/layer-spool.js';
import { nativePump } from '../compression/native-decompress.js';

/**
 * prefetch's archive hash without an archive and without a spool of uncompressed layers. The general pipeline
 * (copy.ts) decompresses every layer into a spool file because a tar header carries the size before the data;
 * but with the sizes known first (each gzip member ends with its uncompressed size, ISIZE: read with one 4-byte
 * Range request per layer, as direct-pull.ts does), the whole archive is laid out up front, and the layers can be
 * decompressed one after the other, in archive order, each chunk going once through memory into both the layer's
 * diffID hash and the archive hash. Nothing uncompressed touches the disk.
 *
 * What protects the user stays: every blob is checked against its digest as it streams (getBlob), and every
 * layer's diffID against the config's rootfs.diff_ids before the hash is returned. The trailer is only a hint: a
 * layer that comes out at another size (several gzip members, 4 GiB or more) throws SizeMispredicted, and the
 * caller hashes through the general pipeline instead; nothing has been output by then.
 *
 * When the registry is slower than the decoder, the layers after the one being decompressed download meanwhile
 * (`ahead` of them at a time) into a run-local temporary directory, still compressed, so a slow registry is read
 * over several connections as before. The native decoder tells when it waits for input (decodeEach's onStarved);
 * until then nothing downloads ahead: from a fast registry a download ahead is only a second write and read of the
 * blob (on loopback: prefetch wall 0.90x, CPU 0.88x without them).
 */
export async function hashArchiveStreaming(
  source: ImageSource,
  repoTags: readonly RepoTag[],
  opts: { ahead: number; progress?: CopyProgress; log?: (line: string) => void },
): Promise<ArchiveResult | undefined> {
  const p = opts.progress ?? {};
  const diffIDs = configDiffIDs(source.configBytes, source.layers.length, source.description);
  const { unique, repeats } = distinctLayers(diffIDs);
  const sizes = await predictSizes(source, unique);
  if (!sizes) return undefined;
  p.begin?.(source.layers);
  for (const [i, sameAs] of repeats) p.layerSkipped?.(i, sameAs);
  opts.log?.(`${source.description}: ${unique.length} layer(s) streamed into the archive hash (sizes from their gzip trailers)`);
  const layout = archiveLayout({ configBytes: source.configBytes, configDigest: source.config.digest, diffIDs, repoTags }, sizes);

  const archive = createHash('sha256');
  let at = 0; // archive bytes hashed so far
  let piece = 0;
  const hashPiecesBefore = (offset: number) => {
    for (; piece < layout.pieces.length && layout.pieces[piece]!.offset < offset; piece++) {
      const { offset: o, bytes } = layout.pieces[piece]!;
      if (o !== at) throw new Error(`internal: archive piece at ${o}, hashed up to ${at}`);
      archive.update(bytes);
      at += bytes.length;
    }
  };

  const ahead = opts.ahead > 0 && unique.length > 1 ? AheadDownloads.create(source) : undefined;
  const layerSource = ahead ? ahead.source : source;
  try {
    let slowLink = false;
    for (let k = 0; k < unique.length; k++) {
      const startAhead = () => {
        for (let a = k + 1; a <= k + opts.ahead && a < unique.length; a++) ahead?.start(unique[a]!);
      };
      const pump = GZIP_LAYERS.has(source.layers[unique[k]!]!.mediaType) ? nativePump('gzip') : undefined;
      if (slowLink || !pump) startAhead();
      hashPiecesBefore(layout.dataOffsets[k]!);
      if (at !== layout.dataOffsets[k]) throw new Error(`internal: layer ${k} starts at ${layout.dataOffsets[k]}, hashed up to ${at}`);
      const i = unique[k]!;
      const want = sizes[k]!;
      const diff = createHash('sha256');
      let n = 0;
      const take = (b: Buffer) => {
        if (n + b.length > want) throw new SizeMispredicted(`layer ${i}: more than the ${want} bytes its gzip trailer gives`);
        diff.update(b);
        archive.update(b);
        n += b.length;
      };
      const starved = () => {
        if (!ahead || slowLink) return;
        slowLink = true;
        opts.log?.(`${source.description}: the registry is slower than decoding: downloading up to ${opts.ahead} layer(s) ahead`);
        startAhead();
      };
      if (pump) await decodeGzipLayer(layerSource, i, p, pump, take, { onStarved: starved });
      else await plainLayer(layerSource, i, p, take);
      if (n !== want) throw new SizeMispredicted(`layer ${i}: ${n} bytes, its gzip trailer gives ${want}`);
      at += n;
      const diffID = `sha256:${diff.digest('hex')}`;
      if (diffID !== diffIDs[i]) throw diffIDMismatch(source, i, diffID, diffIDs[i]!);
      await ahead?.done(i);
      p.layerSpooled?.(i, n);
      p.layerWritten?.(i);
    }
  } finally {
    await ahead?.remove();
  }
  hashPiecesBefore(Number.POSITIVE_INFINITY);
  if (at !== layout.size) throw new Error(`internal: hashed ${at} of ${layout.size} archive bytes`);
  return { size: layout.size, sha256: archive.digest() };
}

/** Compressed blobs fetched ahead of their turn into a temporary directory; `source` reads them from there. */
class AheadDownloads {
  private readonly files = new Map<number, { path: string; saved: Promise<void>; raw?: Readable }>();
  private cancelled = false;
  readonly source: ImageSource;
  private constructor(
    private readonly from: ImageSource,
    private readonly dir: SpoolDir,
  ) {
    this.source = {
      ...from,
      openLayer: async (i) => {
        const f = this.files.get(i);
        if (!f) return from.openLayer(i);
        await f.saved;
        return createReadStream(f.path, { highWaterMark: 1 << 20 });
      },
    };
  }
  static create(from: ImageSource): AheadDownloads {
    const base = process.env.TMPDIR || tmpdir();
    try {
      return new AheadDownloads(from, new SpoolDir(base));
    } catch (err) {
      throw spoolError(base, err);
    }
  }
  start(i: number): void {
    if (this.files.has(i)) return;
    const path = this.dir.next();
    const entry: { path: string; saved: Promise<void>; raw?: Readable } = { path, saved: Promise.resolve() };
    entry.saved = (async () => {
      const raw = await this.from.openLayer(i);
      entry.raw = raw;
      if (this.cancelled) return void raw.destroy();
      const w = createWriteStream(path, { highWaterMark: 1 << 20 });
      try {
        await pipeline(raw, w);
      } catch (err) {
        throw w.errored === err ? spoolError(this.dir.path, err) : err;
      }
    })();
    entry.saved.catch(() => {}); // surfaces when the layer's turn comes (or is moot after an earlier failure)
    this.files.set(i, entry);
  }
  /** The layer is hashed: its file is no longer needed. */
  async done(i: number): Promise<void> {
    const f = this.files.get(i);
    if (f) await rm(f.path, { force: true });
  }
  async remove(): Promise<void> {
    this.cancelled = true;
    for (const f of this.files.values()) f.raw?.destroy();
    await Promise.allSettled([...this.files.values()].map((f) => f.saved));
    await this.dir.remove(); // also removed at exit (a signal's process.exit included)
  }
}

/** A failed write to the run's download directory (in TMPDIR) as one line naming it and what to do. */
function spoolError(dir: string, err: unknown): unknown {
  return asWriteError(`the layer spool ${dir}`, err);
}
