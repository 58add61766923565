import { NixregError, notFoundError, usageError } from '../errors.js';
import { MediaType, isIndexMediaType } from '../manifest/media-types.js';
import { parseManifest, type Descriptor, type ImageManifest } from '../manifest/manifest.js';
import type { WantedPlatform } from '../manifest/platform.js';
import { isAttestation, platformString } from '../manifest/platform-string.js';
import { checkRequiredPlatforms } from '../manifest/required-platforms.js';
import { parseImageReference, type ImageReference } from '../reference/reference.js';
import { clientOptions, type RegistryAccess } from '../registry/access.js';
import { mountOrCopyBlob } from '../registry/blob-mount.js';
import { RegistryClient } from '../registry/client.js';
import { configPlatform, readConfig } from './image-platform.js';
import { refOf } from './registry-client.js';

export interface IndexOptions {
  /** oci (default for create) or docker (a manifest list); append keeps the existing index's type unless given */
  format?: 'oci' | 'docker';
  /** refuse to tag an index that lacks any of these */
  requirePlatforms?: WantedPlatform[];
}

export interface IndexResult {
  reference: string;
  digest: string;
  mediaType: string;
  manifests: { digest: string; platform: string; from: string }[];
  blobs: { exists: number; mounted: number; copied: number };
}

interface Child {
  descriptor: Descriptor;
  /** where the child lives, `registry/repo@digest` */
  from: string;
  client: RegistryClient;
  /** the child's manifest, when it has to be put into the destination repository */
  manifest?: { bytes: Buffer; parsed: ImageManifest };
}

/** `nixreg index create DEST SRC...`: a new index (or manifest list) over images already in the registry. */
export function createIndex(dest: string, sources: string[], access: RegistryAccess = {}, o: IndexOptions = {}): Promise<IndexResult> {
  return writeIndex('create', dest, sources, access, o);
}

/** `nixreg index append DEST SRC...`: DEST's index with the sources' images added (a platform already there is replaced). */
export function appendIndex(dest: string, sources: string[], access: RegistryAccess = {}, o: IndexOptions = {}): Promise<IndexResult> {
  return writeIndex('append', dest, sources, access, o);
}

async function writeIndex(mode: 'create' | 'append', destArg: string, sources: string[], access: RegistryAccess, o: IndexOptions): Promise<IndexResult> {
  const dest = parseImageReference(destArg);
  if (dest.digest) throw usageError(`the index destination must be a tag, not a digest: "${destArg.slice(0, 200)}"`);
  if (!sources.length) throw usageError('name at least one source image');
  const destName = `${dest.name}:${refOf(dest)}`;
  const clients = new Map<string, RegistryClient>();
  const clientFor = (repo: string, push = false): RegistryClient => {
    const key = `${repo}\n${push}`;
    let c = clients.get(key);
    if (!c)
      clients.set(key, (c = new RegistryClient({ ...clientOptions(access), registry: dest.registry, repository: repo, ...(push ? { pushScope: true } : {}) })));
    return c;
  };
  try {
    const destClient = clientFor(dest.repository, true);
    let mediaType: string = o.format === 'docker' ? MediaType.dockerManifestList : MediaType.ociIndex;
    let existing: Descriptor[] = [];
    if (mode === 'append') {
      const head = await destClient.headManifest(refOf(dest));
      if (!head) throw notFoundError(`index ${destName} does not exist; make it with nixreg index create`);
      const m = await destClient.getManifest(refOf(dest));
      const parsed = parseManifest(m.bytes, m.mediaType, `manifest ${destName}`);
      if (parsed.kind !== 'index') throw usageError(`${destName} is a single image, not an index; nixreg index create makes one`);
      existing = parsed.manifests;
      if (!o.format) mediaType = parsed.mediaType;
    }
    const added: Child[] = [];
    for (const s of sources) added.push(...(await childrenOf(parseImageReference(s), dest, clientFor)));
    const seen = new Map<string, string>();
    for (const c of added) {
      if (isAttestation(c.descriptor)) continue;
      const p = platformString(c.descriptor.platform!);
      if (seen.has(p)) throw usageError(`two sources give ${p}: ${seen.get(p)} and ${c.from}; name one image per platform`);
      seen.set(p, c.from);
    }
    const replaced = new Set(added.filter((c) => !isAttestation(c.descriptor)).map((c) => platformString(c.descriptor.platform!)));
    const kept = existing.filter((d) => !d.platform || isAttestation(d) || !replaced.has(platformString(d.platform)));
    const manifests = [...kept, ...added.map((c) => c.descriptor)];
    checkRequiredPlatforms(manifests, o.requirePlatforms ?? [], destName);
    const blobs = { exists: 0, mounted: 0, copied: 0 };
    for (const c of added) {
      if (!c.manifest) continue;
      for (const b of [c.manifest.parsed.config, ...c.manifest.parsed.layers]) {
        if (b.urls?.length) continue; // foreign layers stay where their urls point
        blobs[await mountOrCopyBlob(destClient, c.client, b)]++;
      }
      await destClient.putManifest(c.descriptor.digest, c.manifest.bytes, c.descriptor.mediaType);
    }
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests }, null, 2));
    const digest = await destClient.putManifest(refOf(dest), bytes, mediaType);
    return {
      reference: destName,
      digest,
      mediaType,
      manifests: [
        ...kept.map((d) => ({ digest: d.digest, platform: d.platform ? platformString(d.platform) : '', from: `${dest.name}@${d.digest}` })),
        ...added.map((c) => ({ digest: c.descriptor.digest, platform: platformString(c.descriptor.platform!), from: c.from })),
      ],
      blobs,
    };
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}

/** The index entries a source gives: one for an image (platform from its config), every entry for an index. */
async function childrenOf(src: ImageReference, dest: ImageReference, clientFor: (repo: string) => RegistryClient): Promise<Child[]> {
  const name = `${src.name}${src.digest ? '@' + src.digest : ':' + refOf(src)}`;
  if (src.registry !== dest.registry)
    throw usageError(`${name} is on ${src.registry}, not ${dest.registry}: copy it there first (nixreg push docker://${name} docker://${dest.registry}/...)`);
  const client = clientFor(src.repository);
  const crossRepo = src.repository !== dest.repository;
  const m = await client.getManifest(refOf(src));
  const parsed = parseManifest(m.bytes, m.mediaType, `manifest ${name}`);
  if (parsed.kind === 'image') {
    const platform = configPlatform(await readConfig(client, parsed.config), name);
    const descriptor: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, platform };
    return [{ descriptor, from: `${src.name}@${m.digest}`, client, ...(crossRepo ? { manifest: { bytes: m.bytes, parsed } } : {}) }];
  }
  const out: Child[] = [];
  for (const d of parsed.manifests) {
    if (!d.platform) throw new NixregError(`${name} has an entry without a platform (${d.digest}); name its images one by one`);
    let manifest: Child['manifest'];
    if (crossRepo) {
      if (isIndexMediaType(d.mediaType)) throw usageError(`${name} holds a nested index (${d.digest}); name its images one by one`);
      const cm = await client.getManifest(d.digest);
      const cp = parseManifest(cm.bytes, cm.mediaType, `manifest ${src.name}@${d.digest}`);
      if (cp.kind !== 'image') throw usageError(`${name} holds a nested index (${d.digest}); name its images one by one`);
      manifest = { bytes: cm.bytes, parsed: cp };
    }
    out.push({ descriptor: d, from: `${src.name}@${d.digest}`, client, ...(manifest ? { manifest } : {}) });
  }
  return out;
}
