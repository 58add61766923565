import pLimit from 'p-limit';
import type { PushCompression } from '../../compression/compress.js';
import { integrityError } from '../../errors.js';
import { MediaType } from '../../manifest/media-types.js';
import { openSource, type OpenSourceOptions, type SourceImage } from '../../source/index.js';
import { countedStream, type BlobStatus } from './blob-upload.js';
import type { PushImage, PushLayer } from './conf-source.js';
import { openDestination, putTags } from './destination.js';
import type { PushFormat, PushFormatChoice } from './image-manifest.js';
import { checkOptions, pushConfInto, type PushConfOptions, type PushResult } from './push-conf.js';
import { silentProgress } from './progress.js';
import { storedBlobContext, writeStoredBlob } from './write.js';

/**
 * An image read through `openSource` — `docker-archive:` (plain, gzip or zstd), `oci:DIR[:REF]`,
 * `oci-archive:FILE[:REF]` — pushed to a registry. Two ways, chosen per image:
 *
 * - as stored: the source has a manifest (OCI layout/archive) whose format and layer compression are what the
 *   push asks for (or the push asks for nothing in particular). Blobs go up byte for byte, the manifest is PUT
 *   verbatim, and so the manifest digest stays the source's — what `skopeo copy oci:… docker://…` does.
 * - converted: otherwise (and for a docker-archive, whose layers are plain tars) each layer's uncompressed tar
 *   is compressed on its way up by the conf push's own pipeline (one pass, push cache keyed by diffID, chunked
 *   fallback, retries); the config goes verbatim, so the image ID stays the source's.
 */
export interface PushSourceOptions extends Omit<PushConfOptions, 'confFile' | 'conf' | 'output' | 'repoTag' | 'storeRoot' | 'format' | 'compression'> {
  source: string;
  sourceOptions: OpenSourceOptions;
  /** undefined or auto: keep the source's when it has a manifest; else docker (auto: OCI where Docker types are refused) */
  format?: PushFormatChoice;
  /** undefined: keep the source's when it has a manifest, else gzip */
  compression?: PushCompression;
}

export async function pushSource(opts: PushSourceOptions): Promise<PushResult> {
  const src = await openSource(opts.source, opts.sourceOptions);
  try {
    const stored = storedShape(src);
    // A compressed archive can only be read front to back: parallel layer reads would each decompress it from
    // the start, so such sources go one layer at a time.
    if (src.sequentialReads) opts = { ...opts, jobs: 1 };
    const wanted = opts.format === 'auto' ? undefined : opts.format;
    const keep = stored && (wanted ?? stored.format) === stored.format && (opts.compression ?? stored.compression) === stored.compression;
    if (keep) return await pushAsStored(src, opts);
    const format = opts.format ?? 'docker';
    const compression = opts.compression ?? 'gzip';
    checkOptions({ ...opts, format, compression });
    const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
    try {
      return await pushConfInto(dest, { ...opts, format, compression, confFile: src.description }, { tag: true, image: sourcePushImage(src) });
    } finally {
      await dest.client.close().catch(() => {});
    }
  } finally {
    await src.close().catch(() => {});
  }
}

const LAYER_COMPRESSION: Record<string, PushCompression> = {
  [MediaType.ociLayer]: 'none',
  [MediaType.ociLayerGzip]: 'gzip',
  [MediaType.ociLayerZstd]: 'zstd',
  [MediaType.dockerLayerGzip]: 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
};

/** Format and (uniform) layer compression of a source's own manifest; undefined when it has none to keep. */
function storedShape(src: SourceImage): { format: PushFormat; compression: PushCompression } | undefined {
  if (!src.manifestBytes) return undefined;
  const format = src.manifestMediaType === MediaType.ociManifest ? 'oci' : src.manifestMediaType === MediaType.dockerManifest ? 'docker' : undefined;
  const kinds = src.layers.map((l) => LAYER_COMPRESSION[l.mediaType]);
  if (!format || kinds.some((k) => k === undefined) || new Set(kinds).size > 1) return undefined; // foreign/unknown/mixed layers: convert
  return { format, compression: kinds[0] ?? 'gzip' };
}

/** The source's layers as a PushImage: uncompressed tars with known diffIDs, config verbatim. */
function sourcePushImage(src: SourceImage): PushImage {
  let generated = 0;
  const layers: PushLayer[] = src.diffIDs.map((diffID, index) => ({
    index,
    kind: 'base',
    paths: [src.layers[index]!.digest],
    diffID,
    // docker-archive layers are the tars themselves: their size is known (Content-Length for --compression none)
    ...(src.kind === 'docker-archive' ? { size: src.layers[index]!.size } : {}),
    open: async () => {
      generated++;
      return src.openUncompressedLayer(index);
    },
  }));
  return {
    layers,
    config: (got) => {
      if (got.some((d, i) => d !== src.diffIDs[i])) throw integrityError(`${src.description}: its layers do not match its config's diff_ids`);
      return src.configBytes;
    },
    get generated() {
      return generated;
    },
    close: async () => {},
  };
}

/** Blobs byte for byte through the writer (HEAD, mount from --mount-from, else one PATCH with Content-Length, retried), manifest verbatim. */
async function pushAsStored(src: SourceImage, opts: PushSourceOptions): Promise<PushResult> {
  const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
  const progress = opts.progress ?? silentProgress;
  const limit = pLimit(opts.jobs ?? 4);
  const counts = { exists: 0, mounted: 0, uploaded: 0, bytesUploaded: 0 };
  const blobs = [src.config, ...src.layers]; // foreign layers never get here: storedShape refuses their media types
  progress.begin(blobs.length);
  const ctx = storedBlobContext(dest, opts, { mountFrom: opts.mountFrom ?? [] });
  const copyBlob = async (i: number): Promise<BlobStatus> => {
    const d = blobs[i]!;
    progress.layerStart(i, d.digest.slice(7, 19), { config: i === 0, size: d.size });
    const open = async () => (i === 0 ? src.configBytes : countedStream(await src.openLayer(i - 1), (n) => progress.layerBytes(i, n)));
    const { status, from } = await writeStoredBlob(ctx, { digest: d.digest, size: d.size, open }, { uploading: () => progress.layerUploading(i) });
    if (status === 'uploaded') counts.bytesUploaded += d.size;
    counts[status]++;
    progress.layerDone(i, status, d.digest, d.size, from);
    return status;
  };
  try {
    const statuses = await Promise.all(blobs.map((_, i) => limit(() => copyBlob(i))));
    const digest = await putTags(dest, src.manifestBytes!, src.manifestMediaType);
    progress.done();
    return {
      name: dest.repoName,
      tags: dest.tags,
      digest,
      mediaType: src.manifestMediaType,
      config: { digest: src.config.digest, size: src.config.size, mediaType: src.config.mediaType },
      layers: src.layers.map((l, i) => ({
        kind: 'base',
        mediaType: l.mediaType,
        digest: l.digest,
        blobSize: l.size,
        diffID: src.diffIDs[i] ?? '',
        size: 0,
        status: statuses[i + 1] ?? 'exists',
      })),
      stats: { ...counts, layersGenerated: 0 },
    };
  } finally {
    await dest.client.close().catch(() => {});
  }
}
