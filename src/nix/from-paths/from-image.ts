import { ArchiveMembers } from '../../source/archive-members.js';
import { keepArchiveJson, readArchiveManifest } from '../../source/docker-archive.js';
import { usageError } from '../../errors.js';

/**
 * Number of layers in a fromImage archive (docker-archive or a streamLayeredImage output; plain, gzip or zstd),
 * read from its `manifest.json` the way auto-layer.nix counts `usedLayers`. The archive is read by the same reader
 * as every docker-archive source.
 */
export async function countBaseLayers(archive: string): Promise<number> {
  const members = await ArchiveMembers.open(archive, `--from-image ${archive}`, keepArchiveJson);
  try {
    if (!members.resolve('manifest.json')) throw usageError(`--from-image ${archive} has no manifest.json (not a docker-archive)`);
    const entries = await readArchiveManifest(members);
    if (entries.length === 0) throw usageError(`--from-image ${archive}: bad manifest.json (no image in it)`);
    return entries[0]!.Layers.length;
  } finally {
    await members.close();
  }
}
