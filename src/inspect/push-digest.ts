import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressorStages, type PushCompression } from '../compression/compress.js';
import { HashingStream, sha256Digest } from '../digest/sha256.js';
import { usageError } from '../errors.js';
import { buildPushManifest, layerMediaType, type PushFormat } from '../sink/registry/image-manifest.js';
import type { SourceImage } from '../source/types.js';

/**
 * The manifest digest `nixreg push conf.json` (and `nixreg stream --format oci` with the same compression)
 * gives a conf's image: each layer tar is compressed deterministically once, streamed into a hash and
 * dropped, so memory stays flat; nothing is written.
 */
export async function pushManifestDigest(src: SourceImage, format: PushFormat = 'docker', compression: PushCompression = 'gzip'): Promise<string> {
  if (src.kind !== 'conf') throw usageError('--push-digest applies to a conf source (the image nixreg push builds from it)');
  layerMediaType(format, compression); // refuses zstd for Docker schema2 before any work
  const layers: Array<{ digest: string; size: number }> = [];
  for (let i = 0; i < src.diffIDs.length; i++) {
    const hash = new HashingStream();
    const drain = new Writable({ write: (_chunk, _enc, cb) => cb() });
    await pipeline([await src.openUncompressedLayer(i), ...compressorStages(compression), hash, drain]);
    layers.push({ digest: hash.digest(), size: hash.size });
  }
  const config = { digest: sha256Digest(src.configBytes), size: src.configBytes.length };
  return sha256Digest(buildPushManifest(format, compression, config, layers));
}
