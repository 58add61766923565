import { checkLevel, type PushCompression } from '../compression/compress.js';
import { usageError } from '../errors.js';
import { ArchiveTee } from './archive-tee.js';
import { sha256Digest } from '../digest/sha256.js';
import { loadStreamConf, type StreamConf } from '../nix/stream/index.js';
import { loadArchiveImage } from './archive-source.js';
import type { BlobPushContext, LayerPushResult } from './blob-upload.js';
import { pushLayers, pushLayersWithArchive } from './layer-scheduler.js';
import { loadConfImage, type PushImage, type PushLayerKind } from './conf-source.js';
import { openDestination, putTags, type Destination, type RegistryAccess } from './destination.js';
import { buildPushManifest, configMediaType, layerMediaType, manifestMediaType, type PushFormat } from './image-manifest.js';
import { PushCache } from './push-cache.js';
import { silentProgress, type PushProgress } from './progress.js';

export interface PushConfOptions extends RegistryAccess {
  confFile: string;
  destination: string;
  additionalTags?: string[];
  storeRoot?: string;
  format?: PushFormat;
  compression?: PushCompression;
  /** gzip 1–9 (default 6), zstd 1–19 (default 3). */
  compressionLevel?: number;
  jobs?: number;
  /** Learn unknown layers' digests by a compress-only pass, HEAD, and upload only what is missing. */
  precomputeDigests?: boolean;
  /** Repositories on the destination registry to try cross-repo mounts from. */
  mountFrom?: string[];
  /** undefined = default location; null = no cache. */
  cache?: PushCache | null;
  progress?: PushProgress;
  /** Also write the docker-archive `nixreg stream` would write (each layer generated once for both). */
  output?: string;
  /** `-t NAME:TAG` for the archive's RepoTags (default: the conf's repo_tag). */
  repoTag?: string;
  /** Overwrite an existing --output file. */
  force?: boolean;
  /** Fixed "now" for a conf whose `created` is "now". */
  now?: Date;
}

export interface PushedLayer extends LayerPushResult {
  kind: PushLayerKind;
  mediaType: string;
}

export interface PushResult {
  /** `registry/repository` */
  name: string;
  tags: string[];
  digest: string;
  mediaType: string;
  config: { digest: string; size: number; mediaType: string };
  layers: PushedLayer[];
  stats: { exists: number; mounted: number; uploaded: number; bytesUploaded: number; layersGenerated: number };
}

/** `nixreg push conf.json docker://…`: every layer of a streamLayeredImage conf, then config, manifest, tags. */
export async function pushConf(opts: PushConfOptions): Promise<PushResult> {
  checkOptions(opts);
  const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
  try {
    return await pushConfInto(dest, opts, { tag: true });
  } finally {
    await dest.client.close().catch(() => {});
  }
}

/** `nixreg push image.tar docker://…`: a docker-archive (stream output, docker save, buildLayeredImage .tar.gz). */
export async function pushArchive(opts: Omit<PushConfOptions, 'confFile' | 'output' | 'repoTag' | 'storeRoot'> & { archive: string }): Promise<PushResult> {
  checkOptions(opts);
  const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
  try {
    return await pushConfInto(dest, { ...opts, confFile: opts.archive }, { tag: true, archive: opts.archive });
  } finally {
    await dest.client.close().catch(() => {});
  }
}

export function checkOptions(opts: Pick<PushConfOptions, 'format' | 'compression' | 'compressionLevel'>): void {
  layerMediaType(opts.format ?? 'docker', opts.compression ?? 'gzip'); // validates the combination before any work
  if (opts.compressionLevel !== undefined) {
    const bad = checkLevel(opts.compression ?? 'gzip', opts.compressionLevel);
    if (bad) throw usageError(bad);
  }
}

/**
 * Push one conf's image into `dest`. `tag: true` PUTs the manifest under the destination's tags; otherwise by
 * digest only (an image of a multi-platform index). `architecture`: the platform it must be built for.
 */
export async function pushConfInto(
  dest: Destination,
  opts: PushConfOptions,
  how: { tag: boolean; architecture?: string; archive?: string },
): Promise<PushResult & { manifestSize: number }> {
  const format = opts.format ?? 'docker';
  const compression = opts.compression ?? 'gzip';
  const layerType = layerMediaType(format, compression);
  let conf: StreamConf | undefined;
  let image: PushImage;
  if (how.archive) {
    if (opts.output) throw usageError('--output applies to a conf.json source; the source is already an archive');
    image = await loadArchiveImage(how.archive);
  } else {
    conf = await loadStreamConf(opts.confFile, opts.now);
    if (how.architecture && conf.architecture !== how.architecture)
      throw usageError(`${opts.confFile} builds an image for architecture ${conf.architecture}, not ${how.architecture}`);
    if (opts.output && !(opts.repoTag || conf.repoTag)) throw usageError('conf has no repo_tag; pass -t NAME:TAG for --output');
    image = await loadConfImage(conf, opts.storeRoot ? { storeRoot: opts.storeRoot } : {});
  }
  let archive: ArchiveTee | undefined;
  try {
    if (opts.output && conf) archive = await ArchiveTee.open(opts.output, conf, opts.force ?? false);
    const cache = opts.cache === null ? undefined : (opts.cache ?? new PushCache());
    const progress = opts.progress ?? silentProgress;
    const ctx: BlobPushContext = {
      client: dest.client,
      repoName: dest.repoName,
      registry: dest.ref.registry,
      repository: dest.ref.repository,
      compression,
      ...(opts.compressionLevel !== undefined ? { level: opts.compressionLevel } : {}),
      ...(cache ? { cache } : {}),
      mountFrom: opts.mountFrom ?? [],
      ...(opts.precomputeDigests ? { precompute: true } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    };
    const results = archive
      ? await pushLayersWithArchive(image.layers, ctx, progress, opts.jobs ?? 4, archive)
      : await pushLayers(image.layers, ctx, progress, opts.jobs ?? 4);
    const config = image.config(results.map((r) => r.diffID));
    await archive?.complete(image.layers, results.map((r) => r.diffID), config, opts.repoTag || conf!.repoTag!);
    const configDesc = { digest: sha256Digest(config), size: config.length };
    await dest.client.pushBlob(configDesc.digest, config, config.length);
    const manifest = buildPushManifest(format, compression, configDesc, results.map((r) => ({ digest: r.digest, size: r.blobSize })));
    const digest = how.tag ? await putTags(dest, manifest, manifestMediaType(format)) : await dest.client.putManifest(sha256Digest(manifest), manifest, manifestMediaType(format));
    await archive?.commit();
    archive = undefined;
    progress.done();
    return {
      name: dest.repoName,
      tags: how.tag ? dest.tags : [],
      digest,
      manifestSize: manifest.length,
      mediaType: manifestMediaType(format),
      config: { ...configDesc, mediaType: configMediaType(format) },
      layers: results.map((r, i) => ({ ...r, kind: image.layers[i]!.kind, mediaType: layerType })),
      stats: {
        exists: results.filter((r) => r.status === 'exists').length,
        mounted: results.filter((r) => r.status === 'mounted').length,
        uploaded: results.filter((r) => r.status === 'uploaded').length,
        bytesUploaded: results.reduce((n, r) => n + (r.status === 'uploaded' ? r.blobSize : 0), 0),
        layersGenerated: image.generated,
      },
    };
  } finally {
    await archive?.abort();
    await image.close().catch(() => {});
  }
}
