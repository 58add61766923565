import type { PushCompression } from '../../compression/compress.js';
import type { PushFormat, PushFormatChoice } from './image-manifest.js';

/**
 * `--format auto`: push Docker schema2 (what skopeo writes from a docker-archive), and where the registry refuses a
 * manifest for its Docker media types — zot without its docker2s2 compatibility answers 415, or since 2.0
 * 400 MANIFEST_INVALID "unsupported media type" (https://github.com/project-zot/zot/issues/3104) — PUT the same
 * image again as OCI: config and layer blobs are the same bytes, only the media types in the manifest change.
 * A registry that refused once gets OCI for the rest of the run (every image of a --platform-conf push).
 */
const ociOnlyRegistries = new Set<string>();

/**
 * The format to try first. zstd layers exist only in OCI; uncompressed layers go as OCI too, since Docker's
 * uncompressed layer type is refused by Quay (https://github.com/containers/image/issues/1270) while the OCI one is
 * standard everywhere.
 */
export function firstFormat(choice: PushFormatChoice | undefined, compression: PushCompression, registry?: string): PushFormat {
  if (choice !== 'auto') return choice ?? 'docker';
  return compression !== 'gzip' || (registry !== undefined && ociOnlyRegistries.has(registry)) ? 'oci' : 'docker';
}

export function noteDockerRefused(registry: string): void {
  ociOnlyRegistries.add(registry);
}
