import type { Readable } from 'node:stream';
import { integrityError } from '../../errors.js';
import type { RegistryAccess } from '../../registry/access.js';
import type { RegistryClientApi } from '../../registry/types.js';
import {
  generateAndUpload,
  knownBlob,
  adaptUploads,
  precomputeDigests,
  uploadStored,
  type BlobPushContext,
  type BlobStatus,
  type LayerPushResult,
  type UploadableLayer,
} from './blob-upload.js';
import type { LayerTee } from './archive-tee.js';
import type { Destination } from './destination.js';
import { mountCandidates, mountFromAny } from './mount.js';
import { previousCandidate, type PreviousLayer } from './previous-image.js';
import type { PushCache } from './push-cache.js';
import { RetryBudget, withRetries, type RetryPolicy } from './retry.js';

/**
 * The one writer of a blob into a registry. Per blob it asks, in order, and stops at the first that knows:
 *
 * 1. the push cache (blob by inputsKey/diffID and codec) → HEAD it, else mount it from a repository of the same
 *    registry that has it (--mount-from, where the cache saw it); the store is never read;
 * 2. the destination's previous image and --cache-from images (diffID → blob) → HEAD, else mount;
 * 3. --precompute-digests: learn the digest by a compress-only pass → HEAD;
 * 4. upload, with retries (retry.ts): generate + compress a layer, or stream stored bytes.
 *
 * A blob whose stored descriptor is known (an OCI source kept as stored, a registry-to-registry copy, a config)
 * starts at "HEAD that digest", then mounts, then uploads its stored bytes. The cache is read once per layer and
 * written once, after the registry holds the blob. This file alone asks a registry whether it has a blob.
 */

/** Does the destination hold `digest` (of `size` bytes, when the registry says how big)? */
async function present(client: Pick<RegistryClientApi, 'headBlob'>, digest: string, size?: number): Promise<boolean> {
  const head = await client.headBlob(digest);
  if (!head) return false;
  return size === undefined || !Number.isSafeInteger(head.size) || head.size === size;
}

function policyOf(ctx: BlobPushContext): RetryPolicy {
  // a streamed PATCH cannot be replayed by the transport: each attempt regenerates the layer
  return {
    attempts: ctx.attempts ?? 3,
    baseDelayMs: 250,
    ...(ctx.retryBudget ? { budget: ctx.retryBudget } : {}),
    ...(ctx.log ? { log: ctx.log } : {}),
  };
}

async function record(ctx: BlobPushContext, layer: UploadableLayer, r: LayerPushResult): Promise<LayerPushResult> {
  const inputs = layer.inputsKey ? { inputsKey: layer.inputsKey } : {};
  await ctx.cache?.recordBlob({ diffID: r.diffID, size: r.size, ...inputs }, ctx.codec, { digest: r.digest, size: r.blobSize }, ctx.repoName);
  return r;
}

/** Step 1, the cheap one (no store read): undefined when the cache does not know the blob or the registry lost it. */
export async function writeKnownLayer(ctx: BlobPushContext, layer: UploadableLayer): Promise<LayerPushResult | undefined> {
  const known = await knownBlob(ctx, layer);
  if (!known) return undefined;
  const { diffID, size, blob } = known;
  const r = { diffID, size, digest: blob.digest, blobSize: blob.size };
  if (await present(ctx.client, blob.digest)) return record(ctx, layer, { ...r, status: 'exists' });
  const from = await mountFromAny(ctx.client, blob.digest, mountCandidates(ctx.registry, ctx.mountFrom, blob.repos, [ctx.repository]), ctx.log);
  if (!from) return undefined;
  return record(ctx, layer, { ...r, status: 'mounted', from });
}

export interface NewLayerHooks {
  /** Called when the layer is about to be generated for an upload. */
  uploading?(): void;
  onBytes?(n: number): void;
  /** --output: a tee into the local archive, started per attempt; previous images and precomputing are skipped. */
  tee?: () => Promise<LayerTee>;
}

/** Steps 2 to 4, for a layer step 1 did not place. */
export async function writeNewLayer(ctx: BlobPushContext, layer: UploadableLayer, hooks: NewLayerHooks = {}): Promise<LayerPushResult> {
  if (ctx.previous && !hooks.tee) {
    const hit = await previousCandidate(ctx.previous, layer);
    const placed = hit && (await placePreviousBlob(ctx.client, ctx.repository, hit.blob, ctx.log));
    if (hit && placed) {
      ctx.log?.(`${hit.diffID}: reused from registry as ${hit.blob.digest}${placed.from ? ` (mounted from ${placed.from})` : ''}`);
      return record(ctx, layer, { diffID: hit.diffID, size: hit.size, digest: hit.blob.digest, blobSize: hit.blob.size, ...placed, reused: 'registry' });
    }
  }
  if (ctx.precompute && !hooks.tee) {
    const d = await precomputeDigests(ctx, layer);
    if (await present(ctx.client, d.digest)) return record(ctx, layer, { ...d, status: 'exists' });
  }
  hooks.uploading?.();
  return record(
    ctx,
    layer,
    await uploadLayer({ ...ctx, ...(hooks.onBytes ? { onBytes: hooks.onBytes } : {}), ...(hooks.tee ? { tee: hooks.tee } : {}) }, layer),
  );
}

/**
 * A previous image's blob made sure to be in the destination repository: HEAD there (its size must match), else a
 * cross-repository mount from the repository it was found in. undefined: the registry no longer has it.
 */
export async function placePreviousBlob(
  client: Pick<RegistryClientApi, 'headBlob' | 'startUpload' | 'cancelUpload'>,
  repository: string,
  blob: PreviousLayer,
  log?: (line: string) => void,
): Promise<{ status: 'exists' | 'mounted'; from?: string } | undefined> {
  if (await present(client, blob.digest, blob.size)) return { status: 'exists' };
  if (blob.repository !== repository) {
    const from = await mountFromAny(client, blob.digest, [blob.repository], log);
    if (from) return { status: 'mounted', from };
  }
  log?.(`${blob.digest} of the previous image is not in ${blob.repository}; uploading it`);
  return undefined;
}

/** Step 4 for a generated layer: generate, compress, hash and upload in one pass, retried whole. */
async function uploadLayer(ctx: BlobPushContext, layer: UploadableLayer): Promise<LayerPushResult> {
  // A retry regenerates the layer; if an earlier attempt got as far as its diffID, the new bytes must match it.
  const seen: { diffID?: string } = {};
  const r = await withRetries(policyOf(ctx), () => generateAndUpload(ctx, seen.diffID && !layer.diffID ? { ...layer, diffID: seen.diffID } : layer, seen), {
    retryLine: (m, wait, next, all) => `upload failed (${m}); regenerating the layer and retrying in ${wait} ms (${next}/${all})`,
    adapt: (err) => adaptUploads(ctx, err),
    what: () => `layer ${layer.diffID ?? seen.diffID ?? ''} upload to ${ctx.repoName}`.replace('layer  ', 'layer '),
  });
  // the registry assembled the chunks: its blob must be the size we sent (a registry that dropped or doubled
  // a chunk could still commit if its digest check is lax)
  const head = r.chunked ? await ctx.client.headBlob(r.digest) : undefined;
  if (r.chunked && head?.size !== r.blobSize) {
    throw integrityError(`blob ${r.digest} on ${ctx.repoName} is ${head ? `${head.size} bytes` : 'missing'} after a chunked upload of ${r.blobSize} bytes`);
  }
  return { diffID: r.diffID, size: r.size, digest: r.digest, blobSize: r.blobSize, status: 'uploaded' };
}

/** Where a blob with known bytes goes, and what may already hold it. */
export interface StoredBlobContext {
  client: RegistryClientApi;
  registry: string;
  repository: string;
  /** `registry/repository` of the destination (cache bookkeeping). */
  repoName: string;
  /** Repositories on the destination registry to mount from (--mount-from). */
  mountFrom: readonly string[];
  /** Where blobs were seen before (mount candidates); each blob is recorded as being in the destination. */
  cache?: Pick<PushCache, 'reposOf' | 'recordRepo'>;
  /** A repository of the same registry that has the blob (a registry-to-registry copy's source): mounted in the upload's own POST. */
  sourceRepository?: string;
  retry: RetryPolicy;
}

export interface StoredBlob {
  digest: string;
  size: number;
  /** The stored bytes, opened once per attempt (a Buffer can be replayed by the transport, and follow a 307). */
  open(): Promise<Readable | Buffer>;
}

/** HEAD → mount (--mount-from, the cache's repositories) → upload of the stored bytes (mounting from the source repository in the same POST), retried. */
export async function writeStoredBlob(
  ctx: StoredBlobContext,
  blob: StoredBlob,
  hooks: { uploading?(): void } = {},
): Promise<{ status: BlobStatus; from?: string }> {
  const seen = (await ctx.cache?.reposOf(blob.digest)) ?? [];
  const done = async (r: { status: BlobStatus; from?: string }) => {
    await ctx.cache?.recordRepo(blob.digest, ctx.repoName, seen);
    return r;
  };
  if (await present(ctx.client, blob.digest)) return done({ status: 'exists' });
  const except = [ctx.repository, ...(ctx.sourceRepository ? [ctx.sourceRepository] : [])];
  const from = await mountFromAny(ctx.client, blob.digest, mountCandidates(ctx.registry, ctx.mountFrom, seen, except), ctx.retry.log);
  if (from) return done({ status: 'mounted', from });
  const sourceMount = ctx.sourceRepository !== undefined && ctx.sourceRepository !== ctx.repository ? ctx.sourceRepository : undefined;
  let announced = false;
  const status = await withRetries(
    ctx.retry,
    () =>
      uploadStored(
        ctx.client,
        blob,
        async () => {
          if (!announced) hooks.uploading?.();
          announced = true;
          return blob.open();
        },
        sourceMount,
      ),
    {
      retryLine: (m, _wait, next, all) => `copy of ${blob.digest} failed (${m}); retrying (${next}/${all})`,
      alreadyThere: async () => ((await present(ctx.client, blob.digest, blob.size)) ? 'uploaded' : undefined),
      what: () => `blob ${blob.digest} upload to ${ctx.repoName}`,
    },
  );
  return done(status === 'mounted' ? { status, ...(sourceMount ? { from: sourceMount } : {}) } : { status });
}

/**
 * A blob held in memory (an artifact's layer, a signature payload, a config) written into `client`'s own
 * repository: HEAD, else one upload, retried like every other blob.
 */
export async function writeBufferBlob(
  client: RegistryClientApi & { registry: string; repository: string },
  bytes: Buffer,
  digest: string,
  retry: RetryPolicy = uploadRetryPolicy({}),
): Promise<BlobStatus> {
  const ctx: StoredBlobContext = {
    client,
    registry: client.registry,
    repository: client.repository,
    repoName: `${client.registry}/${client.repository}`,
    mountFrom: [],
    retry,
  };
  return (await writeStoredBlob(ctx, { digest, size: bytes.length, open: async () => bytes })).status;
}

/** Whole-upload retries as --retry-times/--retry-delay/--retry-max-time ask for them (the transport's own are per request). */
export function uploadRetryPolicy(access: RegistryAccess): RetryPolicy {
  const r = access.retry;
  return {
    attempts: (r?.times ?? 4) + 1,
    baseDelayMs: r?.baseDelayMs ?? 1000,
    maxDelayMs: r?.maxDelayMs ?? 30_000,
    ...(r?.totalMs !== undefined ? { budget: new RetryBudget(r.totalMs) } : {}),
    ...(access.log ? { log: access.log } : {}),
  };
}

/** The context for writing stored blobs (config, OCI layers kept as stored, copied blobs) into `dest`. */
export function storedBlobContext(
  dest: Destination,
  access: RegistryAccess,
  extra: { mountFrom?: readonly string[]; cache?: StoredBlobContext['cache']; sourceRepository?: string } = {},
): StoredBlobContext {
  return {
    client: dest.client,
    registry: dest.ref.registry,
    repository: dest.ref.repository,
    repoName: dest.repoName,
    mountFrom: extra.mountFrom ?? [],
    ...(extra.cache ? { cache: extra.cache } : {}),
    ...(extra.sourceRepository !== undefined ? { sourceRepository: extra.sourceRepository } : {}),
    retry: uploadRetryPolicy(access),
  };
}
