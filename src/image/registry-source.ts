import { RegistryClient } from '../registry/client.js';
import type { RegistryClientOptions } from '../registry/types.js';
import { parseManifest, type ImageIndex, type ImageManifest } from '../manifest/manifest.js';
import { selectPlatform, type WantedPlatform } from '../manifest/platform.js';
import { NixregError } from '../errors.js';
import type { ImageReference } from '../reference/reference.js';
import type { ImageSource } from './types.js';

/** Configs are small JSON documents; refuse absurd ones instead of buffering them. */
const MAX_CONFIG_BYTES = 64 << 20;

export type RegistrySourceOptions = Omit<RegistryClientOptions, 'registry' | 'repository'> & { platform: WantedPlatform };

/** A registry reference resolved to one platform's image, its config fetched and verified. */
export interface ResolvedRegistryImage {
  client: RegistryClient;
  /** The index the image was chosen from, where the reference named one. */
  index: { digest: string; bytes: Buffer; parsed: ImageIndex } | null;
  /** The image manifest as served (digest verified against the reference or the index entry). */
  chosen: { digest: string; bytes: Buffer };
  manifest: ImageManifest;
  /** `name@digest` of the image manifest, for messages. */
  description: string;
  configBytes: Buffer;
}

/**
 * Fetch the manifest by digest (or tag), and if it is a Docker manifest list / OCI index pick one instance for the
 * platform exactly like c/image (selectPlatform: containers/image internal/pkg/platform/platform_matcher.go); then the config. Docker schema2 and OCI manifests both
 * work. Shared by pull/prefetch (openRegistrySource) and every `docker://` source (src/source/registry.ts).
 */
export async function resolveRegistryImage(ref: ImageReference, opts: RegistrySourceOptions): Promise<ResolvedRegistryImage> {
  const { platform, ...clientOpts } = opts;
  const client = new RegistryClient({ ...clientOpts, registry: ref.registry, repository: ref.repository });
  const wanted = ref.digest ?? ref.tag ?? 'latest';
  const first = await client.getManifest(wanted);
  let parsed = parseManifest(first.bytes, first.mediaType, `manifest ${ref.registry}/${ref.repository}${ref.digest ? '@' : ':'}${wanted}`);
  let index: ResolvedRegistryImage['index'] = null;
  let chosen = first;
  if (parsed.kind === 'index') {
    index = { digest: first.digest, bytes: first.bytes, parsed };
    const desc = selectPlatform(parsed, platform);
    chosen = await client.getManifest(desc.digest);
    parsed = parseManifest(chosen.bytes, chosen.mediaType, `manifest ${ref.registry}/${ref.repository}@${desc.digest}`);
    if (parsed.kind !== 'image') throw new NixregError(`${ref.name}@${desc.digest}: an index inside an index is not supported`);
  }
  const manifest = parsed;
  const description = `${ref.name}@${chosen.digest}`;
  if (manifest.config.size > MAX_CONFIG_BYTES) throw new NixregError(`${description}: config blob of ${manifest.config.size} bytes is too large`);
  // getBlob checks size and sha256 while streaming; the size bound above keeps the buffer small
  const parts: Buffer[] = [];
  for await (const c of await client.getBlob(manifest.config.digest, { size: manifest.config.size })) parts.push(c as Buffer);
  return { client, index, chosen, manifest, description, configBytes: Buffer.concat(parts) };
}

/** A registry image as an ImageSource (pull, prefetch). */
export async function openRegistrySource(ref: ImageReference, opts: RegistrySourceOptions): Promise<ImageSource> {
  const { client, index, chosen, manifest, description, configBytes } = await resolveRegistryImage(ref, opts);
  return {
    description,
    indexDigest: index?.digest ?? null,
    manifestDigest: chosen.digest,
    manifestMediaType: manifest.mediaType,
    config: manifest.config,
    configBytes,
    layers: manifest.layers,
    openLayer: (i) => {
      const d = manifest.layers[i]!;
      return client.getBlob(d.digest, { size: d.size });
    },
    layerTail: (i, n) => {
      const d = manifest.layers[i]!;
      return client.getBlobTail(d.digest, d.size, n);
    },
  };
}
