import type { Readable } from 'node:stream';
import { RegistryClient } from '../registry/client.js';
import type { RegistryClientOptions } from '../registry/types.js';
import { parseManifest, type ImageManifest } from '../manifest/manifest.js';
import { selectPlatform, type WantedPlatform } from '../manifest/platform.js';
import { checkDigest, sha256Digest } from '../digest/sha256.js';
import { NixregError } from '../errors.js';
import type { ImageReference } from '../reference/reference.js';
import type { ImageSource } from './types.js';

/** Configs are small JSON documents; refuse absurd ones instead of buffering them. */
const MAX_CONFIG_BYTES = 64 << 20;

export type RegistrySourceOptions = Omit<RegistryClientOptions, 'registry' | 'repository'> & { platform: WantedPlatform };

/**
 * A registry image as an ImageSource: fetch the manifest by digest (or tag), and if it is a Docker manifest
 * list / OCI index pick one instance for the platform exactly like c/image (selectPlatform, spec B.6).
 * Docker schema2 and OCI manifests both work; the config is fetched and verified up front.
 */
export async function openRegistrySource(ref: ImageReference, opts: RegistrySourceOptions): Promise<ImageSource> {
  const { platform, ...clientOpts } = opts;
  const client = new RegistryClient({ ...clientOpts, registry: ref.registry, repository: ref.repository });
  const wanted = ref.digest ?? ref.tag ?? 'latest';
  const first = await client.getManifest(wanted);
  let parsed = parseManifest(first.bytes, first.mediaType, `manifest ${ref.registry}/${ref.repository}${ref.digest ? '@' : ':'}${wanted}`);
  let indexDigest: string | null = null;
  let chosen = first;
  if (parsed.kind === 'index') {
    indexDigest = first.digest;
    const desc = selectPlatform(parsed, platform);
    chosen = await client.getManifest(desc.digest);
    parsed = parseManifest(chosen.bytes, chosen.mediaType, `manifest ${ref.registry}/${ref.repository}@${desc.digest}`);
    if (parsed.kind !== 'image') throw new NixregError(`${ref.name}@${desc.digest}: an index inside an index is not supported`);
  }
  const manifest: ImageManifest = parsed;
  const description = `${ref.name}@${chosen.digest}`;
  if (manifest.config.size > MAX_CONFIG_BYTES)
    throw new NixregError(`${description}: config blob of ${manifest.config.size} bytes is too large`);
  const configBytes = await readAll(await client.getBlob(manifest.config.digest, { size: manifest.config.size }));
  checkDigest(`${description} config`, manifest.config.digest, sha256Digest(configBytes), manifest.config.size, configBytes.length);
  return {
    description,
    indexDigest,
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

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
