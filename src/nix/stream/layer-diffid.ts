import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { NixregError, describeSystemError } from '../../errors.js';
import { releaseLayerChunk } from './store-layer.js';

export interface LayerDiffID {
  diffID: string;
  /** Uncompressed tar size. */
  size: number;
}

/**
 * A layer's diffID (sha256 of its uncompressed tar) and size by one pass over its bytes, without compressing
 * them: what a push needs to ask the registry's previous image whether it already holds the layer. Consumed in
 * flowing mode so each chunk is hashed as produced (never concatenated by a read()) and given back to the store
 * layer generator afterwards; memory stays at the generator's few chunks whatever the layer size.
 */
export function layerDiffID(layer: Readable, what = 'layer'): Promise<LayerDiffID> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let size = 0;
    layer.on('data', (chunk: Buffer) => {
      h.update(chunk);
      size += chunk.length;
      releaseLayerChunk(chunk); // hashed and dropped: nothing else holds it
    });
    layer.once('error', (err) =>
      reject(err instanceof NixregError ? err : new NixregError(`reading ${what}: ${describeSystemError(err)}`, undefined, { cause: err })),
    );
    layer.once('end', () => resolve({ diffID: `sha256:${h.digest('hex')}`, size }));
  });
}
