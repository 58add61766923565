import type { Readable } from 'node:stream';
import { configDiffIDs } from '../image/copy.js';
import { decompressByMagic } from '../compression/decompress.js';
import { checkDigest, sha256Digest } from '../digest/sha256.js';
import type { Descriptor } from '../manifest/manifest.js';
import { NixregError } from '../errors.js';
import { MediaType } from '../manifest/media-types.js';
import type { SourceImage, SourceIndex, SourceKind } from './types.js';
import { verifyStream } from './verify.js';

/** What a concrete source knows; `assembleSource` adds the shared checks and the uncompressed-layer view. */
export interface SourceParts {
  kind: SourceKind;
  description: string;
  index: SourceIndex | null;
  manifestDigest: string;
  manifestMediaType: string;
  manifestBytes: Buffer | null;
  /** The manifest as `skopeo inspect --raw` shows it: manifestBytes, or the one c/image generates. */
  describedManifest: Buffer;
  config: Descriptor;
  configBytes: Buffer;
  layers: readonly Descriptor[];
  repoTags: readonly string[];
  /** See SourceImage.sequentialReads (default false). */
  sequentialReads?: boolean;
  /** The stored blob, raw; verified by the caller of openLayer through assembleSource. */
  openRawLayer(index: number): Promise<Readable>;
  /** Set when openRawLayer already returns a verified stream (the registry client checks digests itself). */
  rawIsVerified?: boolean;
  /** The uncompressed tar straight from the source (conf layers are generated uncompressed). */
  openTar?(index: number): Promise<Readable>;
  close(): Promise<void>;
}

/** c/image's DockerV2Schema2LayerMediaType: what it claims for the layers (by diffID) of an image without a stored manifest. */
export const GENERATED_LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/** The schema2 manifest c/image generates for an archive image (Go's json.Marshal field order). */
export function generatedManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  const d = (x: Descriptor) => ({ mediaType: x.mediaType, size: x.size, digest: x.digest });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: d(config), layers: layers.map(d) }));
}

/** The manifest-side parts of an image that has no stored manifest: the one c/image generates describes it. */
export function withGeneratedManifest(configBytes: Buffer, layers: readonly Descriptor[]) {
  const config: Descriptor = { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: sha256Digest(configBytes) };
  const described = generatedManifest(config, layers);
  return {
    index: null,
    manifestDigest: sha256Digest(described),
    manifestMediaType: MediaType.dockerManifest,
    manifestBytes: null,
    describedManifest: described,
    config,
    configBytes,
    layers,
  } satisfies Partial<SourceParts>;
}

/**
 * Turn source parts into a SourceImage: config checked against its descriptor, diff_ids against the layer
 * count, every layer stream verified against its digest (stored bytes) or diffID (uncompressed bytes).
 */
export function assembleSource(p: SourceParts): SourceImage {
  checkDigest(`${p.description} config`, p.config.digest, sha256Digest(p.configBytes), p.config.size, p.configBytes.length);
  const diffIDs = configDiffIDs(p.configBytes, p.layers.length, p.description);
  const layerAt = (i: number): Descriptor => {
    const d = p.layers[i];
    if (!d) throw new NixregError(`${p.description}: no layer ${i} (the image has ${p.layers.length})`);
    return d;
  };
  const openLayer = async (i: number): Promise<Readable> => {
    const d = layerAt(i);
    const raw = await p.openRawLayer(i);
    return p.rawIsVerified ? raw : verifyStream(raw, `${p.description} layer ${i} (${d.digest})`, d.digest, d.size);
  };
  return {
    kind: p.kind,
    description: p.description,
    indexDigest: p.index?.digest ?? null,
    index: p.index,
    manifestDigest: p.manifestDigest,
    manifestMediaType: p.manifestMediaType,
    manifestBytes: p.manifestBytes,
    describedManifest: p.describedManifest,
    config: p.config,
    configBytes: p.configBytes,
    layers: p.layers,
    diffIDs,
    repoTags: p.repoTags,
    sequentialReads: p.sequentialReads ?? false,
    openLayer,
    openUncompressedLayer: async (i) => {
      const d = layerAt(i);
      const what = `${p.description} layer ${i} (uncompressed, diffID ${diffIDs[i]})`;
      if (p.openTar) return verifyStream(await p.openTar(i), what, diffIDs[i]!);
      // When the stored blob is the tar itself, its digest check already is the diffID check: hash once.
      if (d.digest === diffIDs[i]) return openLayer(i);
      return verifyStream(decompressByMagic(await openLayer(i)), what, diffIDs[i]!);
    },
    close: p.close,
  };
}
