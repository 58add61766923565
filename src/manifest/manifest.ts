import { NixregError, usageError } from '../errors.js';
import { DIGEST_RE } from '../digest/sha256.js';
import { MediaType, isImageManifestMediaType, isIndexMediaType, isSchema1MediaType } from './media-types.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageManifest {
  kind: 'image';
  mediaType: string; // dockerManifest or ociManifest
  schemaVersion: 2;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string; // dockerManifestList or ociIndex
  schemaVersion: 2;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export type ParsedManifest = ImageManifest | ImageIndex;

function checkDescriptor(d: unknown, where: string, invalid: (why: string) => NixregError): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o !== 'object') throw invalid(`${where} is not an object`);
  if (typeof o.mediaType !== 'string') throw invalid(`${where} has no mediaType`);
  if (typeof o.digest !== 'string' || !DIGEST_RE.test(o.digest)) throw invalid(`${where} has an invalid or non-sha256 digest`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw invalid(`${where} has an invalid size`);
  return o as Descriptor;
}

/**
 * Parse manifest bytes as the given media type (from Content-Type). If the media type is missing or generic,
 * the body's own `mediaType` (or shape) decides. Schema1 and unknown types give a clear error.
 */
export function parseManifest(bytes: Buffer, mediaType: string, what = 'manifest'): ParsedManifest {
  // `what` names the document for the message, e.g. 'manifest quay.io/a/b:1' (callers that know it should pass it).
  const invalid = (why: string) => new NixregError(`invalid ${what}: ${why}`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('not valid JSON');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw invalid('not a JSON object');
  let mt = mediaType.split(';')[0]!.trim().toLowerCase();
  const bodyMt = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  if (!isIndexMediaType(mt) && !isImageManifestMediaType(mt) && !isSchema1MediaType(mt)) {
    // Some registries/CDNs answer application/json or text/plain: trust the body, like OCI's guess.
    if (bodyMt) mt = bodyMt;
    else if (json.schemaVersion === 1) mt = MediaType.dockerSchema1;
    else if (Array.isArray(json.manifests)) mt = MediaType.ociIndex;
    else if (json.config && Array.isArray(json.layers)) mt = MediaType.ociManifest;
  }
  if (isSchema1MediaType(mt) || json.schemaVersion === 1)
    throw usageError('Docker schema1 manifests are not supported (deprecated since 2017); push the image again with a current tool');
  if (json.schemaVersion !== 2) throw invalid(`schemaVersion ${String(JSON.stringify(json.schemaVersion)).slice(0, 40)} is not 2`);
  if (isIndexMediaType(mt)) {
    if (!Array.isArray(json.manifests)) throw invalid('index has no "manifests" array');
    const manifests = json.manifests.map((d, i) => checkDescriptor(d, `manifests[${i}]`, invalid));
    return {
      kind: 'index',
      mediaType: mt,
      schemaVersion: 2,
      manifests,
      ...(json.annotations ? { annotations: json.annotations as Record<string, string> } : {}),
    };
  }
  if (isImageManifestMediaType(mt)) {
    const config = checkDescriptor(json.config, 'config', invalid);
    if (!Array.isArray(json.layers)) throw invalid('manifest has no "layers" array');
    const layers = json.layers.map((d, i) => checkDescriptor(d, `layers[${i}]`, invalid));
    return {
      kind: 'image',
      mediaType: mt,
      schemaVersion: 2,
      config,
      layers,
      ...(json.annotations ? { annotations: json.annotations as Record<string, string> } : {}),
    };
  }
  throw new NixregError(`unsupported manifest media type "${mt.slice(0, 100)}" (expected Docker schema2, OCI manifest, Docker manifest list or OCI index)`);
}
