import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { NixregError, usageError } from '../../errors.js';
import { describeCustomisationLayer } from './customisation.js';
import type { LayerCache } from '../layer-cache.js';
import type { StreamConf } from './conf.js';
import { loadBaseImage, type BaseImage } from './base-image.js';
import { planStoreLayer, storeLayerChunks, storeLayerDigest, type LayerPassStats } from './store-layer.js';

/**
 * The stream_layered_image.py image, planned: `prepareImage` does every check (conf, store paths, customisation
 * layer, from_image) and the metadata walk before any byte is written; the sinks (sink/nixpkgs-archive,
 * sink/oci-layout, the registry writer) then generate each layer once.
 */

export interface CustomisationOwner {
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mode: number;
}

/**
 * The script copies the customisation layer's outer header from `gettarinfo(<layer.tar>)`, i.e. from whoever
 * owns the store file as seen by the machine running it. The reference outputs (and a normal multi-user store)
 * show root:root 0444; we fix that instead of depending on this machine's passwd.
 */
export const DEFAULT_CUSTOMISATION_OWNER: CustomisationOwner = { uid: 0, gid: 0, uname: 'root', gname: 'root', mode: 0o444 };

export interface StreamImageOptions {
  storeRoot?: string;
  /** `-t NAME:TAG`: overrides conf.repo_tag in manifest.json. */
  repoTag?: string;
  /** Digest cache; undefined = no cache. */
  cache?: LayerCache;
  /** Progress lines exactly as the script prints them on stderr (without newline). */
  log?: (line: string) => void;
  customisationOwner?: CustomisationOwner;
}

export type { LayerKind, ImageLayer, PreparedImage } from './prepared-image.js';
import type { ImageLayer, PreparedImage } from './prepared-image.js';

export async function prepareImage(conf: StreamConf, opts: StreamImageOptions = {}): Promise<PreparedImage> {
  const repoTag = opts.repoTag || conf.repoTag;
  if (!repoTag) throw usageError('conf has no repo_tag; pass -t NAME:TAG');
  const layers: ImageLayer[] = [];
  let base: BaseImage | undefined;
  if (conf.fromImage !== null) {
    base = await loadBaseImage(conf.fromImage, opts.storeRoot);
    const b = base;
    b.layers.forEach((l, index) => {
      layers.push({
        kind: 'base',
        paths: [l.member.name],
        size: l.member.size,
        diffID: `sha256:${l.diffHex}`,
        open: () => Readable.from(b.archive.openMemberData(l.member), { objectMode: false }),
        source: { base: b, index },
      });
    });
  }
  const owner = { mtime: conf.mtime, uid: conf.uid, gid: conf.gid, uname: conf.uname, gname: conf.gname, storeRoot: opts.storeRoot };
  for (const paths of conf.storeLayers) {
    const plan = await planStoreLayer(paths, owner);
    layers.push({
      kind: 'store',
      paths: [...paths],
      size: plan.size,
      open: () => Readable.from(storeLayerChunks(plan), { objectMode: false }),
      source: { plan },
    });
  }
  const cust = conf.customisationLayer;
  const { file: layerTar, diffID: custDiffID, size: custSize } = await describeCustomisationLayer(cust, opts.storeRoot);
  layers.push({
    kind: 'customisation',
    paths: [cust],
    size: custSize,
    diffID: custDiffID,
    open: () => Readable.from(fileChunks(layerTar, custSize), { objectMode: false }),
    source: { file: layerTar },
  });
  return { conf, base, layers, repoTag };
}

/** Fill in the diffID of every store layer (cache or one hashing pass each): for callers that need all digests first. */
export async function resolveLayerDigests(img: PreparedImage, cache?: LayerCache, stats?: LayerPassStats): Promise<string[]> {
  for (const l of img.layers) {
    if (!l.diffID && 'plan' in l.source) l.diffID = (await storeLayerDigest(l.source.plan, cache, stats)).diffID;
  }
  return img.layers.map((l) => l.diffID!);
}

async function* fileChunks(path: string, size: number): AsyncGenerator<Buffer> {
  let got = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    got += (chunk as Buffer).length;
    if (got > size) break;
    yield chunk as Buffer;
  }
  if (got !== size) throw new NixregError(`${path} changed size while being copied (expected ${size} bytes, read ${got})`);
}
