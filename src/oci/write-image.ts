import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressorStages, type PushCompression } from '../compression/compress.js';
import { HashingStream, sha256Digest } from '../digest/sha256.js';
import { NixregError, integrityError } from '../errors.js';
import type { LayerCache } from '../nix/layer-cache.js';
import { buildImageConfig } from '../nix/stream/image-json.js';
import type { PreparedImage } from '../nix/stream/image.js';
import { storeLayerCacheKey } from '../nix/stream/store-layer.js';
import { buildPushManifest } from '../sink/registry/image-manifest.js';
import type { LayoutTarget } from '../sink/oci-layout/layout-target.js';
import { OCI_LAYOUT_FILE, buildLayoutIndex, refNameOf } from '../sink/oci-layout/layout-index.js';

/**
 * A prepared streamLayeredImage (the same `prepareImage` as `nixreg stream`) written as an OCI image layout.
 * The blobs and the manifest are exactly what `nixreg push --format oci --compression X` uploads for the same
 * conf: the config bytes come from the same buildImageConfig, the manifest from push's buildPushManifest, and the
 * layers go through the same deterministic compressors (compress.ts). Each layer is generated once: tar →
 * diffID hash → compressor → blob hash → target.
 */
export interface OciImageOptions {
  compression?: PushCompression;
  /** gzip 1–9, zstd 1–19 (default: the compressor's). */
  level?: number;
  cache?: LayerCache;
  log?: (line: string) => void;
}

export interface OciImageResult {
  manifest: Buffer;
  manifestDigest: string;
  config: { digest: string; size: number };
  layers: Array<{ kind: string; diffID: string; digest: string; size: number; uncompressedSize: number }>;
  refName: string;
}

export async function writeOciImage(img: PreparedImage, target: LayoutTarget, opts: OciImageOptions = {}): Promise<OciImageResult> {
  const compression = opts.compression ?? 'gzip';
  const log = opts.log ?? (() => {});
  try {
    const layers: OciImageResult['layers'] = [];
    let num = 0;
    for (const l of img.layers) {
      num++;
      log(`Writing layer ${num}/${img.layers.length} (${l.kind}${l.kind === 'store' ? `: ${l.paths.length} paths` : ''})`);
      const blob = await target.beginBlob();
      const diff = new HashingStream();
      const comp = new HashingStream();
      const tail = new PassThrough();
      const done = pipeline([l.open(), diff, ...compressorStages(compression, opts.level), comp, tail]);
      done.catch(() => {}); // observed below; a failed write destroys `tail`, which rejects `done` too
      try {
        for await (const chunk of tail) await blob.write(chunk as Buffer);
        await done;
      } catch (err) {
        tail.destroy();
        if (err instanceof NixregError) throw err;
        throw new NixregError(`layer ${num} (${l.paths[0] ?? l.kind}): ${(err as Error).message}`);
      }
      const diffID = diff.digest();
      if (diff.size !== l.size) throw integrityError(`layer ${num} (${l.paths[0]}) came out ${diff.size} bytes, expected ${l.size}: its files changed`);
      if (l.diffID && l.diffID !== diffID) throw integrityError(`layer ${num} (${l.paths[0]}): expected diffID ${l.diffID}, got ${diffID}`);
      if (!l.diffID && 'plan' in l.source) await opts.cache?.put(storeLayerCacheKey(l.source.plan), { diffID, size: diff.size });
      l.diffID = diffID;
      await blob.finish(comp.digest(), comp.size);
      layers.push({ kind: l.kind, diffID, digest: comp.digest(), size: comp.size, uncompressedSize: diff.size });
    }
    const config = buildImageConfig(img, layers.map((l) => l.diffID));
    const configDesc = { digest: sha256Digest(config), size: config.length };
    await target.putBlob(configDesc.digest, config);
    const manifest = buildPushManifest('oci', compression, configDesc, layers);
    const manifestDigest = sha256Digest(manifest);
    await target.putBlob(manifestDigest, manifest);
    const refName = refNameOf(img.repoTag);
    await target.putFile('index.json', buildLayoutIndex(manifestDigest, manifest.length, refName));
    await target.putFile('oci-layout', OCI_LAYOUT_FILE);
    await target.commit();
    log('Done.');
    return { manifest, manifestDigest, config: configDesc, layers, refName };
  } catch (err) {
    await target.abort();
    throw err;
  } finally {
    await img.base?.archive.close();
  }
}
