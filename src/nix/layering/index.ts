import { usageError } from '../../errors.js';
import { autoLayer } from './auto-layer.js';
import type { GraphNode } from './graph.js';
import { popularityContest, popularityLayers } from './popularity.js';

export { autoLayer, comparePathKey } from './auto-layer.js';
export { popularityContest, popularityLayers, packageName } from './popularity.js';
export { parseGraph, readGraphFile, readExcludeFile, type GraphNode } from './graph.js';

export type LayeringAlgorithm = 'auto' | 'popularity';

export interface LayeringOptions {
  /** streamLayeredImage's maxLayers: the whole image, base-image layers and the customisation layer included. */
  maxLayers: number;
  /** number of layers in fromImage's manifest. */
  fromImageLayers?: number;
  algorithm?: LayeringAlgorithm;
  /** image-level paths (baseJson, customisation layer, ...) that must not appear in store_layers. */
  exclude?: Iterable<string>;
}

/**
 * store_layers exactly as nixpkgs computes them. Both algorithms get the same budget
 * `availableLayers = maxLayers − 1 (customisation layer) − fromImageLayers`, as auto-layer.nix and the old conf did.
 */
export function computeStoreLayers(graph: GraphNode[], opts: LayeringOptions): string[][] {
  const available = availableLayers(opts.maxLayers, opts.fromImageLayers ?? 0);
  const exclude = [...(opts.exclude ?? [])];
  if ((opts.algorithm ?? 'auto') === 'popularity') return popularityLayers(popularityContest(graph).order, exclude, available);
  return autoLayer(graph, exclude, available).layers;
}

export function availableLayers(maxLayers: number, fromImageLayers: number): number {
  if (!Number.isInteger(maxLayers) || maxLayers < 2)
    throw usageError(`--max-layers must be an integer of at least 2 (1 is the customisation layer), got ${maxLayers}`);
  if (!Number.isInteger(fromImageLayers) || fromImageLayers < 0) throw usageError(`--from-image-layers must be a non-negative integer, got ${fromImageLayers}`);
  const used = 1 + fromImageLayers;
  if (used >= maxLayers)
    throw usageError(
      `max layers ${maxLayers} leaves no store layer: the base image has ${fromImageLayers} and the customisation layer takes 1; at least 1 layer is required to store contents`,
    );
  return maxLayers - used;
}
