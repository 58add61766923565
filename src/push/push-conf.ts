import pLimit from 'p-limit';
import { checkLevel, type PushCompression } from '../compression/compress.js';
import { integrityError, usageError } from '../errors.js';
import { ArchiveTee, type LayerTee } from './archive-tee.js';
import { sha256Digest } from '../digest/sha256.js';
import { loadStreamConf } from '../nix/stream/conf.js';
import { tryKnownLayer, uploadLayer, type BlobPushContext, type LayerPushResult } from './blob-upload.js';
import { loadConfImage, type PushLayer, type PushLayerKind } from './conf-source.js';
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
  how: { tag: boolean; architecture?: string },
): Promise<PushResult & { manifestSize: number }> {
  const format = opts.format ?? 'docker';
  const compression = opts.compression ?? 'gzip';
  const layerType = layerMediaType(format, compression);
  const conf = await loadStreamConf(opts.confFile, opts.now);
  if (how.architecture && conf.architecture !== how.architecture)
    throw usageError(`${opts.confFile} builds an image for architecture ${conf.architecture}, not ${how.architecture}`);
  if (opts.output && !(opts.repoTag || conf.repoTag)) throw usageError('conf has no repo_tag; pass -t NAME:TAG for --output');
  const image = await loadConfImage(conf, opts.storeRoot ? { storeRoot: opts.storeRoot } : {});
  let archive: ArchiveTee | undefined;
  try {
    if (opts.output) archive = await ArchiveTee.open(opts.output, conf, opts.force ?? false);
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
      ...(opts.log ? { log: opts.log } : {}),
    };
    progress.begin(image.layers.length);
    const label = (layer: PushLayer) => (layer.paths.length === 1 ? shortPath(layer.paths[0]!) : `${layer.paths.length} paths`);
    const upload = (layer: PushLayer, tee?: () => Promise<LayerTee>) => {
      progress.layerUploading(layer.index);
      return uploadLayer({ ...ctx, onBytes: (n) => progress.layerBytes(layer.index, n), ...(tee ? { tee } : {}) }, layer);
    };
    const done = (layer: PushLayer, r: LayerPushResult) => progress.layerDone(layer.index, r.status, r.digest, r.blobSize, r.from);
    let results: LayerPushResult[];
    if (archive) {
      // The archive is written in layer order, so layers are generated one after the other (HEADs still in
      // parallel); each is generated once, into the archive and — when the registry lacks it — the upload.
      const a = archive;
      const limit = pLimit(Math.max(16, (opts.jobs ?? 4) * 4));
      const known = await Promise.all(image.layers.map((l) => limit(() => (progress.layerStart(l.index, label(l)), tryKnownLayer(ctx, l)))));
      results = [];
      for (const layer of image.layers) {
        let r = known[layer.index];
        if (r) {
          const diffID = await a.copyLayer(layer);
          if (diffID !== r.diffID) throw integrityError(`layer ${r.diffID} (from the push cache) came out as ${diffID}: its files changed`);
        } else r = await upload(layer, () => a.beginLayer(layer));
        done(layer, r);
        results.push(r);
      }
    } else {
      results = await forEachLayer(image.layers, opts.jobs ?? 4, async (layer) => {
        progress.layerStart(layer.index, label(layer));
        return tryKnownLayer(ctx, layer);
      }, (layer) => upload(layer), done);
    }
    const config = image.config(results.map((r) => r.diffID));
    await archive?.complete(image.layers, results.map((r) => r.diffID), config, opts.repoTag || conf.repoTag!);
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

/**
 * Run the cheap step (cache lookup + HEAD/mount) for all layers with a wide limit — 100+ HEADs should not queue
 * behind uploads — and the expensive step (generate + upload) with `jobs`. On the first failure nothing new
 * starts, running work is awaited (no request is left dangling), and that first error is thrown.
 */
async function forEachLayer<L, R>(
  layers: readonly L[],
  jobs: number,
  cheap: (l: L) => Promise<R | undefined>,
  expensive: (l: L) => Promise<R>,
  done: (l: L, r: R) => void,
): Promise<R[]> {
  const headLimit = pLimit(Math.max(16, jobs * 4));
  const uploadLimit = pLimit(jobs);
  const out: R[] = new Array(layers.length);
  let failure: { err: unknown } | undefined;
  const guard = <T>(f: () => Promise<T>) => async (): Promise<T | undefined> => (failure ? undefined : f());
  await Promise.all(
    layers.map(async (l, i) => {
      try {
        let r = await headLimit(guard(() => cheap(l)));
        if (r === undefined && !failure) r = await uploadLimit(guard(() => expensive(l)));
        if (r !== undefined) {
          out[i] = r;
          done(l, r);
        }
      } catch (err) {
        failure ??= { err };
      }
    }),
  );
  if (failure) throw failure.err;
  return out;
}

function shortPath(p: string): string {
  const base = p.split('/').pop() ?? p;
  return /^[0-9a-z]{32}-/.test(base) ? base.slice(33) : base;
}
