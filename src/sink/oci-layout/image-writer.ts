import pLimit from 'p-limit';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressorStages, type PushCompression } from '../../compression/compress.js';
import { HashingStream, sha256Digest } from '../../digest/sha256.js';
import { NixregError, integrityError } from '../../errors.js';
import type { CopyProgress } from '../../image/types.js';
import type { Descriptor } from '../../manifest/manifest.js';
import { MediaType } from '../../manifest/media-types.js';
import type { SourceImage } from '../../source/types.js';
import type { LayoutTarget } from './layout-target.js';

/**
 * Any image (a SourceImage: registry, docker-archive, OCI layout or archive, conf) written into an OCI image
 * layout, with the fewest changes its format allows:
 * - an OCI manifest is kept byte for byte, with its config and its layer blobs as stored: every digest stays;
 * - a Docker schema2 manifest becomes an OCI manifest with the same blobs (Docker gzip / tar layers are OCI
 *   gzip / tar layers by other names) and the config bytes verbatim under the OCI config media type: the image ID
 *   and layer digests stay, the manifest digest changes (skopeo 1.9 writes the same media types for `oci:`; it
 *   also re-encodes the config and gzips uncompressed layers, which changes those digests too);
 * - an image without a stored manifest (docker-archive, conf) gets each layer tar compressed with gzip once,
 *   on its way to the layout, and the config bytes verbatim.
 * A blob already written in this run (a layer repeated, or shared by two platforms) is written once.
 */
export interface LayoutImageOptions {
  /** Layers copied at once into a directory (default 4); an archive target and a sequential source take one at a time. */
  jobs?: number;
  /** A tar target can take only one blob at a time. */
  serialBlobs?: boolean;
  progress?: CopyProgress;
}

export interface LayoutImageResult {
  /** The manifest as written into the layout (its descriptor for index.json or an index). */
  manifest: Descriptor;
  manifestBytes: Buffer;
  /** True when the source's manifest bytes were kept, so the manifest digest is the source's. */
  keptManifest: boolean;
}

const OCI_LAYER_FOR: Record<string, string> = {
  [MediaType.ociLayer]: MediaType.ociLayer,
  [MediaType.ociLayerGzip]: MediaType.ociLayerGzip,
  [MediaType.ociLayerZstd]: MediaType.ociLayerZstd,
  [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar': MediaType.ociLayer,
};

type Plan = 'keep' | 'retype' | 'compress';

/**
 * A layer generated on its way into the layout (a conf's store layer): `open()` yields its tar. What is known
 * beforehand (`size`, and `diffID` for base and customisation layers) is checked; what is known only once it has
 * streamed is filled in by `LayoutImageWriter.writeStreamedLayer`: `diffID`, `size`, and `stored`, the blob as
 * written (compressed on the way). Nothing is generated twice.
 */
export interface StreamedLayer {
  open(): Readable;
  /** Names the layer in errors. */
  readonly what: string;
  diffID?: string;
  /** The tar's size. */
  size?: number;
  stored?: Descriptor;
}

const OCI_LAYER_OF: Record<PushCompression, string> = { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayer };

/** How an image goes into a layout: see LayoutImageWriter. Foreign (non-distributable) or unknown layers are regenerated. */
function planOf(src: SourceImage): Plan {
  if (!src.manifestBytes) return 'compress';
  if (src.layers.some((l) => l.urls?.length || !OCI_LAYER_FOR[l.mediaType])) return 'compress';
  if (src.manifestMediaType === MediaType.ociManifest) return 'keep';
  return src.manifestMediaType === MediaType.dockerManifest ? 'retype' : 'compress';
}

/** Writes images' blobs into one layout target; index.json and commit are the caller's (see layout-sink.ts). */
export class LayoutImageWriter {
  private readonly written = new Map<string, Promise<void>>();
  /** Set once a layer failed: the layers still copying stop. */
  private stopped = false;
  private cause: unknown;
  constructor(
    private readonly target: LayoutTarget,
    private readonly opts: LayoutImageOptions = {},
  ) {}

  async write(src: SourceImage): Promise<LayoutImageResult> {
    const plan = planOf(src);
    const p = this.opts.progress ?? {};
    const jobs = this.opts.serialBlobs || src.sequentialReads ? 1 : Math.max(1, this.opts.jobs ?? 4);
    const limit = pLimit(jobs);
    p.begin?.(src.layers);
    const firstOf = new Map<string, number>();
    const tasks = src.layers.map((d, i) =>
      limit(async (): Promise<Descriptor> => {
        this.checkStopped();
        const key = plan === 'compress' ? src.diffIDs[i]! : d.digest;
        const first = firstOf.get(key);
        if (first !== undefined && first !== i) p.layerSkipped?.(i, first);
        else firstOf.set(key, i);
        if (plan !== 'compress') {
          await this.once(d.digest, () => this.copyStored(src, i, p));
          return { mediaType: OCI_LAYER_FOR[d.mediaType]!, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: d.annotations } : {}) };
        }
        return this.compressed(src, i, p);
      }).catch((err: unknown) => {
        if (!this.stopped) this.cause = err;
        this.stopped = true; // the other layers stop at their next chunk
        throw err;
      }),
    );
    // Every layer settles before the caller aborts the target, so no blob lands in it after the abort.
    const settled = await Promise.allSettled(tasks);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw this.cause ?? failed.reason;
    const layers = settled.map((r) => (r as PromiseFulfilledResult<Descriptor>).value);
    if (plan === 'keep') {
      await this.once(src.config.digest, () => this.target.putBlob(src.config.digest, src.configBytes));
      return this.putManifest(src.manifestBytes!, true);
    }
    const config: Descriptor = { mediaType: MediaType.ociConfig, digest: src.config.digest, size: src.config.size };
    await this.once(config.digest, () => this.target.putBlob(config.digest, src.configBytes));
    return this.putManifest(ociManifest(config, layers), false);
  }

  private checkStopped(): void {
    if (this.stopped) throw new NixregError('stopped: another layer of the copy failed');
  }

  /** Put a small JSON document (manifest or index) as a blob. */
  async putDocument(bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    await this.once(digest, () => this.target.putBlob(digest, bytes));
    return digest;
  }

  /**
   * Stream one generated layer: tar → diffID hash → compressor → blob hash → target, once. On return the layer's
   * `diffID`, `size` and `stored` are set; a diffID or size known beforehand that the bytes do not match is an
   * integrity error (the files changed since they were planned).
   */
  async writeStreamedLayer(layer: StreamedLayer, compression: PushCompression, level?: number): Promise<Descriptor> {
    this.checkStopped();
    const blob = await this.target.beginBlob();
    const diff = new HashingStream();
    const comp = new HashingStream();
    const tail = new PassThrough();
    const done = pipeline([layer.open(), diff, ...compressorStages(compression, level), comp, tail]);
    done.catch(() => {}); // observed below; a failed write destroys `tail`, which rejects `done` too
    try {
      for await (const chunk of tail) await blob.write(chunk as Buffer);
      await done;
    } catch (err) {
      tail.destroy();
      throw asNixreg(err, layer.what);
    }
    const diffID = diff.digest();
    if (layer.size !== undefined && diff.size !== layer.size)
      throw integrityError(`${layer.what} came out ${diff.size} bytes, expected ${layer.size}: its files changed`);
    if (layer.diffID && layer.diffID !== diffID) throw integrityError(`${layer.what}: expected diffID ${layer.diffID}, got ${diffID}`);
    await blob.finish(comp.digest(), comp.size);
    layer.diffID = diffID;
    layer.size = diff.size;
    layer.stored = { mediaType: OCI_LAYER_OF[compression], digest: comp.digest(), size: comp.size };
    return layer.stored;
  }

  /** Put a config blob (bytes verbatim). */
  async putConfig(bytes: Buffer): Promise<Descriptor> {
    const digest = await this.putDocument(bytes);
    return { mediaType: MediaType.ociConfig, digest, size: bytes.length };
  }

  /** Put manifest bytes made elsewhere; the descriptor is index.json's (or an index's) entry for it. */
  async putManifest(bytes: Buffer, kept = false): Promise<LayoutImageResult> {
    const digest = await this.putDocument(bytes);
    return { manifest: { mediaType: MediaType.ociManifest, digest, size: bytes.length }, manifestBytes: bytes, keptManifest: kept };
  }

  /** Run `put` for a blob the first time it is asked for; later askers wait for that one. */
  private once(digest: string, put: () => Promise<void>): Promise<void> {
    let w = this.written.get(digest);
    if (!w) {
      w = put();
      this.written.set(digest, w);
    }
    return w;
  }

  /** The stored blob, byte for byte (the source verifies its digest as it streams). */
  private async copyStored(src: SourceImage, i: number, p: CopyProgress): Promise<void> {
    const d = src.layers[i]!;
    p.layerStart?.(i, d);
    await this.pour(await src.openLayer(i), d.digest, d.size, `${src.description} layer ${i}`, (n) => p.layerBytes?.(i, n));
    p.layerWritten?.(i);
  }

  /** The layer tar, gzip-compressed once; memoised by diffID so a repeated layer is compressed once. */
  private readonly byDiffID = new Map<string, Promise<Descriptor>>();
  private compressed(src: SourceImage, i: number, p: CopyProgress): Promise<Descriptor> {
    const diffID = src.diffIDs[i]!;
    let r = this.byDiffID.get(diffID);
    if (!r) {
      r = this.compressOnce(src, i, p);
      this.byDiffID.set(diffID, r);
    }
    return r;
  }

  private async compressOnce(src: SourceImage, i: number, p: CopyProgress): Promise<Descriptor> {
    p.layerStart?.(i, src.layers[i]!);
    const blob = await this.target.beginBlob();
    const hash = new HashingStream();
    const tail = new PassThrough();
    const done = pipeline([await src.openUncompressedLayer(i), ...compressorStages('gzip'), hash, tail]);
    done.catch(() => {}); // observed below
    try {
      for await (const c of tail) {
        this.checkStopped();
        await blob.write(c as Buffer);
        p.layerBytes?.(i, (c as Buffer).length);
      }
      await done;
    } catch (err) {
      tail.destroy();
      throw asNixreg(err, `${src.description} layer ${i}`);
    }
    const digest = hash.digest();
    await blob.finish(digest, hash.size);
    p.layerWritten?.(i);
    return { mediaType: MediaType.ociLayerGzip, digest, size: hash.size };
  }

  private async pour(s: Readable, digest: string, size: number, what: string, onBytes: (n: number) => void): Promise<void> {
    const blob = await this.target.beginBlob();
    try {
      for await (const c of s) {
        this.checkStopped();
        await blob.write(c as Buffer);
        onBytes((c as Buffer).length);
      }
    } catch (err) {
      s.destroy();
      throw asNixreg(err, what);
    }
    await blob.finish(digest, size);
  }
}

const asNixreg = (err: unknown, what: string) => (err instanceof NixregError ? err : new NixregError(`${what}: ${(err as Error).message}`));

/** An OCI image manifest as c/image marshals one (Go field order: schemaVersion, mediaType, config, layers). */
function ociManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: descriptor(config), layers: layers.map(descriptor) }),
    'utf8',
  );
}

/** A descriptor's fields in the OCI Go struct's order (mediaType, digest, size, urls, annotations, platform). */
export function descriptor(d: Descriptor): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.urls ? { urls: d.urls } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
    ...(d.platform ? { platform: d.platform } : {}),
  };
}
