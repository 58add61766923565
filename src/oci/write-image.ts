import type { PushCompression } from '../compression/compress.js';
import type { LayerCache } from '../nix/layer-cache.js';
import { buildImageConfig } from '../nix/stream/image-json.js';
import type { PreparedImage } from '../nix/stream/image.js';
import { storeLayerCacheKey } from '../nix/stream/store-layer.js';
import { buildPushManifest } from '../sink/registry/image-manifest.js';
import type { StreamedLayer } from '../sink/oci-layout/image-writer.js';
import { refNameOf } from '../sink/oci-layout/layout-index.js';
import { writeLayoutTarget } from '../sink/oci-layout/layout-sink.js';
import type { LayoutTarget } from '../sink/oci-layout/layout-target.js';

/**
 * A prepared streamLayeredImage (the same `prepareImage` as `nixreg stream`) written as an OCI image layout.
 * The blobs and the manifest are exactly what `nixreg push --format oci --compression X` uploads for the same
 * conf: the config bytes come from the same buildImageConfig, the manifest from push's buildPushManifest, and the
 * layers go through the same deterministic compressors (compress.ts). The layout is written by the OCI-layout
 * sink (sink/oci-layout) that `nixreg copy` uses; each layer is generated once, its diffID and blob filled in
 * as it streams (LayoutImageWriter.writeStreamedLayer).
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
  const refName = refNameOf(img.repoTag);
  let result: Omit<OciImageResult, 'refName'> | undefined;
  try {
    await writeLayoutTarget(target, refName, {}, async (writer) => {
      const layers: OciImageResult['layers'] = [];
      let num = 0;
      for (const l of img.layers) {
        num++;
        log(`Writing layer ${num}/${img.layers.length} (${l.kind}${l.kind === 'store' ? `: ${l.paths.length} paths` : ''})`);
        const known = l.diffID;
        const layer: StreamedLayer = { open: () => l.open(), what: `layer ${num} (${l.paths[0] ?? l.kind})`, diffID: l.diffID, size: l.size };
        const stored = await writer.writeStreamedLayer(layer, compression, opts.level);
        l.diffID = layer.diffID!;
        if (!known && 'plan' in l.source) await opts.cache?.put(storeLayerCacheKey(l.source.plan), { diffID: l.diffID, size: layer.size! });
        layers.push({ kind: l.kind, diffID: l.diffID, digest: stored.digest, size: stored.size, uncompressedSize: layer.size! });
      }
      const config = buildImageConfig(
        img,
        layers.map((l) => l.diffID),
      );
      const configDesc = await writer.putConfig(config);
      // push's manifest bytes (its field order), so the layout's manifest digest is the one `push --format oci` gives
      const manifest = buildPushManifest('oci', compression, configDesc, layers);
      const { manifest: entry } = await writer.putManifest(manifest);
      result = { manifest, manifestDigest: entry.digest, config: { digest: configDesc.digest, size: configDesc.size }, layers };
      return entry;
    });
    log('Done.');
    return { ...result!, refName };
  } finally {
    await img.base?.archive.close();
  }
}
