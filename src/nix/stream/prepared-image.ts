import type { Readable } from 'node:stream';
import type { StreamConf } from './conf.js';
import type { BaseImage } from './base-image.js';
import type { StoreLayerPlan } from './store-layer.js';

export type LayerKind = 'base' | 'store' | 'customisation';

/** One layer of the image, in manifest order. */
export interface ImageLayer {
  kind: LayerKind;
  /** What the history comment lists: store paths, the customisation layer path, or the base member name. */
  paths: string[];
  /** Exact uncompressed size. */
  size: number;
  /** Known before generation for base and customisation layers (and store layers after a digest pass). */
  diffID?: string;
  /** The uncompressed layer bytes (a fresh stream per call). */
  open(): Readable;
  /** Internal: how the layer is produced. */
  readonly source: { plan: StoreLayerPlan } | { base: BaseImage; index: number } | { file: string };
}

export interface PreparedImage {
  conf: StreamConf;
  base?: BaseImage;
  layers: ImageLayer[];
  repoTag: string;
}
