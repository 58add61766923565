import type { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { NixregError, usageError } from '../../errors.js';
import { DIGEST_RE } from '../../digest/sha256.js';
import { parseManifest, type Descriptor, type ImageManifest } from '../../manifest/manifest.js';
import { MediaType } from '../../manifest/media-types.js';
import { parseImageReference, type ImageReference } from '../../reference/reference.js';
import { RegistryClient } from '../../registry/client.js';
import { clientOptions, type RegistryAccess } from '../../registry/access.js';
import type { RegistryClientApi } from '../../registry/types.js';
import { layerDiffID } from '../../nix/stream/layer-diffid.js';

/**
 * What the registry already holds for a push that starts with an empty cache: the images the destination's tags
 * (and any `--cache-from` images) point to. Their configs' `rootfs.diff_ids[i]` name the uncompressed content of
 * their manifests' `layers[i]`, so each maps a diffID to the compressed blob that holds it. A layer whose diffID
 * is in the map, with the media type the push asks for, need not be compressed or uploaded: the writer (write.ts)
 * HEADs the blob in the destination repository or mounts it from the repository it was found in.
 *
 * Trust: the map comes from the registry being pushed to. Manifests and configs are verified against their
 * digests (a tag's manifest is only as good as the registry's answer), an image whose layer count differs from
 * its `diff_ids` count is skipped, and the registry verifies each reused blob's existence when it is HEADed or
 * mounted. Image spec: https://github.com/opencontainers/image-spec/blob/main/config.md#properties (rootfs).
 */
export interface PreviousLayer extends Descriptor {
  /** Repository on the same registry whose image names this blob (the destination's, or a --cache-from one). */
  repository: string;
}

/** An image to read: a tag or digest in a repository of the destination registry. */
export interface PreviousImageRef {
  repository: string;
  reference: string;
}

export type ImageReader = Pick<RegistryClientApi, 'getManifest' | 'getBlob'>;

/** Configs are small JSON documents; a bigger one is not an image config worth buffering. */
const MAX_CONFIG_BYTES = 16 << 20;
/** Manifests and configs read at a time. */
const READ_CONCURRENCY = 8;

/** Layers that live outside the registry (Windows base layers): a manifest naming them cannot be reused blob by blob. */
const FOREIGN_LAYER_TYPES: ReadonlySet<string> = new Set([MediaType.dockerForeignLayerGzip, MediaType.ociLayerNondistributableGzip]);

/**
 * diffID → blob of every image that `references` point to (an index: every platform's image). Images are read in
 * the order given and the first image naming a diffID wins (unless a later one has it as `mediaType`, the media type
 * the push will write, and the first does not), so list the destination's own tags first.
 * Nothing here fails the push: a missing tag or repository, access that only allows push, a damaged or foreign
 * manifest or config is one line on `log` and that image is left out.
 */
export async function loadPreviousLayers(
  clientFor: (repository: string) => ImageReader,
  references: readonly PreviousImageRef[],
  opts: { log?: (line: string) => void; mediaType?: string } = {},
): Promise<Map<string, PreviousLayer>> {
  const { log } = opts;
  const limit = pLimit(READ_CONCURRENCY);
  const seen = new Set<string>();
  const readImage = async (ref: PreviousImageRef): Promise<KnownLayer[][]> => {
    const client = clientFor(ref.repository);
    const where = `${ref.repository}${DIGEST_RE.test(ref.reference) ? '@' : ':'}${ref.reference}`;
    try {
      const top = await limit(() => client.getManifest(ref.reference));
      const parsed = parseManifest(top.bytes, top.mediaType, `manifest ${where}`);
      if (parsed.kind === 'image') return [await imageLayers(client, ref.repository, parsed, where, limit, log)];
      const images = parsed.manifests.filter((d) => !seen.has(`${ref.repository}@${d.digest}`) && seen.add(`${ref.repository}@${d.digest}`));
      return Promise.all(
        images.map(async (d) => {
          const at = `${ref.repository}@${d.digest}`;
          try {
            // by digest: getManifest verifies the bytes against it
            const m = await limit(() => client.getManifest(d.digest));
            const child = parseManifest(m.bytes, m.mediaType, `manifest ${at}`);
            if (child.kind !== 'image') {
              log?.(`previous image ${at}: an index inside an index; not used for layer reuse`);
              return [];
            }
            return imageLayers(client, ref.repository, child, at, limit, log);
          } catch (err) {
            return skipped(err, at, log);
          }
        }),
      );
    } catch (err) {
      return [skipped(err, where, log)];
    }
  };
  const found = await Promise.all(references.map(readImage));
  const map = new Map<string, PreviousLayer>();
  for (const image of found.flat())
    for (const { diffID, blob } of image) {
      const had = map.get(diffID);
      if (!had || (opts.mediaType && had.mediaType !== opts.mediaType && blob.mediaType === opts.mediaType)) map.set(diffID, blob);
    }
  return map;
}

type Limit = ReturnType<typeof pLimit>;
type KnownLayer = { diffID: string; blob: PreviousLayer };

/** One image's layers paired with its config's diff_ids; [] (and a log line) when they do not line up. */
async function imageLayers(
  client: ImageReader,
  repository: string,
  manifest: ImageManifest,
  where: string,
  limit: Limit,
  log?: (line: string) => void,
): Promise<KnownLayer[]> {
  if (manifest.config.size > MAX_CONFIG_BYTES) {
    log?.(`previous image ${where}: config of ${manifest.config.size} bytes; not used for layer reuse`);
    return [];
  }
  const configBytes = await limit(async () => {
    const parts: Buffer[] = [];
    // getBlob checks size and sha256 while streaming
    for await (const c of await client.getBlob(manifest.config.digest, { size: manifest.config.size })) parts.push(c as Buffer);
    return Buffer.concat(parts);
  });
  const diffIDs = diffIDsOf(configBytes);
  if (!diffIDs) {
    log?.(`previous image ${where}: config ${manifest.config.digest} has no rootfs.diff_ids of sha256 digests; not used for layer reuse`);
    return [];
  }
  if (diffIDs.length !== manifest.layers.length) {
    log?.(`previous image ${where}: ${manifest.layers.length} layers but ${diffIDs.length} diff_ids; not used for layer reuse`);
    return [];
  }
  const out: KnownLayer[] = [];
  manifest.layers.forEach((l, i) => {
    if (FOREIGN_LAYER_TYPES.has(l.mediaType) || l.urls?.length) return;
    out.push({ diffID: diffIDs[i]!, blob: { mediaType: l.mediaType, digest: l.digest, size: l.size, repository } });
  });
  log?.(`previous image ${where}: ${out.length} layers known by diffID`);
  return out;
}

function diffIDsOf(config: Buffer): string[] | undefined {
  let ids: unknown;
  try {
    ids = (JSON.parse(config.toString('utf8')) as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  } catch {
    return undefined;
  }
  if (!Array.isArray(ids) || !ids.every((d): d is string => typeof d === 'string' && DIGEST_RE.test(d))) return undefined;
  return ids;
}

function skipped(err: unknown, where: string, log?: (line: string) => void): [] {
  if (!(err instanceof NixregError)) throw err;
  log?.(`previous image ${where} not read (${err.message}); its layers are not reused`);
  return [];
}

/**
 * The images a push to `destination` can reuse layers from: its own tags, then each `--cache-from` reference,
 * which must name a repository of the same registry (a blob can only be mounted within one registry).
 */
export function previousImageRefs(destination: ImageReference, tags: readonly string[], cacheFrom: readonly string[]): PreviousImageRef[] {
  const refs: PreviousImageRef[] = tags.map((reference) => ({ repository: destination.repository, reference }));
  for (const c of cacheFrom) {
    const r = parseImageReference(c.replace(/^docker:\/\//, ''));
    if (r.registry !== destination.registry)
      throw usageError(`--cache-from ${c}: not on the destination registry ${destination.registry} (blobs can only be reused within one registry)`);
    refs.push({ repository: r.repository, reference: r.digest ?? r.tag ?? 'latest' });
  }
  return refs.filter((r, i) => refs.findIndex((o) => o.repository === r.repository && o.reference === r.reference) === i);
}

const loaded = new WeakMap<object, Map<string, Promise<Map<string, PreviousLayer>>>>();

/**
 * previousLayersForPush, read when first asked and once per destination (the images of a --platform-conf push
 * share one reading of the index): a push whose cache knows every layer reads nothing.
 */
export function previousLayersOnce(
  destination: { ref: ImageReference; client: ImageReader },
  refs: readonly PreviousImageRef[],
  access: RegistryAccess,
  mediaType?: string,
): () => Promise<Map<string, PreviousLayer>> {
  return () => {
    let byKey = loaded.get(destination);
    if (!byKey) loaded.set(destination, (byKey = new Map()));
    const key = JSON.stringify([mediaType, refs]);
    let p = byKey.get(key);
    if (!p) byKey.set(key, (p = previousLayersForPush(destination, refs, access, mediaType)));
    return p;
  };
}

/**
 * loadPreviousLayers for a push (`refs` from previousImageRefs), keeping only blobs of `mediaType`: reads through
 * the destination's own client where it can, and through a pull-only client per other repository (closed afterwards).
 */
export async function previousLayersForPush(
  destination: { ref: ImageReference; client: ImageReader },
  refs: readonly PreviousImageRef[],
  access: RegistryAccess,
  mediaType?: string,
): Promise<Map<string, PreviousLayer>> {
  const others = new Map<string, RegistryClient>();
  const clientFor = (repository: string): ImageReader => {
    if (repository === destination.ref.repository) return destination.client;
    let c = others.get(repository);
    if (!c) {
      c = new RegistryClient({ ...clientOptions(access), registry: destination.ref.registry, repository });
      others.set(repository, c);
    }
    return c;
  };
  try {
    const map = await loadPreviousLayers(clientFor, refs, { ...(access.log ? { log: access.log } : {}), ...(mediaType ? { mediaType } : {}) });
    // blobs of another media type are never reused: without them an image of another codec costs no diffID pass
    if (mediaType) for (const [diffID, l] of map) if (l.mediaType !== mediaType) map.delete(diffID);
    return map;
  } finally {
    await Promise.all([...others.values()].map((c) => c.close().catch(() => {})));
  }
}

/** The previous images' layers as a push asks for them. */
export interface PreviousLayers {
  /** The map, read when the first layer asks (a push whose cache knows every layer reads nothing). */
  known(): Promise<ReadonlyMap<string, PreviousLayer>>;
  /** Media type of the layers the push writes: a blob of another (gzip vs zstd vs none, Docker vs OCI) is not reused. */
  mediaType: string;
}

/** A layer as the push holds it: its diffID may only be known after one pass over its bytes. */
export interface ReusableLayer {
  diffID?: string;
  size?: number;
  inputsKey?: string;
  open(): Promise<Readable>;
}

export interface PreviousCandidate {
  diffID: string;
  size: number;
  blob: PreviousLayer;
}

/**
 * The previous images' blob for one layer the push cache did not know, with this media type: a candidate only,
 * its presence in the destination is for the writer to check. The layer's diffID comes from a tar + sha256 pass
 * (no compression; none at all when the layer knows it up front). Costs nothing when the map is empty (a first push).
 */
export async function previousCandidate(ctx: PreviousLayers, layer: ReusableLayer): Promise<PreviousCandidate | undefined> {
  const known = await ctx.known();
  if (known.size === 0) return undefined;
  let { diffID, size } = layer;
  if (!diffID || size === undefined) {
    const bytes = await layer.open();
    // opening may have described the layer (a customisation layer reads its checksum file): then no pass is needed
    if (layer.diffID && layer.size !== undefined) {
      bytes.destroy();
      ({ diffID, size } = layer);
    } else ({ diffID, size } = await layerDiffID(bytes));
  }
  const blob = known.get(diffID!);
  if (!blob || blob.mediaType !== ctx.mediaType) return undefined;
  return { diffID: diffID!, size: size!, blob };
}
