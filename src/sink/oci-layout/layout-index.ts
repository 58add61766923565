import { MediaType } from '../../manifest/media-types.js';

/** The annotation an OCI layout's index.json names an image by (`oci:DIR:TAG`). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** The `org.opencontainers.image.ref.name` skopeo writes for `oci:DIR:TAG`: the tag alone. */
export function refNameOf(repoTag: string): string {
  const colon = repoTag.lastIndexOf(':');
  return colon > repoTag.lastIndexOf('/') ? repoTag.slice(colon + 1) : 'latest';
}

/**
 * index.json exactly as skopeo 1.9 writes it for one image (or one index, with `--all`) copied to `oci:DIR:TAG`:
 * compact, no index mediaType, the entry's fields in Go's order (mediaType, digest, size, annotations).
 */
export function buildLayoutIndex(manifestDigest: string, manifestSize: number, refName: string, mediaType: string = MediaType.ociManifest): Buffer {
  const index = {
    schemaVersion: 2,
    manifests: [{ mediaType, digest: manifestDigest, size: manifestSize, annotations: { [REF_NAME_ANNOTATION]: refName } }],
  };
  return Buffer.from(JSON.stringify(index), 'utf8');
}

/** `oci-layout` as c/image writes it (with the space, no newline). */
export const OCI_LAYOUT_FILE = Buffer.from('{"imageLayoutVersion": "1.0.0"}', 'utf8');
