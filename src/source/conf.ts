import type { Descriptor } from '../manifest/manifest.js';
import { buildImageConfig, loadStreamConf, prepareImage, resolveLayerDigests, type LayerCache } from '../nix/stream/index.js';
import { assembleSource, GENERATED_LAYER_TYPE, withGeneratedManifest } from './image.js';
import type { SourceImage } from './types.js';

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
    const layers: Descriptor[] = img.layers.map((l, i) => ({ mediaType: GENERATED_LAYER_TYPE, digest: diffIDs[i]!, size: l.size }));
    return assembleSource({
      kind: 'conf',
      description: `conf ${path}`,
      ...withGeneratedManifest(configBytes, layers),
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
