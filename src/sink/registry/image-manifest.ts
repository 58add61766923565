import type { PushCompression } from '../../compression/compress.js';
import { usageError } from '../../errors.js';
import { MediaType } from '../../manifest/media-types.js';

/**
 * The single-image manifest `nixreg push` writes: Docker schema2 (what skopeo writes when copying a
 * docker-archive to a registry) or OCI. Keys in Go struct order and compact like Go's encoding/json, so the
 * bytes look like what c/image would send for the same descriptors.
 */
export type PushFormat = 'docker' | 'oci';

/** `--format auto`: Docker, or OCI where the registry refuses Docker media types (format-auto.ts). */
export type PushFormatChoice = PushFormat | 'auto';

export interface BlobDescriptor {
  digest: string;
  size: number;
}

export function layerMediaType(format: PushFormat, compression: PushCompression): string {
  if (format === 'oci') return compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
  if (compression === 'zstd') throw usageError('--compression zstd needs --format oci (Docker schema2 has no zstd layer type)');
  return compression === 'gzip' ? MediaType.dockerLayerGzip : DOCKER_LAYER_UNCOMPRESSED;
}

const DOCKER_LAYER_UNCOMPRESSED = 'application/vnd.docker.image.rootfs.diff.tar';

/**
 * A one-line note for a push whose layers get Docker's uncompressed type, which Quay refuses — at the manifest,
 * after every blob is up (https://github.com/containers/image/issues/1270); undefined for any other combination.
 */
export function uncompressedDockerNote(format: PushFormat, compression: PushCompression): string | undefined {
  if (format !== 'docker' || compression !== 'none') return undefined;
  return `note: --format docker --compression none gives layers the type ${DOCKER_LAYER_UNCOMPRESSED}, which some registries (Quay) refuse only at the manifest; --format oci stores uncompressed layers under a type every registry takes`;
}

export function configMediaType(format: PushFormat): string {
  return format === 'oci' ? MediaType.ociConfig : MediaType.dockerConfig;
}

export function manifestMediaType(format: PushFormat): string {
  return format === 'oci' ? MediaType.ociManifest : MediaType.dockerManifest;
}

export function buildPushManifest(format: PushFormat, compression: PushCompression, config: BlobDescriptor, layers: readonly BlobDescriptor[]): Buffer {
  const lt = layerMediaType(format, compression);
  const m = {
    schemaVersion: 2,
    mediaType: manifestMediaType(format),
    config: { mediaType: configMediaType(format), size: config.size, digest: config.digest },
    layers: layers.map((l) => ({ mediaType: lt, size: l.size, digest: l.digest })),
  };
  return Buffer.from(JSON.stringify(m), 'utf8');
}

export interface IndexEntry {
  digest: string;
  size: number;
  mediaType: string;
  platform: { os: string; architecture: string; variant?: string };
}

/** Index over per-platform manifests (multi-arch push): OCI index, or a Docker manifest list for --format docker. */
export function buildIndex(entries: readonly IndexEntry[], format: PushFormat): Buffer {
  const m = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MediaType.ociIndex : MediaType.dockerManifestList,
    manifests: entries.map((e) => ({
      mediaType: e.mediaType,
      size: e.size,
      digest: e.digest,
      platform: { architecture: e.platform.architecture, os: e.platform.os, ...(e.platform.variant ? { variant: e.platform.variant } : {}) },
    })),
  };
  return Buffer.from(JSON.stringify(m), 'utf8');
}
