import { Readable } from 'node:stream';
import { sha256Digest } from '../../src/digest/sha256.js';
import { MediaType } from '../../src/manifest/media-types.js';
import type { Platform } from '../../src/manifest/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';

/**
 * Put test images into a registry with nixreg's own upload primitives (HEAD, POST, one PATCH, PUT ?digest=).
 * `target` is a RegistryClient for `repo`, or a registry URL/host ('http://127.0.0.1:5000', '127.0.0.1:5000');
 * URLs get a client with TLS verification off (test registries use self-signed certs).
 */
export type UploadTarget = RegistryClient | string;

export interface TargetOptions {
  creds?: { username: string; password: string };
  certDir?: string;
}

function clientFor(target: UploadTarget, repo: string, o: TargetOptions = {}): { client: RegistryClient; owned: boolean } {
  if (target instanceof RegistryClient) {
    if (target.repository !== repo) throw new Error(`pushImage: client is for ${target.repository}, not ${repo}`);
    return { client: target, owned: false };
  }
  const host = target.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const client = new RegistryClient({
    registry: host,
    repository: repo,
    pushScope: true,
    ...(o.certDir ? { certDir: o.certDir } : { tlsVerify: false }),
    ...(o.creds ? { creds: o.creds } : {}),
  });
  return { client, owned: true };
}

export async function uploadBlob(client: RegistryClient, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  if (await client.headBlob(digest)) return digest;
  const start = await client.startUpload();
  if (start.mounted) return digest;
  const next = await client.uploadBlobStream(start.location, Readable.from([data], { objectMode: false }), data.length);
  await client.finishUpload(next, digest);
  return digest;
}

export interface PushImageOptions extends TargetOptions {
  config: Buffer;
  /** Layer blobs exactly as stored (already compressed). */
  layers: Buffer[];
  /** Default Docker schema2. */
  manifestMediaType?: string;
  /** Default: gzip layer type of the manifest's family. */
  layerMediaType?: string;
}

export async function pushImage(
  target: UploadTarget,
  repo: string,
  tag: string,
  o: PushImageOptions,
): Promise<{ manifestDigest: string; manifest: Buffer; size: number; mediaType: string }> {
  const { client, owned } = clientFor(target, repo, o);
  try {
    const mediaType = o.manifestMediaType ?? MediaType.dockerManifest;
    const oci = mediaType === MediaType.ociManifest;
    const layerMediaType = o.layerMediaType ?? (oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip);
    const configDigest = await uploadBlob(client, o.config);
    const layers = [];
    for (const l of o.layers) layers.push({ mediaType: layerMediaType, size: l.length, digest: await uploadBlob(client, l) });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig, size: o.config.length, digest: configDigest },
        layers,
      }),
    );
    const manifestDigest = await client.putManifest(tag, manifest, mediaType);
    return { manifestDigest, manifest, size: manifest.length, mediaType };
  } finally {
    if (owned) await client.close();
  }
}

export interface IndexEntry {
  digest: string;
  size: number;
  mediaType: string;
  platform?: Platform;
}

/** Push a manifest list / OCI index referring to manifests already in `repo`. */
export async function pushIndex(
  target: UploadTarget,
  repo: string,
  tag: string,
  o: TargetOptions & { manifests: IndexEntry[]; mediaType?: string },
): Promise<{ indexDigest: string; index: Buffer }> {
  const { client, owned } = clientFor(target, repo, o);
  try {
    const mediaType = o.mediaType ?? MediaType.ociIndex;
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: o.manifests }));
    const indexDigest = await client.putManifest(tag, index, mediaType);
    return { indexDigest, index };
  } finally {
    if (owned) await client.close();
  }
}
