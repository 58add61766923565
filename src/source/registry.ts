import { RegistryClient } from '../registry/client.js';
import type { RegistryClientOptions } from '../registry/types.js';
import { parseManifest, type ImageIndex } from '../manifest/manifest.js';
import { selectPlatform, type WantedPlatform } from '../manifest/platform.js';
import { NixregError } from '../errors.js';
import { parseImageReference } from '../reference/reference.js';
import { readSmall } from './verify.js';
import { assembleSource } from './image.js';
import type { SourceImage, SourceIndex } from './types.js';

/** Configs are small JSON documents; refuse absurd ones instead of buffering them. */
const MAX_CONFIG_BYTES = 64 << 20;

export type RegistryOpenOptions = Omit<RegistryClientOptions, 'registry' | 'repository'> & { platform: WantedPlatform };

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
  return (await client.getManifest(ref.digest ?? ref.tag ?? 'latest')).bytes;
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
 * `docker://REF`. Like src/image/registry-source.ts (same manifest/platform logic, c/image's selection order),
 * but keeps the index bytes and platforms for `inspect --raw` and the manifest bytes for format conversions.
 */
export async function openRegistry(spec: string, opts: RegistryOpenOptions): Promise<SourceImage> {
  const ref = parseImageReference(spec);
  const { platform, ...clientOpts } = opts;
  const client = new RegistryClient({ ...clientOpts, registry: ref.registry, repository: ref.repository });
  const wanted = ref.digest ?? ref.tag ?? 'latest';
  const first = await client.getManifest(wanted);
  let parsed = parseManifest(first.bytes, first.mediaType, `manifest ${ref.registry}/${ref.repository}${ref.digest ? '@' : ':'}${wanted}`);
  let index: SourceIndex | null = null;
  let chosen = first;
  if (parsed.kind === 'index') {
    index = indexInfo(first.digest, first.bytes, parsed);
    const desc = selectPlatform(parsed, platform);
    chosen = await client.getManifest(desc.digest);
    parsed = parseManifest(chosen.bytes, chosen.mediaType, `manifest ${ref.registry}/${ref.repository}@${desc.digest}`);
    if (parsed.kind !== 'image') throw new NixregError(`${ref.name}@${desc.digest}: an index inside an index is not supported`);
  }
  const manifest = parsed;
  const description = `${ref.name}@${chosen.digest}`;
  if (manifest.config.size > MAX_CONFIG_BYTES)
    throw new NixregError(`${description}: config blob of ${manifest.config.size} bytes is too large`);
  const configBytes = await readSmall(await client.getBlob(manifest.config.digest, { size: manifest.config.size }), `${description} config`, MAX_CONFIG_BYTES);
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
