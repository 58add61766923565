/** What an SBOM of a Nix-built image is made from: its layers, the store paths each holds, the closure graph. */
export interface SbomLayer {
  /** sha256 of the uncompressed layer (the config's diff_id; the layer digest of an uncompressed archive) */
  diffID: string;
  /** the registry's layer digest (compressed blob) when the image was pushed */
  digest?: string;
  /** the store paths the layer holds */
  paths: string[];
}

export interface SbomPath {
  path: string;
  /** `sha256:<nix32>` as exportReferencesGraph and `nix-store --query --hash` give it */
  narHash?: string;
  /** store paths this one references (itself excluded) */
  references: string[];
  /** SPDX licence expression, when the graph metadata names one */
  license?: string;
}

export interface SbomInput {
  /** the image: `NAME[:TAG]` */
  image: string;
  /** the pushed manifest digest, when known */
  imageDigest?: string;
  /** RFC 3339 UTC time of the document; undefined = no timestamp */
  created?: string;
  toolVersion: string;
  layers: SbomLayer[];
  /** every store path of the image (sorted by path by the builders) */
  paths: SbomPath[];
}

export type SbomFormat = 'cyclonedx' | 'spdx';
export const SBOM_FORMATS: readonly SbomFormat[] = ['cyclonedx', 'spdx'];

/** The artifactType of each format's document as an OCI referrer (the IANA media types of the formats). */
export const SBOM_MEDIA_TYPES: Record<SbomFormat, string> = {
  cyclonedx: 'application/vnd.cyclonedx+json',
  spdx: 'application/spdx+json',
};
