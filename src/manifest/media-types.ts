/** Manifest and layer media types (OCI image-spec and Docker distribution schema2). */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
} as const;

/** The Accept list c/image sends on manifest GET, in its order (containers/image manifest.DefaultRequestedManifestMIMETypes). Sent as separate header lines. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.dockerSchema1Signed,
  MediaType.dockerSchema1,
  MediaType.dockerManifestList,
  MediaType.ociIndex,
];

export const isIndexMediaType = (mt: string): boolean => mt === MediaType.ociIndex || mt === MediaType.dockerManifestList;
export const isImageManifestMediaType = (mt: string): boolean => mt === MediaType.ociManifest || mt === MediaType.dockerManifest;
export const isSchema1MediaType = (mt: string): boolean => mt === MediaType.dockerSchema1 || mt === MediaType.dockerSchema1Signed;

/** Manifest size limit (c/image uses 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
