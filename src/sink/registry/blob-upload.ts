import { Transform, Writable, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compressorStages, type PushCompression } from '../../compression/compress.js';
import { HashingStream } from '../../digest/sha256.js';
import { ExitCode, NixregError, describeSystemError, integrityError } from '../../errors.js';
import type { RegistryClientApi } from '../../registry/types.js';
import { ChunkedUploadRejected, StreamedUploadRejected, UploadSessionGone } from '../../registry/client.js';
import { STREAM_BUFFER } from '../../util/stream-buffer.js';
import { ChunksTooSmall, effectiveChunkSize, uploadInChunks } from './chunked-upload.js';
import type { LayerTee } from './archive-tee.js';
import type { BlobEntry, PushCache } from './push-cache.js';
import { releaseLayerChunk } from '../../nix/stream/store-layer.js';
import type { PreviousLayers } from './previous-image.js';
import { markPermanent, type RetryBudget } from './retry.js';

/**
 * The upload steps of the registry writer (write.ts decides which runs): what the push cache knows of a layer,
 * the --precompute-digests pass, and one upload attempt — of a generated layer (generate → diffID hash →
 * compressor → blob hash in one streaming pass into a single PATCH, chunked transfer: the compressed size and
 * digest are not known in advance, and no temporary file is written; a registry refusing that gets chunks,
 * chunked-upload.ts) or of a blob whose bytes are stored (one PATCH with Content-Length).
 */
export type BlobStatus = 'exists' | 'mounted' | 'uploaded';

export interface UploadableLayer {
  diffID?: string;
  size?: number;
  inputsKey?: string;
  open(): Promise<Readable>;
}

export interface LayerPushResult {
  diffID: string;
  /** Uncompressed tar size. */
  size: number;
  digest: string;
  /** Compressed (blob) size. */
  blobSize: number;
  status: BlobStatus;
  /** For 'mounted': the source repository. */
  from?: string;
  /** The blob of a previous image in the registry (its config's diff_ids), found without compressing the layer. */
  reused?: 'registry';
}

export interface BlobPushContext {
  client: RegistryClientApi;
  /** `registry/repository` of the destination (cache bookkeeping). */
  repoName: string;
  registry: string;
  repository: string;
  compression: PushCompression;
  /** Compression level (default: the codec's default). */
  level?: number;
  /** codecId(compression, level): the push cache's key for blobs of this codec, computed once per push. */
  codec: string;
  cache?: PushCache;
  /** Extra mount sources on the destination registry (`--mount-from`), repository paths. */
  mountFrom: string[];
  /** Attempts per upload (regenerating the layer each time). */
  attempts?: number;
  onBytes?: (n: number) => void;
  log?: (line: string) => void;
  /** --output: a tee into the local archive, started per attempt after the layer is opened. */
  tee?: () => Promise<LayerTee>;
  /**
   * --precompute-digests: for a layer the cache does not know, first generate and compress it only to learn its
   * digest, then HEAD; upload (generating again) only if missing. For fresh CI runners with an empty cache whose
   * registry already has most layers: bandwidth instead of CPU.
   */
  precompute?: boolean;
  /** --chunk-size: always upload in chunks of this many bytes (at least the registry's OCI-Chunk-Min-Length). */
  chunkSize?: number;
  /** --retry-max-time: the budget all the push's uploads retry within (waits included). */
  retryBudget?: RetryBudget;
  /** The registry's previous images (destination tags, --cache-from): tried before generating and compressing. */
  previous?: PreviousLayers;
}

/**
 * Registries (`host:port`) that refused a streamed PATCH during this run. Why switch on the first refusal rather
 * than probing up front: the streamed PATCH is one request per blob and the common case; a refusal costs one
 * cancelled session and a regenerated layer once per registry and run, after which every upload to that registry
 * (all layers, every image of a --platform-conf push) goes chunked. A dropped connection is NOT taken as a
 * refusal: it cannot be told apart from a network fault, which the ordinary retry handles.
 */
const chunkedRegistries = new Set<string>();
/** Registries that refused a chunked upload (GAR): one streamed PATCH per blob, even with --chunk-size. */
const streamedOnlyRegistries = new Set<string>();
/** The smallest chunk each registry was found to take without advertising it (ECR). */
const learnedChunkMinimum = new Map<string, number>();

function uploadsInChunks(ctx: BlobPushContext): boolean {
  if (streamedOnlyRegistries.has(ctx.registry)) return false;
  return ctx.chunkSize !== undefined || chunkedRegistries.has(ctx.registry);
}

/**
 * The registry refused the way a blob was sent, in a way that says how it wants it: remember that for the run and
 * return true (the attempt is repeated the new way, not counted as a failure); false when there is nothing left
 * to change.
 */
export function adaptUploads(ctx: BlobPushContext, err: unknown): boolean {
  const r = ctx.registry;
  if (err instanceof StreamedUploadRejected && !streamedOnlyRegistries.has(r)) {
    // not a failed attempt: the registry wants chunks. Regenerate the layer into a chunked upload.
    if (!chunkedRegistries.has(r)) ctx.log?.(`${r} refused a streamed upload (HTTP ${err.status}); using chunked uploads for it from now on`);
    chunkedRegistries.add(r);
    return true;
  }
  if (err instanceof ChunkedUploadRejected && !chunkedRegistries.has(r) && !streamedOnlyRegistries.has(r)) {
    ctx.log?.(`${r} refused a chunked upload (HTTP ${err.status}); using one streamed PATCH per blob for it from now on`);
    streamedOnlyRegistries.add(r);
    return true;
  }
  if (err instanceof ChunksTooSmall && (learnedChunkMinimum.get(r) ?? 0) < err.minimum) {
    ctx.log?.(
      `${r} refuses chunks under ${err.minimum} bytes without advertising OCI-Chunk-Min-Length (${err.message}); using chunks of at least ${err.minimum} bytes for it from now on`,
    );
    learnedChunkMinimum.set(r, err.minimum);
    return true;
  }
  return false;
}

/**
 * What the push cache knows of a layer: its diffID, tar size and blob under the push's codec. Read once per layer.
 * Without a cache only an uncompressed push of a layer with a known diffID knows its blob digest.
 */
export async function knownBlob(ctx: BlobPushContext, layer: UploadableLayer): Promise<{ diffID: string; size: number; blob: BlobEntry } | undefined> {
  if (!ctx.cache) {
    if (ctx.compression === 'none' && layer.diffID && layer.size !== undefined)
      return { diffID: layer.diffID, size: layer.size, blob: { digest: layer.diffID, size: layer.size, repos: [] } };
    return undefined;
  }
  let diffID = layer.diffID;
  let size = layer.size;
  let blob: BlobEntry | undefined;
  if (!diffID && layer.inputsKey) {
    const hit = await ctx.cache.getLayer(layer.inputsKey);
    if (hit && (size === undefined || hit.size === size)) {
      ({ diffID, size } = hit);
      blob = hit.blobs?.[ctx.codec];
    }
  }
  if (!diffID) return undefined;
  blob ??= await ctx.cache.getBlob(diffID, ctx.codec);
  if (size === undefined) {
    // A layer known by diffID alone (an OCI source's compressed layer being converted): its tar size is not known
    // without decompressing it, and a known blob does not need it; it is reported as 0.
    if (ctx.compression === 'none' || layer.inputsKey || !blob) return undefined;
    size = 0;
  }
  if (ctx.compression === 'none') blob = { digest: diffID, size, repos: blob?.repos ?? [] };
  return blob ? { diffID, size, blob } : undefined;
}

/** --precompute-digests: the layer's digests by one generate+compress pass; nothing is sent. */
export async function precomputeDigests(ctx: BlobPushContext, layer: UploadableLayer): Promise<Omit<LayerPushResult, 'status'>> {
  const diffHash = new HashingStream();
  const blobHash = new HashingStream();
  const source = await layer.open();
  await pipeline([source, diffHash, ...compressorStages(ctx.compression, ctx.level), blobHash, new Writable({ write: (_c, _e, cb) => cb() })]).catch(
    (err: unknown) => {
      throw asOneLine(err, 'generating the layer');
    },
  );
  const diffID = diffHash.digest();
  if (layer.diffID && layer.diffID !== diffID)
    throw integrityError(
      `layer ${layer.diffID} came out as ${diffID} (size ${diffHash.size}): the layer's files changed or its generation is not reproducible`,
    );
  return { diffID, size: diffHash.size, digest: blobHash.digest(), blobSize: blobHash.size };
}

/**
 * One attempt: POST, then the layer generated → diffID hash → compressor → blob hash in one streaming pass into
 * a single PATCH (or chunks), closed with `PUT ?digest=`. `chunked`: the registry assembled chunks, and the
 * caller must check the blob's size. A failed attempt cancels its session.
 */
export async function generateAndUpload(
  ctx: BlobPushContext,
  layer: UploadableLayer,
  seen: { diffID?: string },
): Promise<Omit<LayerPushResult, 'status'> & { chunked: boolean }> {
  const start = await ctx.client.startUpload();
  if (start.mounted) throw new NixregError('registry mounted a blob on a plain upload request'); // cannot happen without ?mount
  let tee: LayerTee | undefined;
  // the session's latest URL: registries that keep state in it (distribution's _state) cancel only by that one
  let location = start.location;
  try {
    const registryMin = Math.max(start.chunkMinLength ?? 0, learnedChunkMinimum.get(ctx.registry) ?? 0) || undefined;
    const chunkSize = uploadsInChunks(ctx) ? effectiveChunkSize(ctx.chunkSize, registryMin) : undefined;
    const chunks = chunkSize !== undefined ? { size: chunkSize, ...(registryMin ? { registryMin } : {}) } : undefined;
    const r = await uploadAttempt(
      ctx,
      layer,
      start.location,
      seen,
      (t) => (tee = t),
      chunks,
      (loc) => (location = loc),
    );
    return { ...r, chunked: chunks !== undefined };
  } catch (err) {
    tee?.rewind();
    if (!(err instanceof UploadSessionGone)) await ctx.client.cancelUpload(location).catch(() => {});
    throw err;
  }
}

/**
 * One attempt at a blob whose bytes and digest are known (a stored layer, a config): POST (with `?mount=&from=`
 * when a same-registry repository may hold it), one PATCH with Content-Length, `PUT ?digest=`.
 */
export async function uploadStored(
  client: RegistryClientApi,
  blob: { digest: string; size: number },
  body: () => Promise<Readable | Buffer>,
  mountFrom?: string,
): Promise<'uploaded' | 'mounted'> {
  const start = await client.startUpload(mountFrom ? { mount: blob.digest, from: mountFrom } : {});
  if (start.mounted) {
    if (mountFrom) return 'mounted';
    throw new NixregError('registry mounted a blob on a plain upload request');
  }
  let raw: Readable | Buffer | undefined;
  try {
    raw = await body();
    // size known: one PATCH with Content-Length, which registries refusing streamed PATCHes accept too
    await client.finishUpload(await client.uploadBlobStream(start.location, raw, blob.size), blob.digest);
  } catch (err) {
    if (raw && !Buffer.isBuffer(raw)) raw.destroy(); // a failed upload does not end its source: free it here
    await client.cancelUpload(start.location).catch(() => {});
    throw err;
  }
  return 'uploaded';
}

async function uploadAttempt(
  ctx: BlobPushContext,
  layer: UploadableLayer,
  location: string,
  seen: { diffID?: string },
  onTee: (t: LayerTee) => void,
  chunks: { size: number; registryMin?: number } | undefined,
  onLocation: (loc: string) => void,
): Promise<Omit<LayerPushResult, 'status'>> {
  const source = await layer.open();
  const tee = ctx.tee ? await ctx.tee() : undefined;
  if (tee) onTee(tee);
  const diffHash = new HashingStream();
  const blobHash = new HashingStream();
  const compressor = compressorStages(ctx.compression, ctx.level);
  if (ctx.compression === 'gzip') recycleInputs(compressor[0] as Transform);
  const stages: Duplex[] = [...(tee ? [tee.stage] : []), diffHash, ...compressor, blobHash];
  if (ctx.onBytes) stages.push(new ProgressCounter(ctx.onBytes)); // a 'data' listener would steal the body
  const body = stages[stages.length - 1] as Readable;
  const flowing = pipeline([source, ...stages]);
  const contentLength = ctx.compression === 'none' ? layer.size : undefined;
  const sending = chunks
    ? uploadInChunks(ctx.client, location, body, chunks.size, onLocation, chunks.registryMin)
    : ctx.client.uploadBlobStream(location, body, contentLength);
  const [gen, sent] = await Promise.allSettled([flowing, sending]);
  // Which side failed? Generation errors (store read, zstd) are NixregErrors by construction and would fail
  // the same way again; anything else reaching the pipeline is the upload's socket error echoed into it.
  if (gen.status === 'rejected' && gen.reason instanceof NixregError) throw markPermanent(gen.reason);
  // every byte was generated and hashed though the upload failed: the retry's bytes must match, and its error can name the layer
  if (gen.status === 'fulfilled') seen.diffID ??= diffHash.digest();
  if (sent.status === 'rejected') throw asOneLine(sent.reason, `blob upload to ${ctx.repoName}`);
  if (gen.status === 'rejected') throw asOneLine(gen.reason, `blob upload to ${ctx.repoName}`);
  const diffID = diffHash.digest();
  seen.diffID ??= diffID;
  if (layer.diffID && layer.diffID !== diffID)
    throw integrityError(
      `layer ${layer.diffID} came out as ${diffID} (size ${diffHash.size}): the layer's files changed or its generation is not reproducible`,
    );
  const digest = blobHash.digest();
  await tee?.finish(diffID, diffHash.size);
  await ctx.client.finishUpload(sent.value, digest);
  return { diffID, size: diffHash.size, digest, blobSize: blobHash.size };
}

/**
 * Gives each input chunk back to the layer generator once zlib has deflated all of it (recycled chunks
 * instead of ~64 MB of dead ones waiting for a full GC). Safe because every stage before it (the archive tee
 * writes before passing a chunk on, the diffID hash reads it synchronously) is done with a chunk by then, and
 * zlib's transform callback runs only when the chunk's last byte has been consumed.
 */
function recycleInputs(zlibStage: Transform): void {
  const transform = zlibStage._transform.bind(zlibStage);
  zlibStage._transform = (chunk: Buffer, enc: BufferEncoding, cb: TransformCallback) =>
    transform(chunk, enc, (err?: Error | null, data?: unknown) => {
      if (!err) {
        releaseLayerChunk(chunk);
        collectYoungGarbage(chunk.length);
      }
      cb(err, data);
    });
}

/*
 * zlib's output buffers cannot be recycled (the HTTP client holds them until the socket has written them), and V8
 * frees dead ArrayBuffers only when a GC runs: streaming pushes allocate few JS objects, so no young-generation GC
 * comes for a long time and ~64 MB of dead output piles up before external-memory pressure forces a full GC.
 * A minor (scavenge) GC every 16 MiB of layer bytes frees them; it costs under a millisecond with a young
 * generation this small (measured on a 1 GiB cold push: peak RSS -22 MB, wall time unchanged). `gc` is not
 * exposed without --expose-gc; setting the flag at run time makes V8 install it in a new context.
 */
const GC_EVERY_BYTES = 16 << 20;
let bytesSinceGc = 0;
let minorGc: ((opts: { type: 'minor' }) => void) | null | undefined;

function collectYoungGarbage(bytes: number): void {
  bytesSinceGc += bytes;
  if (bytesSinceGc < GC_EVERY_BYTES) return;
  bytesSinceGc = 0;
  if (minorGc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('gc');
      minorGc = typeof gc === 'function' ? (gc as (opts: { type: 'minor' }) => void) : null;
    } catch {
      minorGc = null;
    }
  }
  minorGc?.({ type: 'minor' });
}

function asOneLine(err: unknown, what: string): Error {
  if (err instanceof NixregError) return err;
  return new NixregError(`${what}: ${describeSystemError(err)}`, ExitCode.failure, { cause: err });
}

/** Reports bytes passing through (a 'data' listener instead would switch the body to flowing mode and lose it). */
export class ProgressCounter extends Transform {
  constructor(private readonly onBytes: (n: number) => void) {
    super({ highWaterMark: STREAM_BUFFER });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.onBytes(chunk.length);
    cb(null, chunk);
  }
}

/**
 * `source` through a byte counter: a failure of the source (its verification) ends the counter with it, and the
 * counter ending early (the upload failed) frees the source, which pipe() would leave open.
 */
export function countedStream(source: Readable, onBytes: (n: number) => void): Readable {
  const counter = new ProgressCounter(onBytes);
  source.on('error', (e) => counter.destroy(e));
  counter.on('close', () => source.destroy());
  return source.pipe(counter);
}
