import { RegistryClient } from '../registry/client.js';
import type { ImageIndex } from '../manifest/manifest.js';
import { parseImageReference } from '../reference/reference.js';
import { resolveRegistryImage, type RegistrySourceOptions } from '../image/registry-source.js';
import { assembleSource } from './image.js';
import type { SourceImage, SourceIndex } from './types.js';

export type RegistryOpenOptions = RegistrySourceOptions;

export function indexInfo(digest: string, bytes: Buffer, index: ImageIndex): SourceIndex {
  return {
    digest,
    mediaType: index.mediaType,
    bytes,
    platforms: index.manifests.map((d) => ({ digest: d.digest, mediaType: d.mediaType, size: d.size, ...(d.platform ? { platform: d.platform } : {}) })),
  };
}

/** `inspect --raw`: the manifest (or index) the reference names, as the registry serves it. */
export async function registryRawManifest(spec: string, opts: Omit<RegistryOpenOptions, 'platform'>): Promise<Buffer> {
  const ref = parseImageReference(spec);
  const client = new RegistryClient({ ...opts, registry: ref.registry, repository: ref.repository });
  try {
    return (await client.getManifest(ref.digest ?? ref.tag ?? 'latest')).bytes;
  } finally {
    await client.close().catch(() => {});
  }
}

/** `inspect`'s RepoTags for `docker://REF`: every tag of the repository, as `skopeo inspect` lists them. */
export async function registryTags(spec: string, opts: Omit<RegistryOpenOptions, 'platform'>): Promise<string[]> {
  const ref = parseImageReference(spec);
  const client = new RegistryClient({ ...opts, registry: ref.registry, repository: ref.repository });
  try {
    return await client.listTags();
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * `docker://REF`: the image resolveRegistryImage picks (same manifest/platform logic as pull), keeping the index
 * bytes and platforms for `inspect --raw` and the manifest bytes for format conversions.
 */
export async function openRegistry(spec: string, opts: RegistryOpenOptions): Promise<SourceImage> {
  const ref = parseImageReference(spec);
  const { client, index: idx, chosen, manifest, description, configBytes } = await resolveRegistryImage(ref, opts);
  const index: SourceIndex | null = idx ? indexInfo(idx.digest, idx.bytes, idx.parsed) : null;
  return assembleSource({
    kind: 'registry',
    description,
    index,
    manifestDigest: chosen.digest,
    manifestMediaType: manifest.mediaType,
    manifestBytes: chosen.bytes,
    describedManifest: chosen.bytes,
    config: manifest.config,
    configBytes,
    layers: manifest.layers,
    repoTags: ref.tag ? [`${ref.name}:${ref.tag}`] : [],
    rawIsVerified: true, // RegistryClient.getBlob checks size and sha256 while streaming
    openRawLayer: (i) => client.getBlob(manifest.layers[i]!.digest, { size: manifest.layers[i]!.size }),
    close: async () => {},
  });
}
