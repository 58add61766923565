import { sha256Digest } from '../digest/sha256.js';
import { MediaType } from '../manifest/media-types.js';
import type { Descriptor } from '../manifest/manifest.js';
import { buildImageConfig, loadStreamConf, prepareImage, resolveLayerDigests, type LayerCache } from '../nix/stream/index.js';
import { generatedManifest } from './docker-archive.js';
import { assembleSource } from './image.js';
import type { SourceImage } from './types.js';

const GENERATED_LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export interface ConfOpenOptions {
  storeRoot?: string;
  /** Layer digest cache (as `nixreg stream` uses); without one, every store layer is hashed once on open. */
  cache?: LayerCache;
  /** `-t NAME:TAG` over the conf's repo_tag. */
  repoTag?: string;
}

/**
 * `conf:PATH`: the image `nixreg stream PATH` would write, without writing it. Layers are planned on open and
 * their diffIDs taken from the cache or one hashing pass each (the config needs them); the config bytes are
 * exactly those of the stream output, and the manifest is the one c/image generates when it reads that
 * output (so `inspect conf:X` and `inspect docker-archive:$(nixreg stream X)` agree).
 */
export async function openConf(path: string, opts: ConfOpenOptions): Promise<SourceImage> {
  const conf = await loadStreamConf(path);
  const img = await prepareImage(conf, { storeRoot: opts.storeRoot, repoTag: opts.repoTag, cache: opts.cache });
  const close = async () => {
    await img.base?.archive.close();
  };
  try {
    const diffIDs = await resolveLayerDigests(img, opts.cache);
    const configBytes = buildImageConfig(img, diffIDs);
    const config: Descriptor = { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: sha256Digest(configBytes) };
    const layers: Descriptor[] = img.layers.map((l, i) => ({ mediaType: GENERATED_LAYER_TYPE, digest: diffIDs[i]!, size: l.size }));
    const described = generatedManifest(config, layers);
    return assembleSource({
      kind: 'conf',
      description: `conf ${path}`,
      index: null,
      manifestDigest: sha256Digest(described),
      manifestMediaType: MediaType.dockerManifest,
      manifestBytes: null,
      describedManifest: described,
      config,
      configBytes,
      layers,
      repoTags: [img.repoTag],
      openRawLayer: async (i) => img.layers[i]!.open(),
      openTar: async (i) => img.layers[i]!.open(),
      close,
    });
  } catch (err) {
    await close();
    throw err;
  }
}
