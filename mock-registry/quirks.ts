import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { AuthOptions } from './auth.js';
import { RegistryError } from './errors.js';
import type { FaultRule } from './faults.js';
import type { Route } from './names.js';

/**
 * Quirk profiles: named, composable bundles of behaviours that real registries show and the spec does not ask for
 * (`startRegistry({ quirks: 'ghcr,zot' })`, `mock-registry --quirks ghcr`). A profile is data (a `Quirks` object,
 * one file per registry: quirks-<name>.ts, each citing its public sources); this file applies it to requests and
 * answers. Options the server already has (chunkMinLength, pageSize, ...) are given as `options`; the rest are
 * acted on here, before the handlers run or on the headers they write.
 */
export interface QuirkServerOptions {
  chunkMinLength?: number;
  enforceChunkMinLength?: boolean;
  anonymousMount?: boolean;
  pageSize?: number;
  rejectStreamedPatch?: number;
}

export type DigestHeaderSite = 'manifest-head' | 'manifest-get' | 'blob-head' | 'upload-put';

export interface Quirks {
  /** server options the profile sets (the caller's explicit options win) */
  options?: QuirkServerOptions;
  /** auth mode and token behaviour; the caller's users and grants are kept */
  auth?: Partial<Pick<AuthOptions, 'mode' | 'anonymousPull' | 'tokenTtlSeconds' | 'service'>>;
  /** serve the token endpoint on a second listener (another port), as auth.docker.io is another host */
  realmOnOtherPort?: boolean;
  /** fault rules appended to the caller's */
  faults?: FaultRule[];
  /** answers that leave out Docker-Content-Digest */
  omitDigestHeader?: DigestHeaderSite[];
  /** upload Locations as absolute URLs (scheme://host:port/...) instead of paths */
  absoluteLocation?: boolean;
  /** upload Locations under this path prefix (stripped again on the way in), with a long opaque query token */
  uploadPathPrefix?: string;
  /** enforce the chunk minimum but do not advertise it (no OCI-Chunk-Min-Length) */
  hideChunkMinLength?: boolean;
  /** upload `Range` answers carry a unit: `bytes=0-N` */
  rangeUnit?: boolean;
  /** status of an accepted chunk PATCH (spec: 202) */
  patchStatus?: number;
  /** a PATCH with Content-Range whose body is over this many bytes: 416 "too large" (streamed PATCHes pass) */
  maxChunkBytes?: number;
  /** no chunked uploads: a PATCH with Content-Range, or a second PATCH to a session, is refused with 400 */
  monolithicOnly?: boolean;
  /** Content-Range must be exactly `<start>-<end>` (no unit, no total) */
  strictContentRange?: boolean;
  /** manifest PUTs with a Docker Content-Type are refused with this status (415 or 400 MANIFEST_INVALID) */
  refuseDockerManifests?: 415 | 400;
  /** manifest PUTs naming one of these layer media types are refused with 400 MANIFEST_INVALID */
  refuseLayerMediaTypes?: string[];
  /** a cross-repository mount (POST ?mount=&from=) answers this status instead of mounting or falling back */
  mountAuthFailure?: 401 | 403;
  /** pull quota on manifest GETs: RateLimit-* headers on each answer, 429 TOOMANYREQUESTS (no Retry-After) beyond */
  rateLimit?: { limit: number; windowSeconds: number; source: string };
}

/** Merge profiles left to right (later ones win on scalars; lists are concatenated). */
export function mergeQuirks(list: Quirks[]): Quirks {
  const out: Quirks = {};
  for (const q of list) {
    Object.assign(out, { ...q, options: { ...out.options, ...q.options }, auth: { ...out.auth, ...q.auth } });
    out.faults = [...(out.faults ?? []), ...(q.faults ?? [])];
    if (q.omitDigestHeader) out.omitDigestHeader = [...new Set([...(out.omitDigestHeader ?? []), ...q.omitDigestHeader])];
  }
  return out;
}

const DOCKER_TYPE = /^application\/vnd\.docker\./i;
const OPAQUE = Buffer.alloc(96, 7).toString('base64url');

export class QuirkRuntime {
  private readonly patchedSessions = new Set<string>();
  private pulls: { start: number; count: number } = { start: 0, count: 0 };
  /** scheme://host:port of the registry, set once it listens */
  base = '';

  constructor(readonly q: Quirks) {}

  /** Requests to the upload prefix are routed as the ordinary upload endpoint. */
  rewriteUrl(raw: string): string {
    const p = this.q.uploadPathPrefix;
    return p && raw.startsWith(p + '/v2/') ? raw.slice(p.length) : raw;
  }

  /**
   * Act before the handler: throw a RegistryError to refuse, or return a request to hand on (a manifest PUT whose
   * body was read for inspection is replayed from memory).
   */
  async before(req: IncomingMessage, res: ServerResponse, route: Route, method: string, url: URL): Promise<IncomingMessage> {
    const q = this.q;
    if (route.kind === 'manifest' && method === 'GET' && q.rateLimit) this.countPull(res);
    if (route.kind === 'upload' && method === 'POST' && q.mountAuthFailure && url.searchParams.has('mount') && url.searchParams.has('from')) {
      const s = q.mountAuthFailure;
      throw new RegistryError(s, s === 401 ? 'UNAUTHORIZED' : 'DENIED', `not allowed to read ${url.searchParams.get('from')!.slice(0, 100)} for a mount`);
    }
    if (route.kind === 'upload' && method === 'PATCH') this.checkPatch(req, route);
    if (route.kind === 'manifest' && method === 'PUT') return this.checkManifest(req);
    return req;
  }

  private countPull(res: ServerResponse): void {
    const { limit, windowSeconds, source } = this.q.rateLimit!;
    const now = Date.now();
    if (now - this.pulls.start > windowSeconds * 1000) this.pulls = { start: now, count: 0 };
    this.pulls.count++;
    const remaining = Math.max(limit - this.pulls.count, 0);
    res.setHeader('RateLimit-Limit', `${limit};w=${windowSeconds}`);
    res.setHeader('RateLimit-Remaining', `${remaining};w=${windowSeconds}`);
    res.setHeader('Docker-RateLimit-Source', source);
    if (this.pulls.count > limit)
      throw new RegistryError(429, 'TOOMANYREQUESTS', 'You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit');
  }

  private checkPatch(req: IncomingMessage, route: Route): void {
    const q = this.q;
    const cr = req.headers['content-range'];
    const len = Number(req.headers['content-length'] ?? NaN);
    if (q.strictContentRange && cr !== undefined && !/^\d+-\d+$/.test(cr))
      throw new RegistryError(400, 'BLOB_UPLOAD_INVALID', 'the Content-Range header format is invalid');
    if (q.monolithicOnly) {
      const key = `${route.name} ${route.ref}`;
      if (cr !== undefined || this.patchedSessions.has(key))
        throw new RegistryError(400, 'UNSUPPORTED', 'chunked uploads are not supported: you must use monolithic uploads');
      this.patchedSessions.add(key);
    }
    if (q.maxChunkBytes !== undefined && cr !== undefined && len > q.maxChunkBytes)
      throw new RegistryError(
        416,
        'BLOB_UPLOAD_INVALID',
        `the request body is too large and exceeds the maximum permissible limit of ${(q.maxChunkBytes / 1048576).toFixed(2)}MiB`,
      );
  }

  private async checkManifest(req: IncomingMessage): Promise<IncomingMessage> {
    const q = this.q;
    const type = String(req.headers['content-type'] ?? '');
    if (q.refuseDockerManifests && DOCKER_TYPE.test(type)) {
      req.resume();
      if (q.refuseDockerManifests === 415) throw new RegistryError(415, 'MANIFEST_INVALID', `unsupported media type ${type.slice(0, 100)}`);
      throw new RegistryError(400, 'MANIFEST_INVALID', `manifest invalid: unsupported media type ${type.slice(0, 100)}`);
    }
    if (!q.refuseLayerMediaTypes?.length) return req;
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 4 << 20) throw new RegistryError(413, 'SIZE_INVALID', 'manifest too large');
      parts.push(c as Buffer);
    }
    const body = Buffer.concat(parts);
    let layers: Array<{ mediaType?: string }> = [];
    try {
      layers = (JSON.parse(body.toString('utf8')) as { layers?: Array<{ mediaType?: string }> }).layers ?? [];
    } catch {
      /* the handler reports malformed JSON */
    }
    const bad = layers.find((l) => l.mediaType && q.refuseLayerMediaTypes!.includes(l.mediaType));
    if (bad) throw new RegistryError(400, 'MANIFEST_INVALID', `manifest invalid: layer media type ${bad.mediaType} is not supported`);
    return Object.assign(Readable.from([body]), { headers: req.headers, method: req.method, url: req.url, socket: req.socket }) as unknown as IncomingMessage;
  }

  /** Rewrite the headers (and PATCH status) the handler writes, per the profile. */
  wrap(res: ServerResponse, route: Route, method: string): void {
    const q = this.q;
    const site: DigestHeaderSite | undefined =
      route.kind === 'manifest'
        ? method === 'HEAD'
          ? 'manifest-head'
          : method === 'GET'
            ? 'manifest-get'
            : undefined
        : route.kind === 'blob' && method === 'HEAD'
          ? 'blob-head'
          : route.kind === 'upload' && method === 'PUT'
            ? 'upload-put'
            : undefined;
    const dropDigest = site !== undefined && (q.omitDigestHeader ?? []).includes(site);
    const upload = route.kind === 'upload';
    if (!dropDigest && !upload) return;
    const writeHead = res.writeHead.bind(res) as (s: number, h?: Record<string, string | number | string[]>) => ServerResponse;
    (res as unknown as { writeHead: typeof writeHead }).writeHead = (status, headers = {}) => {
      const h: Record<string, string | number | string[]> = { ...headers };
      if (dropDigest) {
        delete h['Docker-Content-Digest'];
        res.removeHeader('Docker-Content-Digest');
      }
      if (upload) {
        if (typeof h.Location === 'string' && h.Location.includes('/blobs/uploads/')) {
          let loc = h.Location;
          if (q.uploadPathPrefix) loc = `${q.uploadPathPrefix}${loc}${loc.includes('?') ? '&' : '?'}upload_token=${OPAQUE}`;
          if (q.absoluteLocation) loc = this.base + loc;
          h.Location = loc;
        }
        if (q.hideChunkMinLength) delete h['OCI-Chunk-Min-Length'];
        if (q.rangeUnit && typeof h.Range === 'string') h.Range = `bytes=${h.Range}`;
        if (q.patchStatus && method === 'PATCH' && status === 202) status = q.patchStatus;
      }
      return writeHead(status, h);
    };
  }
}

/** The caller's options with the profile's server options, auth and faults filled in (explicit values win). */
export function withQuirks<O extends QuirkServerOptions & { auth?: AuthOptions; faults?: { seed?: number; rules: FaultRule[] } | FaultRule[] }>(
  q: Quirks,
  given: O,
): O {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as O;
  const auth: AuthOptions = { ...given.auth, ...q.auth, mode: q.auth?.mode ?? given.auth?.mode ?? 'none' };
  const f = given.faults;
  const faults = { ...(Array.isArray(f) ? {} : f), rules: [...(Array.isArray(f) ? f : (f?.rules ?? [])), ...(q.faults ?? [])] };
  return { ...q.options, ...defined, auth, faults };
}
