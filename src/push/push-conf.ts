import pLimit from 'p-limit';
import type { PushCompression } from '../compression/compress.js';
import { sha256Digest } from '../digest/sha256.js';
import { loadStreamConf } from '../nix/stream/conf.js';
import { tryKnownLayer, uploadLayer, type BlobPushContext, type LayerPushResult } from './blob-upload.js';
import { loadConfImage, type PushLayerKind } from './conf-source.js';
import { openDestination, putTags, type RegistryAccess } from './destination.js';
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
  jobs?: number;
  /** Repositories on the destination registry to try cross-repo mounts from. */
  mountFrom?: string[];
  /** undefined = default location; null = no cache. */
  cache?: PushCache | null;
  progress?: PushProgress;
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
  const format = opts.format ?? 'docker';
  const compression = opts.compression ?? 'gzip';
  const layerType = layerMediaType(format, compression); // validates the combination before any work
  const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
  const conf = await loadStreamConf(opts.confFile, opts.now);
  const image = await loadConfImage(conf, opts.storeRoot ? { storeRoot: opts.storeRoot } : {});
  try {
    const cache = opts.cache === null ? undefined : (opts.cache ?? new PushCache());
    const progress = opts.progress ?? silentProgress;
    const ctx: BlobPushContext = {
      client: dest.client,
      repoName: dest.repoName,
      registry: dest.ref.registry,
      repository: dest.ref.repository,
      compression,
      ...(cache ? { cache } : {}),
      mountFrom: opts.mountFrom ?? [],
      ...(opts.log ? { log: opts.log } : {}),
    };
    progress.begin(image.layers.length);
    const results = await forEachLayer(image.layers, opts.jobs ?? 4, async (layer) => {
      progress.layerStart(layer.index, layer.paths.length === 1 ? shortPath(layer.paths[0]!) : `${layer.paths.length} paths`);
      return tryKnownLayer(ctx, layer);
    }, async (layer) => {
      progress.layerUploading(layer.index);
      return uploadLayer({ ...ctx, onBytes: (n) => progress.layerBytes(layer.index, n) }, layer);
    }, (layer, r) => progress.layerDone(layer.index, r.status, r.digest, r.blobSize, r.from));
    const config = image.config(results.map((r) => r.diffID));
    const configDesc = { digest: sha256Digest(config), size: config.length };
    await dest.client.pushBlob(configDesc.digest, config, config.length);
    const manifest = buildPushManifest(format, compression, configDesc, results.map((r) => ({ digest: r.digest, size: r.blobSize })));
    const digest = await putTags(dest, manifest, manifestMediaType(format));
    progress.done();
    return {
      name: dest.repoName,
      tags: dest.tags,
      digest,
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
    await image.close().catch(() => {});
    await dest.client.close().catch(() => {});
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
