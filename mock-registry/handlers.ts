import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { RegistryError, type ErrorEntry } from './errors.js';
import { sendBody, type FaultRule } from './faults.js';
import { MT, parseManifest } from './manifests.js';
import { ANY_DIGEST_RE, SHA256_RE, TAG_RE, validName, isDigestRef } from './names.js';
import type { Counters } from './stats.js';
import type { Storage, Upload } from './storage.js';

/** Everything an endpoint handler needs for one request. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  name: string;
  ref: string;
  storage: Storage;
  counters: Counters;
  faults: FaultRule[];
  /** may this request pull from another repository? (cross-repo mount source) */
  canPull(name: string): boolean;
  options: HandlerOptions;
}

export interface HandlerOptions {
  /** advertised on upload POST responses (OCI-Chunk-Min-Length); 0 = not advertised */
  chunkMinLength: number;
  /** status for a streamed PATCH (neither Content-Length nor Content-Range); 0 = accept it */
  rejectStreamedPatch: number;
  /** only the last chunk may be shorter than chunkMinLength: a chunk after a short one gets 416 */
  enforceChunkMinLength: boolean;
  /** mount a blob found anywhere in the registry when POST has `mount` without `from` (OCI 1.1) */
  anonymousMount: boolean;
  /** allow DELETE of manifests, tags and blobs (405 UNSUPPORTED otherwise) */
  deleteEnabled: boolean;
  /** largest manifest accepted, bytes */
  maxManifestBytes: number;
  /** cap on tags/_catalog page size when the client sends no `n` (undefined = everything) */
  pageSize?: number;
}

const API = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const enc = encodeURIComponent;

function reply(res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer | string): void {
  const b = body === undefined ? undefined : Buffer.from(body);
  res.writeHead(status, { ...API, 'Content-Length': b?.length ?? 0, ...headers });
  res.end(b);
}
function json(ctx: Ctx, status: number, doc: unknown, headers: Record<string, string | number> = {}): void {
  reply(ctx.res, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(doc));
}

function needRepo(ctx: Ctx): void {
  if (!ctx.storage.hasRepo(ctx.name)) throw new RegistryError(404, 'NAME_UNKNOWN', `repository ${ctx.name} not known to registry`, { name: ctx.name });
}
function needDelete(ctx: Ctx): void {
  if (!ctx.options.deleteEnabled) throw new RegistryError(405, 'UNSUPPORTED', 'deletes are disabled on this registry');
}
function blobDigest(_ctx: Ctx, d: string): string {
  if (!SHA256_RE.test(d)) {
    if (ANY_DIGEST_RE.test(d)) throw new RegistryError(400, 'DIGEST_INVALID', `unsupported digest algorithm in ${d}; only sha256`, { digest: d });
    throw new RegistryError(400, 'DIGEST_INVALID', `invalid digest ${d}`, { digest: d });
  }
  return d;
}

/** Read a small request body (manifests), refusing more than `limit` bytes. */
async function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new RegistryError(413, 'SIZE_INVALID', `manifest larger than ${limit} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------------------------------------ /v2/
export function ping(ctx: Ctx): void {
  json(ctx, 200, {});
}

// ------------------------------------------------------------------------------------------------ manifests
function manifestRef(ctx: Ctx, forWrite: boolean): string {
  const ref = ctx.ref;
  if (isDigestRef(ref)) {
    if (SHA256_RE.test(ref)) return ref;
    if (forWrite || !ANY_DIGEST_RE.test(ref)) throw new RegistryError(400, 'DIGEST_INVALID', `invalid or unsupported digest ${ref}`, { digest: ref });
    throw new RegistryError(404, 'MANIFEST_UNKNOWN', `manifest ${ref} unknown`, { digest: ref });
  }
  // A reference that is not a valid tag names no manifest: distribution answers GET/HEAD with 404 (its router
  // matches no route), and the OCI distribution-spec conformance suite expects 404 there; a PUT, or a URL whose
  // escapes do not decode (a '%' left in the reference), is refused with 400.
  if (!TAG_RE.test(ref)) {
    if (!forWrite && !ref.includes('%'))
      throw new RegistryError(404, 'MANIFEST_UNKNOWN', `no manifest can be named "${ref.slice(0, 140)}": not a valid tag`, { tag: ref });
    throw new RegistryError(400, 'MANIFEST_INVALID', `invalid tag "${ref.slice(0, 140)}"`, { tag: ref });
  }
  return ref;
}

export async function getManifest(ctx: Ctx): Promise<void> {
  const head = ctx.method === 'HEAD';
  const ref = manifestRef(ctx, false);
  if (head) {
    ctx.counters.manifestHeads++;
    ctx.counters.heads++;
  } else ctx.counters.manifestGets++;
  needRepo(ctx);
  const m = ctx.storage.resolve(ctx.name, ref);
  if (!m) throw new RegistryError(404, 'MANIFEST_UNKNOWN', `manifest ${ref} unknown to registry`, isDigestRef(ref) ? { digest: ref } : { tag: ref });
  const headers = {
    ...API,
    'Content-Type': m.info.mediaType,
    'Content-Length': m.body.length,
    'Docker-Content-Digest': m.info.digest,
    ETag: `"${m.info.digest}"`,
  };
  ctx.res.writeHead(200, headers);
  if (head) return void ctx.res.end();
  await sendBody(ctx.res, Readable.from([m.body]), m.body.length, ctx.faults);
}

export async function putManifest(ctx: Ctx): Promise<void> {
  const ref = manifestRef(ctx, true);
  const body = await readLimited(ctx.req, ctx.options.maxManifestBytes);
  const digest = 'sha256:' + createHash('sha256').update(body).digest('hex');
  if (isDigestRef(ref) && ref !== digest)
    throw new RegistryError(400, 'DIGEST_INVALID', `manifest digest is ${digest}, not ${ref}`, { expected: ref, actual: digest });
  const info = parseManifest(body, ctx.req.headers['content-type'], digest);
  const missing: ErrorEntry[] = [];
  for (const b of info.blobs)
    if (ctx.storage.blobSize(ctx.name, b) === undefined)
      missing.push({ code: 'MANIFEST_BLOB_UNKNOWN', message: `blob ${b} unknown to repository ${ctx.name}`, detail: { digest: b } });
  for (const c of info.children)
    if (!ctx.storage.hasManifest(ctx.name, c))
      missing.push({ code: 'MANIFEST_BLOB_UNKNOWN', message: `manifest ${c} unknown to repository ${ctx.name}`, detail: { digest: c } });
  if (missing.length) throw RegistryError.many(400, missing);
  await ctx.storage.putManifest(ctx.name, info, body, isDigestRef(ref) ? undefined : ref);
  ctx.counters.manifestPuts++;
  reply(ctx.res, 201, {
    Location: `/v2/${ctx.name}/manifests/${digest}`,
    'Docker-Content-Digest': digest,
    ...(info.subject ? { 'OCI-Subject': info.subject } : {}),
  });
}

export async function deleteManifest(ctx: Ctx): Promise<void> {
  needDelete(ctx);
  const ref = manifestRef(ctx, false);
  needRepo(ctx);
  const ok = isDigestRef(ref) ? await ctx.storage.deleteManifest(ctx.name, ref) : await ctx.storage.deleteTag(ctx.name, ref);
  if (!ok) throw new RegistryError(404, 'MANIFEST_UNKNOWN', `manifest ${ref} unknown to registry`);
  reply(ctx.res, 202, {});
}

// ------------------------------------------------------------------------------------------------ blobs
/** Parse a single `bytes=` range; undefined = serve the whole blob (absent, malformed or multi-range). */
function parseRange(h: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = h && /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined; // invalid → ignored, per RFC 9110
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export async function getBlob(ctx: Ctx): Promise<void> {
  const head = ctx.method === 'HEAD';
  const digest = blobDigest(ctx, ctx.ref);
  // counted whether or not the blob exists: clients' existence checks are what tests want to see
  if (head) {
    ctx.counters.blobHeads++;
    ctx.counters.heads++;
  } else ctx.counters.blobGets++;
  needRepo(ctx);
  const size = ctx.storage.blobSize(ctx.name, digest);
  if (size === undefined) throw new RegistryError(404, 'BLOB_UNKNOWN', `blob ${digest} unknown to registry`, { digest });
  const base = {
    ...API,
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes',
    ETag: `"${digest}"`,
  };
  const ignoreRange = ctx.faults.some((f) => f.kind === 'ignore-range');
  const range = ignoreRange ? undefined : parseRange(ctx.req.headers.range, size);
  if (range === 'unsatisfiable') {
    ctx.res.writeHead(416, { ...base, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
    return void ctx.res.end();
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  const len = end - start + 1;
  ctx.res.writeHead(range ? 206 : 200, {
    ...base,
    'Content-Length': len,
    ...(range ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (head) return void ctx.res.end();
  const sent = await sendBody(ctx.res, ctx.storage.readBlob(digest, start, end), len, ctx.faults);
  ctx.counters.blobBytesServed += sent;
}

export async function deleteBlob(ctx: Ctx): Promise<void> {
  needDelete(ctx);
  const digest = blobDigest(ctx, ctx.ref);
  needRepo(ctx);
  if (!(await ctx.storage.unlinkBlob(ctx.name, digest))) throw new RegistryError(404, 'BLOB_UNKNOWN', `blob ${digest} unknown to registry`, { digest });
  reply(ctx.res, 202, {});
}

// ------------------------------------------------------------------------------------------------ uploads
function uploadHeaders(ctx: Ctx, u: Upload): Record<string, string> {
  return {
    Location: `/v2/${ctx.name}/blobs/uploads/${u.id}`,
    // distribution's convention: "0-0" also for an empty upload
    Range: `0-${Math.max(u.size - 1, 0)}`,
    'Docker-Upload-UUID': u.id,
    'Blob-Upload-Session-ID': u.id,
  };
}

function blobCreated(ctx: Ctx, digest: string): void {
  reply(ctx.res, 201, { Location: `/v2/${ctx.name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
}

function contentLength(req: IncomingMessage): number | undefined {
  const h = req.headers['content-length'];
  return h === undefined ? undefined : Number(h);
}

export async function startUpload(ctx: Ctx): Promise<void> {
  if (ctx.ref !== '') throw new RegistryError(404, 'BLOB_UPLOAD_UNKNOWN', 'POST goes to /v2/<name>/blobs/uploads/');
  const q = ctx.url.searchParams;
  const mount = q.get('mount');
  const from = q.get('from');
  if (mount !== null) {
    // Mount when we can; otherwise fall back to an ordinary upload session (202), as the spec asks.
    let ok = false;
    if (SHA256_RE.test(mount)) {
      if (from !== null) ok = validName(from) && ctx.storage.blobSize(from, mount) !== undefined && ctx.canPull(from);
      else ok = ctx.options.anonymousMount && ctx.storage.anyBlobSize(mount) !== undefined;
    }
    if (ok) {
      await ctx.storage.linkBlob(ctx.name, mount);
      ctx.counters.mounts++;
      return blobCreated(ctx, mount);
    }
    ctx.counters.mountFallbacks++;
  }
  const digest = q.get('digest');
  if (digest !== null) {
    blobDigest(ctx, digest);
    const u = await ctx.storage.startUpload(ctx.name);
    ctx.counters.blobUploadsStarted++;
    ctx.counters.monolithicUploads++;
    try {
      // read the counter after the await: `x += await y` loses concurrent uploads' bytes
      const putBytesNow = await ctx.storage.append(u, ctx.req, contentLength(ctx.req));
      ctx.counters.putBytes += putBytesNow;
    } catch (err) {
      await ctx.storage.cancelUpload(u);
      throw err;
    }
    await ctx.storage.commitUpload(u, digest);
    ctx.counters.blobUploadsCompleted++;
    return blobCreated(ctx, digest);
  }
  const u = await ctx.storage.startUpload(ctx.name);
  ctx.counters.blobUploadsStarted++;
  ctx.req.resume(); // a POST body is not part of the blob here
  reply(ctx.res, 202, {
    ...uploadHeaders(ctx, u),
    ...(ctx.options.chunkMinLength > 0 ? { 'OCI-Chunk-Min-Length': String(ctx.options.chunkMinLength) } : {}),
  });
}

function session(ctx: Ctx): Upload {
  const u = ctx.storage.getUpload(ctx.name, ctx.ref);
  if (!u) throw new RegistryError(404, 'BLOB_UPLOAD_UNKNOWN', `upload ${ctx.ref.slice(0, 80)} unknown to registry`);
  return u;
}

/**
 * Check an optional `Content-Range: <start>-<end>` against the upload; returns the chunk length it announces.
 * Out-of-order or malformed ranges get 416 with the current Range, so the client can resume.
 */
function chunkRange(ctx: Ctx, u: Upload): number | undefined {
  const h = ctx.req.headers['content-range'];
  const cl = contentLength(ctx.req);
  if (h === undefined) return cl;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(h.trim());
  const range416 = (msg: string) => new RegistryError(416, 'BLOB_UPLOAD_INVALID', msg, { range: h, offset: u.size }, { ...uploadHeaders(ctx, u) });
  if (!m) throw range416(`malformed Content-Range "${h.slice(0, 80)}"`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw range416(`malformed Content-Range "${h}"`);
  if (start !== u.size) throw range416(`chunk out of order: starts at ${start}, upload has ${u.size} bytes`);
  const len = end - start + 1;
  if (cl !== undefined && cl !== len) throw new RegistryError(400, 'SIZE_INVALID', `Content-Length ${cl} differs from Content-Range ${h}`);
  return len;
}

async function withSession<T>(u: Upload, fn: () => Promise<T>): Promise<T> {
  if (u.busy) throw new RegistryError(400, 'BLOB_UPLOAD_INVALID', 'another request is writing to this upload');
  u.busy = true;
  try {
    return await fn();
  } finally {
    u.busy = false;
  }
}

/** Uploads that received a chunk shorter than OCI-Chunk-Min-Length: that must have been the last one. */
const shortChunkSeen = new WeakSet<Upload>();

export async function patchUpload(ctx: Ctx): Promise<void> {
  const u = session(ctx);
  const streamed = ctx.req.headers['content-range'] === undefined && ctx.req.headers['content-length'] === undefined;
  if (streamed && ctx.options.rejectStreamedPatch) {
    // Read the body before refusing: answering mid-body makes the client's write fail with a reset before it can
    // read the status (timing-dependent), and a reset is retried as a network fault, not taken as a refusal.
    // Resets are what the fault options are for; this option is about the status.
    for await (const _ of ctx.req) void _;
    throw new RegistryError(
      ctx.options.rejectStreamedPatch,
      'BLOB_UPLOAD_INVALID',
      'streamed uploads are not accepted here: send chunks with Content-Range and Content-Length',
      undefined,
      { Connection: 'close' },
    );
  }
  await withSession(u, async () => {
    const expect = chunkRange(ctx, u);
    if (ctx.options.enforceChunkMinLength && ctx.req.headers['content-range'] !== undefined) {
      if (shortChunkSeen.has(u))
        throw new RegistryError(
          416,
          'BLOB_UPLOAD_INVALID',
          `a chunk shorter than the minimum (${ctx.options.chunkMinLength}) was not the last`,
          undefined,
          uploadHeaders(ctx, u),
        );
      if ((expect ?? 0) < ctx.options.chunkMinLength) shortChunkSeen.add(u);
    }
    ctx.counters.patchRequests++;
    const patchBytesNow = await ctx.storage.append(u, ctx.req, expect);
    ctx.counters.patchBytes += patchBytesNow;
  });
  reply(ctx.res, 202, uploadHeaders(ctx, u));
}

export async function putUpload(ctx: Ctx): Promise<void> {
  const u = session(ctx);
  const digests = ctx.url.searchParams.getAll('digest');
  if (digests.length === 0) throw new RegistryError(400, 'DIGEST_INVALID', 'closing PUT needs ?digest=');
  for (const d of digests) blobDigest(ctx, d);
  await withSession(u, async () => {
    const expect = chunkRange(ctx, u);
    const putBytesNow = await ctx.storage.append(u, ctx.req, expect);
    ctx.counters.putBytes += putBytesNow;
    if (digests.some((d) => d !== digests[0])) {
      await ctx.storage.cancelUpload(u);
      throw new RegistryError(400, 'DIGEST_INVALID', 'the digest parameters disagree');
    }
    await ctx.storage.commitUpload(u, digests[0]!);
  });
  ctx.counters.blobUploadsCompleted++;
  blobCreated(ctx, digests[0]!);
}

export function uploadStatus(ctx: Ctx): void {
  reply(ctx.res, 204, uploadHeaders(ctx, session(ctx)));
}

export async function cancelUpload(ctx: Ctx): Promise<void> {
  const u = session(ctx);
  await ctx.storage.cancelUpload(u);
  ctx.counters.blobUploadsCancelled++;
  reply(ctx.res, 204, {});
}

// ------------------------------------------------------------------------------------------------ listings
function paginate(ctx: Ctx, all: string[], path: string): { items: string[]; link?: string } {
  const q = ctx.url.searchParams;
  const nRaw = q.get('n');
  const last = q.get('last');
  if (nRaw !== null && !/^\d+$/.test(nRaw)) throw new RegistryError(400, 'UNSUPPORTED', `n must be a non-negative integer, got "${nRaw.slice(0, 20)}"`);
  const n = nRaw !== null ? Number(nRaw) : ctx.options.pageSize;
  const after = last === null ? all : all.filter((t) => t > last);
  if (n === undefined) return { items: after };
  const items = after.slice(0, n);
  if (n === 0 || items.length === after.length) return { items };
  const link = `<${path}?n=${n}&last=${enc(items[items.length - 1]!)}>; rel="next"`;
  return { items, link };
}

export function listTags(ctx: Ctx): void {
  needRepo(ctx);
  const { items, link } = paginate(ctx, ctx.storage.tags(ctx.name)!, `/v2/${ctx.name}/tags/list`);
  json(ctx, 200, { name: ctx.name, tags: items }, link ? { Link: link } : {});
}

export function catalog(ctx: Ctx): void {
  const { items, link } = paginate(ctx, ctx.storage.repoNames(), '/v2/_catalog');
  json(ctx, 200, { repositories: items }, link ? { Link: link } : {});
}

export function referrers(ctx: Ctx): void {
  const digest = blobDigest(ctx, ctx.ref);
  const want = ctx.url.searchParams.get('artifactType');
  const manifests = ctx.storage
    .manifests(ctx.name)
    .filter((m) => m.info.subject === digest)
    .filter((m) => want === null || m.info.artifactType === want)
    .sort((a, b) => (a.info.digest < b.info.digest ? -1 : 1))
    .map((m) => ({
      mediaType: m.info.mediaType,
      digest: m.info.digest,
      size: m.info.size,
      ...(m.info.artifactType ? { artifactType: m.info.artifactType } : {}),
      ...(m.info.annotations ? { annotations: m.info.annotations } : {}),
    }));
  // The spec: a registry with the referrers API never answers 404 here, even for an unknown repository.
  json(
    ctx,
    200,
    { schemaVersion: 2, mediaType: MT.ociIndex, manifests },
    {
      'Content-Type': MT.ociIndex,
      ...(want !== null ? { 'OCI-Filters-Applied': 'artifactType' } : {}),
    },
  );
}
