import { NixregError } from '../../errors.js';
import { DIGEST_RE, sha256Digest } from '../../digest/sha256.js';
import { MediaType, isIndexMediaType } from '../../manifest/media-types.js';
import { nextPageLink, type RegistryClient } from '../../registry/client.js';
import { headerValue } from '../../registry/transport.js';
import { writeBufferBlob } from './write.js';

/**
 * OCI 1.1 referrers (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers):
 * an artifact is an image manifest whose `subject` names the manifest it is about. A registry with the referrers
 * API lists them at `GET /v2/<name>/referrers/<digest>`; for one without (distribution 2.8), the client keeps
 * the list itself in an image index under the tag `sha256-<hex>` (the referrers tag schema).
 */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  data?: string;
}

/** The empty JSON blob `{}` the image spec names for an artifact without config. */
export const EMPTY_DESCRIPTOR: OciDescriptor = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
};
const EMPTY_BLOB = Buffer.from('{}');

export interface ArtifactBlob {
  mediaType: string;
  bytes: Buffer;
  annotations?: Record<string, string>;
}

export type ReferrersVia = 'referrers-api' | 'tag-schema';

export interface AttachResult {
  /** the artifact manifest, as its referrers entry */
  descriptor: OciDescriptor;
  via: ReferrersVia;
}

const MAX_INDEX_BYTES = 4 << 20;
const MAX_PAGES = 1000;

/** The tag the referrers tag schema keeps the referrers of `digest` under. */
export const referrersTag = (digest: string): string => digest.replace(':', '-');

/**
 * Push `blobs` as an artifact of type `artifactType` whose subject is `subject`, and make it findable: nothing more
 * to do where the registry has the referrers API, else add it to the `sha256-<hex>` index (read, add, write back).
 */
export async function attachArtifact(
  client: RegistryClient,
  subject: OciDescriptor,
  artifactType: string,
  blobs: ArtifactBlob[],
  annotations: Record<string, string> = {},
): Promise<AttachResult> {
  if (!DIGEST_RE.test(subject.digest)) throw new NixregError(`subject ${subject.digest} is not a sha256 digest`);
  await writeBufferBlob(client, EMPTY_BLOB, EMPTY_DESCRIPTOR.digest);
  const layers: OciDescriptor[] = [];
  for (const b of blobs) {
    const digest = sha256Digest(b.bytes);
    await writeBufferBlob(client, b.bytes, digest);
    layers.push({ mediaType: b.mediaType, digest, size: b.bytes.length, ...(b.annotations ? { annotations: b.annotations } : {}) });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType,
    config: EMPTY_DESCRIPTOR,
    layers,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await client.putManifest(sha256Digest(bytes), bytes, MediaType.ociManifest);
  const descriptor: OciDescriptor = {
    mediaType: MediaType.ociManifest,
    digest,
    size: bytes.length,
    artifactType,
    ...(manifest.annotations ? { annotations } : {}),
  };
  return { descriptor, via: await recordReferrer(client, subject.digest, descriptor) };
}

/**
 * Make the artifact `d` (already in the registry) findable as a referrer of `subject`: the referrers API lists it
 * by its `subject` field on its own; without the API it is added to the `sha256-<hex>` index.
 */
export async function recordReferrer(client: RegistryClient, subject: string, d: OciDescriptor): Promise<ReferrersVia> {
  if ((await apiReferrers(client, subject)) !== undefined) return 'referrers-api';
  await addToTagIndex(client, subject, d);
  return 'tag-schema';
}

/** What is attached to `digest`: from the referrers API, or from the tag schema's index where there is none. */
export async function listReferrers(client: RegistryClient, digest: string): Promise<{ via: ReferrersVia; referrers: OciDescriptor[] }> {
  const api = await apiReferrers(client, digest);
  if (api) return { via: 'referrers-api', referrers: api };
  return { via: 'tag-schema', referrers: (await tagIndex(client, digest))?.manifests ?? [] };
}

/** `GET /v2/<name>/referrers/<digest>`, every page; undefined when the registry has no referrers API (404). */
async function apiReferrers(client: RegistryClient, digest: string): Promise<OciDescriptor[] | undefined> {
  const what = `referrers of ${client.registry}/${client.repository}@${digest}`;
  const out: OciDescriptor[] = [];
  const seen = new Set<string>();
  let next: string | undefined = `/v2/${client.repository}/referrers/${digest}`;
  while (next) {
    if (seen.has(next) || seen.size >= MAX_PAGES) throw new NixregError(`${what}: the registry's pages do not end (${seen.size} read)`);
    seen.add(next);
    const res = await client.send({ method: 'GET', url: next, headers: { accept: MediaType.ociIndex }, bufferBody: { limit: MAX_INDEX_BYTES, what } });
    const type = (headerValue(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    // 404 is the spec's "no referrers API"; 405/501 are what a router without the route may say instead
    if (seen.size === 1 && (res.status === 404 || res.status === 405 || res.status === 501 || (res.status === 200 && type !== MediaType.ociIndex))) {
      await res.body.dump().catch(() => {});
      return undefined;
    }
    if (res.status !== 200) return client.fail(res, what);
    out.push(...parseIndex(res.bytes ?? Buffer.alloc(0), what).manifests);
    next = nextPageLink(headerValue(res.headers, 'link'));
  }
  return out;
}

interface OciIndexDoc {
  schemaVersion: 2;
  mediaType: string;
  manifests: OciDescriptor[];
}

function parseIndex(bytes: Buffer, what: string): OciIndexDoc {
  let doc: { manifests?: unknown; mediaType?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw new NixregError(`${what}: not valid JSON`);
  }
  if (!doc || !Array.isArray(doc.manifests)) throw new NixregError(`${what}: not an image index (no "manifests" list)`);
  for (const m of doc.manifests as OciDescriptor[])
    if (!m || typeof m.digest !== 'string' || !DIGEST_RE.test(m.digest) || typeof m.mediaType !== 'string' || !Number.isSafeInteger(m.size))
      throw new NixregError(`${what}: an entry is not a descriptor (mediaType, sha256 digest, size)`);
  return doc as OciIndexDoc;
}

/** The tag schema's index for `digest`; undefined when the tag does not exist. */
async function tagIndex(client: RegistryClient, digest: string): Promise<OciIndexDoc | undefined> {
  const tag = referrersTag(digest);
  if (!(await client.headManifest(tag))) return undefined;
  const m = await client.getManifest(tag);
  const what = `referrers tag ${client.registry}/${client.repository}:${tag}`;
  if (!isIndexMediaType(m.mediaType))
    throw new NixregError(`${what} holds a ${m.mediaType}, not an image index; it is not a referrers list (remove or rename that tag)`);
  return parseIndex(m.bytes, what);
}

/** Read the tag schema's index, add the descriptor (once), write it back. */
async function addToTagIndex(client: RegistryClient, digest: string, d: OciDescriptor): Promise<void> {
  const index = (await tagIndex(client, digest)) ?? { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  if (index.manifests.some((m) => m.digest === d.digest)) return;
  const next = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...index.manifests, d] };
  await client.putManifest(referrersTag(digest), Buffer.from(JSON.stringify(next)), MediaType.ociIndex);
}
