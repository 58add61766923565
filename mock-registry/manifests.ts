import { RegistryError } from './errors.js';
import { SHA256_RE } from './names.js';

export const MT = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

const IMAGE_TYPES = new Set<string>([MT.dockerManifest, MT.ociManifest]);
const INDEX_TYPES = new Set<string>([MT.dockerList, MT.ociIndex]);

/** What the registry remembers about a stored manifest (enough for GET, referrers and reference checks). */
export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
  /** blobs the manifest needs in the repository (config + layers); foreign layers are not included */
  blobs: string[];
  /** child manifests (index entries) */
  children: string[];
  subject?: string;
  /** referrers descriptor artifactType: manifest artifactType, else config mediaType (image manifests only) */
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface Descriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
}

function invalid(msg: string): RegistryError {
  return new RegistryError(400, 'MANIFEST_INVALID', `manifest invalid: ${msg}`);
}

function descriptor(d: unknown, where: string): { digest: string; mediaType: string; size: number } {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object') throw invalid(`${where} is not a descriptor`);
  if (typeof x.digest !== 'string' || !SHA256_RE.test(x.digest)) throw invalid(`${where}.digest is not a sha256 digest`);
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) throw invalid(`${where}.size is invalid`);
  if (typeof x.mediaType !== 'string' || !x.mediaType) throw invalid(`${where}.mediaType is missing`);
  return { digest: x.digest, mediaType: x.mediaType, size: x.size };
}

/** Foreign (non-distributable) layers live elsewhere, so registries do not require them to be uploaded. */
const isForeign = (mediaType: string) => mediaType.includes('foreign') || mediaType.includes('nondistributable');

/**
 * Validate a manifest body and work out its media type: the `mediaType` field when present (which must then equal
 * Content-Type, as the spec requires of clients), else Content-Type.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, digest: string): ManifestInfo {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('body is not JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('body is not a JSON object');
  const ct = contentType ? contentType.split(';')[0]!.trim().toLowerCase() || undefined : undefined;
  const field = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (field && ct && ct !== field && ct !== 'application/json') throw invalid(`Content-Type ${ct} differs from the manifest's mediaType ${field}`);
  const mediaType = field ?? ct ?? '';
  if (mediaType === MT.dockerSchema1 || mediaType === MT.dockerSchema1Signed)
    throw new RegistryError(400, 'MANIFEST_INVALID', 'Docker schema1 manifests are not supported by this registry');
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const info: ManifestInfo = { digest, mediaType, size: body.length, blobs: [], children: [] };
  if (doc.subject !== undefined) info.subject = descriptor(doc.subject, 'subject').digest;
  if (doc.annotations && typeof doc.annotations === 'object') info.annotations = doc.annotations as Record<string, string>;
  const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : undefined;

  if (IMAGE_TYPES.has(mediaType)) {
    const config = descriptor(doc.config, 'config');
    info.blobs.push(config.digest);
    if (!Array.isArray(doc.layers)) throw invalid('layers must be an array');
    doc.layers.forEach((l, i) => {
      const d = descriptor(l, `layers[${i}]`);
      if (!isForeign(d.mediaType)) info.blobs.push(d.digest);
    });
    info.artifactType = artifactType || config.mediaType;
  } else if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('manifests must be an array');
    doc.manifests.forEach((m, i) => info.children.push(descriptor(m, `manifests[${i}]`).digest));
    if (artifactType) info.artifactType = artifactType;
  } else {
    throw invalid(`unsupported manifest media type "${mediaType || '(none)'}"`);
  }
  return info;
}
