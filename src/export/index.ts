import type { Writable } from 'node:stream';
import type { SourceImage } from '../source/types.js';
import { openAtomic } from '../util/atomic-file.js';
import { asWriteError } from '../util/write-error.js';
import { flattenLayers, type FlattenStats } from './flatten.js';
import { ForwardLayers } from './forward-layers.js';

export { flattenLayers, type FlattenInput, type FlattenStats } from './flatten.js';

/** Flatten `src` (any source: registry, archive, OCI, conf) into one root-filesystem tar on `out`. */
async function exportToStream(src: SourceImage, out: Writable): Promise<FlattenStats> {
  const forward = src.sequentialReads ? new ForwardLayers((i) => src.openUncompressedLayer(i)) : undefined;
  try {
    return await flattenLayers(
      {
        layerCount: src.diffIDs.length,
        openLayer: (i) => (forward ? forward.layer(i) : src.openUncompressedLayer(i)),
        layerLabel: (i) => `${i + 1}/${src.diffIDs.length} (${src.diffIDs[i]})`,
      },
      out,
    );
  } finally {
    await forward?.close();
  }
}

/**
 * `nixreg export`: to a file (atomic: complete or absent, also when a hostile layer is refused halfway) or to
 * stdout with `-` (a refused layer then leaves a truncated stream behind and a non-zero exit status).
 */
export async function exportImage(src: SourceImage, output: string, opts: { force?: boolean } = {}): Promise<FlattenStats> {
  if (output === '-') return exportToStream(src, process.stdout);
  const file = await openAtomic(output, { force: opts.force });
  try {
    const stats = await exportToStream(src, file.stream);
    await file.commit();
    return stats;
  } catch (err) {
    await file.abort();
    throw asWriteError(output, err);
  }
}
