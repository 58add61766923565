import { Readable } from 'node:stream';
import { authError, describeSystemError, ExitCode, integrityError, NixregError, notFoundError, usageError } from '../errors.js';
import { DIGEST_RE, parseDigest, sha256Digest } from '../digest/sha256.js';
import { TAG_RE, DOCKER_HUB, DOCKER_HUB_API_HOST, parseImageReference, type ImageReference } from '../reference/reference.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, isSchema1MediaType } from '../manifest/media-types.js';
import { Authenticator, readLimited } from './auth/authenticator.js';
import { parseChallenges, pickChallenge } from './auth/challenge.js';
import { resolveCredentials, type ResolvedCredentials } from './auth/credentials.js';
import { readErrorBody, summarizeErrorBody, type RegistryErrorBody } from './registry-errors.js';
import { checkContentRange, verifiedBlobChunks } from './blob-stream.js';
import { STREAM_BUFFER } from '../util/stream-buffer.js';
import { quotaExhausted } from './rate-limit.js';
import { parseRetryAfter } from './retry-after.js';
import { QuotaExhausted, RetryLater } from './upload-errors.js';
import { Transport, abandonBody, errorCode, headerValue, isTlsTrustError, redactUrl, sleep, type HttpRequest, type HttpResponse } from './transport.js';
import type {
  BlobGetOptions,
  ManifestHead,
  ManifestResponse,
  RegistryClientApi,
  RegistryClientOptions,
  StartUploadResult,
  UploadChunkResult,
} from './types.js';

export type { RegistryClientOptions, ManifestResponse, ManifestHead, BlobGetOptions, StartUploadResult } from './types.js';

/** 127.0.0.0/8, ::1 and localhost: plain http is allowed without a flag (like crane), after https fails. */
export function isLoopbackHost(hostPort: string): boolean {
  const host = hostPort.startsWith('[') ? hostPort.slice(1, hostPort.indexOf(']')) : hostPort.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * A registry behind a TLS-terminating proxy (Harbor, Artifactory, Nexus) may hand back `http://same-host/...`
 * Locations: those are upgraded to the registry's https origin, so credentials never travel in clear text.
 */
export function sameOriginTarget(target: URL, base: URL): URL {
  if (base.protocol !== 'https:' || target.protocol !== 'http:' || target.hostname !== base.hostname) return target;
  if (target.port !== '' && target.port !== base.port) return target;
  const up = new URL(target.toString());
  up.protocol = 'https:';
  up.port = base.port;
  return up;
}

interface Session {
  base: string; // 'https://host:port'
  auth: Authenticator; // replaced if a repository asks for auth that /v2/ did not
}

/**
 * A client for one repository on one registry (OCI distribution / Docker Registry HTTP API V2).
 * Pings /v2/ once, answers its challenge for every request, verifies everything it downloads.
 */
export class RegistryClient implements RegistryClientApi {
  readonly registry: string;
  readonly apiHost: string;
  readonly repository: string;
  private readonly opts: RegistryClientOptions;
  private readonly transport: Transport;
  private session?: Promise<Session>;
  private credsPromise?: Promise<ResolvedCredentials>;
  private secrets: string[] = [];
  private readonly resumeDelayMs: number;

  constructor(opts: RegistryClientOptions) {
    this.opts = opts;
    this.registry = opts.registry === 'index.docker.io' || opts.registry === DOCKER_HUB_API_HOST ? DOCKER_HUB : opts.registry;
    this.apiHost = this.registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : this.registry;
    this.repository = opts.repository;
    if (opts.creds) this.secrets.push(opts.creds.password, Buffer.from(`${opts.creds.username}:${opts.creds.password}`).toString('base64'));
    this.transport = new Transport({
      host: this.apiHost,
      ...(opts.tlsVerify !== undefined ? { tlsVerify: opts.tlsVerify } : {}),
      ...(opts.certDir ? { certDir: opts.certDir } : {}),
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.log ? { log: (l: string) => this.log(l) } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    });
    this.resumeDelayMs = Math.min(1000, opts.retry?.baseDelayMs ?? 1000);
  }

  /** Client for the registry/repository of a parsed or unparsed image reference. */
  static forReference(ref: ImageReference | string, opts: Omit<RegistryClientOptions, 'registry' | 'repository'> = {}): RegistryClient {
    const r = typeof ref === 'string' ? parseImageReference(ref) : ref;
    return new RegistryClient({ ...opts, registry: r.registry, repository: r.repository });
  }

  /** Release pooled connections. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  private log(line: string) {
    this.opts.log?.(this.redact(line));
  }

  private redact(s: string): string {
    let out = s;
    for (const secret of this.secrets) if (secret && secret.length >= 3) out = out.split(secret).join('***');
    // A registry or token server may echo our Authorization header (base64 user:password, or a token) in an
    // error body that messages quote: cut any credential that follows an auth scheme name.
    out = out.replace(/\b(Basic|Bearer)(\s+|%20|\+)[A-Za-z0-9+/=._~%-]{8,}/gi, '$1$2***');
    return out;
  }

  private get baseScope(): string {
    return `repository:${this.repository}:${this.opts.pushScope ? 'pull,push' : 'pull'}`;
  }

  private creds(): Promise<ResolvedCredentials> {
    this.credsPromise ??= resolveCredentials({
      registry: this.registry,
      repository: this.repository,
      ...(this.opts.creds ? { creds: this.opts.creds } : {}),
      ...(this.opts.authfile ? { authfile: this.opts.authfile } : {}),
      ...(this.opts.env ? { env: this.opts.env } : {}),
    }).then((c) => {
      for (const s of [c.password, c.identityToken]) if (s) this.secrets.push(s);
      if (c.password) this.secrets.push(Buffer.from(`${c.username ?? ''}:${c.password}`).toString('base64'));
      if (c.source !== 'none') this.log(`credentials for ${this.registry} from ${c.source}`);
      return c;
    });
    return this.credsPromise;
  }

  // ---------------------------------------------------------------- ping, auth, errors

  private ensureSession(): Promise<Session> {
    this.session ??= this.ping().catch((e) => {
      this.session = undefined; // a later call may try again
      throw e;
    });
    return this.session;
  }

  private async ping(): Promise<Session> {
    const httpAllowed = this.opts.tlsVerify === false || isLoopbackHost(this.apiHost);
    let res: HttpResponse;
    let base = `https://${this.apiHost}`;
    try {
      res = await this.transport.request({ method: 'GET', url: `${base}/v2/`, retry: !httpAllowed, firstContact: true });
    } catch (httpsErr) {
      // A plain-http server answers a TLS hello at once (HTTP 400) and a TLS one completes it: a timeout means nobody
      // is answering at all, and trying http as well would only double the wait.
      if (httpsErr instanceof NixregError && httpsErr.exitCode === ExitCode.usage) throw httpsErr;
      if (!httpAllowed || isTlsTrustError(httpsErr) || isTimeout(httpsErr)) throw this.reachError(httpsErr);
      base = `http://${this.apiHost}`;
      try {
        // Connection failures are not retried (an https-only server resets plain http, and backing off on that only
        // delays the error), but a 429/5xx is an http server that is busy: worth the usual retries.
        res = await this.transport.request({ method: 'GET', url: `${base}/v2/`, retry: 'status', firstContact: true });
      } catch (httpErr) {
        const a = describeSystemError((httpsErr as { cause?: unknown }).cause ?? httpsErr);
        const b = describeSystemError((httpErr as { cause?: unknown }).cause ?? httpErr);
        throw new NixregError(
          a === b ? `cannot reach registry ${this.registry}: ${a}` : `cannot reach registry ${this.registry}: https: ${a}; http: ${b}`,
          undefined,
          { cause: httpErr },
        );
      }
    }
    await res.body.dump().catch(() => {});
    if (res.status !== 200 && res.status !== 401) {
      if (res.status === 404) throw new NixregError(`${this.registry} does not speak the registry API v2 (GET /v2/ → 404)`);
      throw new NixregError(`registry ${this.registry} answered HTTP ${res.status} to GET /v2/`);
    }
    const challenge = res.status === 401 ? pickChallenge(parseChallenges(res.headers['www-authenticate'])) : undefined;
    if (res.status === 401 && !challenge) this.log(`${this.registry}: 401 on /v2/ without a Basic or Bearer challenge`);
    this.log(`ping ${base}/v2/ → ${res.status}${challenge ? ` (${challenge.scheme})` : ''}`);
    return {
      base,
      auth: new Authenticator(
        this.transport,
        this.registry,
        challenge,
        () => this.creds(),
        undefined,
        (h) => this.opts.tlsVerify === false || isLoopbackHost(h),
      ),
    };
  }

  private reachError(err: unknown): Error {
    const inner = (err as { cause?: unknown }).cause ?? err;
    return new NixregError(`cannot reach registry ${this.registry}: ${describeSystemError(inner)}`, undefined, { cause: inner });
  }

  /**
   * A request to this registry, authorised for `extraScopes` too; re-tokens once on a 401 for replayable requests.
   * Public for the resources that have no method here (manifest DELETE and listing, login's /v2/ check).
   */
  async send(req: Omit<HttpRequest, 'url'> & { path?: string; url?: string; extraScopes?: string[] }): Promise<HttpResponse> {
    const session = await this.ensureSession();
    const { base } = session;
    const target = sameOriginTarget(new URL(req.url ? new URL(req.url, base + '/').toString() : base + req.path), new URL(base));
    const url = target.toString();
    // Credentials belong to the registry's origin (scheme + host + port), never to a host alone.
    const sameHost = target.origin === new URL(base).origin;
    let scopes = [this.baseScope, ...(req.extraScopes ?? [])];
    const { path: _p, extraScopes: _e, url: _u, ...rest } = req;
    const go = async () => {
      const authorization = sameHost ? await session.auth.authorization(scopes) : undefined;
      const headers = { ...(req.headers ?? {}), ...(authorization ? { authorization } : {}) };
      return this.transport.request({ ...rest, url, headers });
    };
    let res = await go();
    const replayable = !(req.body instanceof Readable);
    if (res.status !== 401 || !replayable || !sameHost) return res;
    const ch = pickChallenge(parseChallenges(res.headers['www-authenticate']));
    if (!session.auth.scheme && ch) {
      // /v2/ answered 200 but this repository wants auth (c/image would give up here; GGCR adopts the challenge).
      this.log(`${this.registry}: 401 with a ${ch.scheme} challenge after an open /v2/; authenticating`);
      session.auth = new Authenticator(
        this.transport,
        this.registry,
        ch,
        () => this.creds(),
        undefined,
        (h) => this.opts.tlsVerify === false || isLoopbackHost(h),
      );
      await res.body.dump().catch(() => {});
      res = await go();
    } else if (session.auth.scheme === 'bearer') {
      session.auth.invalidate(scopes);
      if (ch?.params.error === 'insufficient_scope' && ch.params.scope) scopes = [...new Set([...scopes, ...ch.params.scope.split(' ')])];
      this.log(`401 on ${req.method} ${redactUrl(url)}; fetching a new token for ${scopes.join(' ')}`);
      await res.body.dump().catch(() => {});
      res = await go();
    }
    return res;
  }

  /** Turn a non-success response into the right one-line error (consumes the body). */
  async fail(res: HttpResponse, what: string, body?: RegistryErrorBody): Promise<never> {
    const summary = body ? body.summary : await summarizeErrorBody(res);
    const detail = summary ? `: ${summary}` : '';
    if (res.status === 401 || res.status === 403) {
      const c = await this.creds().catch(() => undefined);
      const ch = pickChallenge(parseChallenges(res.headers['www-authenticate']));
      if (ch?.params.error === 'insufficient_scope') {
        const from = !c || c.source === 'none' ? 'anonymous access does' : `the credentials from ${c.source} do`;
        const hint = !c || c.source === 'none' ? '; the repository may not exist, or needs a login (--creds or an auth file)' : '';
        throw authError(
          this.redact(
            `${res.status} from ${this.registry} for ${what}: ${from} not grant ${ch.params.scope ?? 'the needed access'} (insufficient_scope)${hint}`,
          ),
        );
      }
      const how =
        !c || c.source === 'none'
          ? ' (anonymous): log in (auth file) or pass --creds'
          : ` with credentials from ${c.source}: check the username, password and access to ${this.repository}`;
      throw authError(this.redact(`${res.status} from ${this.registry} for ${what}${how}${detail}`));
    }
    if (res.status === 404) throw notFoundError(this.redact(`${what} not found on ${this.registry}${detail}`));
    throw new NixregError(this.redact(`${what}: HTTP ${res.status} from ${this.registry}${detail}`));
  }

  private manifestRef(ref: string): string {
    if (ref.startsWith('sha256:') || ref.includes(':')) return parseDigest(ref, 'manifest digest');
    if (!TAG_RE.test(ref)) throw usageError(`invalid tag "${ref.slice(0, 140)}"`);
    return ref;
  }

  private get imageName(): string {
    return `${this.registry}/${this.repository}`;
  }

  private describeRef(ref: string): string {
    return DIGEST_RE.test(ref) ? `${this.imageName}@${ref}` : `${this.imageName}:${ref}`;
  }

  // ---------------------------------------------------------------- manifests

  async getManifest(ref: string): Promise<ManifestResponse> {
    const r = this.manifestRef(ref);
    const what = `manifest ${this.describeRef(r)}`;
    // Read whole inside the transport's retry loop: a reset or stall mid-manifest is retried, not fatal.
    const res = await this.send({
      method: 'GET',
      path: `/v2/${this.repository}/manifests/${r}`,
      headers: { accept: [...MANIFEST_ACCEPT] },
      bufferBody: { limit: this.opts.maxManifestBytes ?? MAX_MANIFEST_BYTES, what, hint: 'raise the limit with --max-manifest-size' },
    });
    if (res.status !== 200) return this.fail(res, what);
    const bytes = res.bytes ?? Buffer.alloc(0);
    let mediaType = (headerValue(res.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain' || mediaType === 'application/octet-stream') {
      mediaType = guessMediaType(bytes) ?? mediaType;
    }
    if (isSchema1MediaType(mediaType))
      throw new NixregError(`${what} is a Docker schema1 manifest, which is not supported (deprecated since 2017; re-push the image with a current tool)`);
    const digest = sha256Digest(bytes);
    if (DIGEST_RE.test(r) && digest !== r) throw integrityError(`${what}: digest mismatch: expected ${r}, got ${digest}`);
    return { bytes, mediaType, digest };
  }

  async headManifest(ref: string): Promise<ManifestHead | undefined> {
    const r = this.manifestRef(ref);
    const res = await this.send({ method: 'HEAD', path: `/v2/${this.repository}/manifests/${r}`, headers: { accept: [...MANIFEST_ACCEPT] } });
    await res.body.dump().catch(() => {});
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, `manifest ${this.describeRef(r)}`);
    const digest = headerValue(res.headers, 'docker-content-digest');
    const mediaType = (headerValue(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    const size = Number(headerValue(res.headers, 'content-length'));
    if (digest && DIGEST_RE.test(digest) && Number.isFinite(size) && mediaType && mediaType !== 'application/json') return { digest, mediaType, size };
    // No usable Docker-Content-Digest (some registries omit it on HEAD): GET and hash it ourselves.
    const m = await this.getManifest(r);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  async putManifest(ref: string, bytes: Buffer, mediaType: string): Promise<string> {
    const r = this.manifestRef(ref);
    const digest = sha256Digest(bytes);
    if (DIGEST_RE.test(r) && r !== digest) throw integrityError(`manifest for ${this.describeRef(r)}: digest mismatch: expected ${r}, got ${digest}`);
    const what = `manifest upload to ${this.describeRef(r)}`;
    let res: HttpResponse;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.send({ method: 'PUT', path: `/v2/${this.repository}/manifests/${r}`, headers: { 'content-type': mediaType }, body: bytes });
      } catch (e) {
        // The answer was lost (reset or timeout after the request went out): the registry's state decides.
        if (await this.holdsManifest(r, digest)) {
          this.log(`${what}: answer lost (${(e as Error).message}), but the registry holds ${digest} there`);
          return digest;
        }
        throw e;
      }
      if (res.status >= 200 && res.status <= 299) break;
      if (res.status === 415 && mediaType.startsWith('application/vnd.docker.')) {
        // Registries that store only OCI media types (zot without its docker compatibility) refuse these.
        const summary = await summarizeErrorBody(res);
        throw new DockerTypesRefused(
          this.redact(
            `${what}: HTTP 415 from ${this.registry}: it does not accept Docker media types (${mediaType})${summary ? `: ${summary}` : ''}; push with --format oci (or --format auto)`,
          ),
        );
      }
      if (res.status !== 400) return this.fail(res, what);
      const body = await readErrorBody(res);
      // zot 2.x answers the same refusal with 400 MANIFEST_INVALID "unsupported media type"
      // (https://github.com/project-zot/zot/issues/3104).
      if (mediaType.startsWith('application/vnd.docker.') && body.codes.includes('MANIFEST_INVALID') && /media ?type/i.test(body.summary))
        throw new DockerTypesRefused(
          this.redact(
            `${what}: HTTP 400 from ${this.registry}: it does not accept Docker media types (${mediaType}): ${body.summary}; push with --format oci (or --format auto)`,
          ),
        );
      if (
        attempt >= Math.min(MANIFEST_BLOB_RETRIES, this.transport.retryTimes) ||
        !body.codes.length ||
        !body.codes.every((c) => TRANSIENT_MANIFEST_CODES.has(c))
      )
        return this.fail(res, what, body);
      const delay = 250 * 2 ** attempt;
      this.log(`${what}: ${body.summary} (its blobs were just uploaded: the registry may not see them yet); trying again in ${delay} ms`);
      await sleep(delay);
    }
    await res.body.dump().catch(() => {});
    const returned = headerValue(res.headers, 'docker-content-digest');
    if (returned && returned !== digest) throw integrityError(`manifest upload to ${this.describeRef(r)}: registry says ${returned}, we sent ${digest}`);
    return digest;
  }

  /** Whether `ref` (tag or digest) names the manifest `digest` now; false when that cannot be told. */
  private async holdsManifest(ref: string, digest: string): Promise<boolean> {
    const head = await this.headManifest(ref).catch(() => undefined);
    return head?.digest === digest;
  }

  // ---------------------------------------------------------------- tags

  /**
   * Every tag of the repository, in the registry's order: GET /v2/<name>/tags/list, following the
   * `Link: <…>; rel="next"` pages as the distribution spec (and c/image, for `skopeo inspect`'s RepoTags) do.
   * `pageSize` asks for `n=` tags a page (a registry may send fewer).
   */
  async listTags(opts: { pageSize?: number } = {}): Promise<string[]> {
    const what = `tag list of ${this.imageName}`;
    const tags: string[] = [];
    const seen = new Set<string>();
    let next: string | undefined = `/v2/${this.repository}/tags/list${opts.pageSize ? `?n=${opts.pageSize}` : ''}`;
    while (next) {
      // a registry sending the same next page again would otherwise loop forever
      if (seen.has(next) || seen.size >= MAX_TAG_PAGES) throw new NixregError(this.redact(`${what}: the registry's pages do not end (${seen.size} read)`));
      seen.add(next);
      const res = await this.send({ method: 'GET', url: next, bufferBody: { limit: MAX_TAG_PAGE_BYTES, what } });
      if (res.status !== 200) return this.fail(res, what);
      let page: unknown;
      try {
        page = (JSON.parse((res.bytes ?? Buffer.alloc(0)).toString('utf8')) as { tags?: unknown } | null)?.tags;
      } catch {
        throw new NixregError(`${what}: the registry answered with invalid JSON`);
      }
      if (page != null && (!Array.isArray(page) || page.some((t) => typeof t !== 'string'))) throw new NixregError(`${what}: "tags" is not a list of strings`);
      tags.push(...((page as string[] | null | undefined) ?? []));
      next = nextPageLink(headerValue(res.headers, 'link'));
    }
    return tags;
  }

  // ---------------------------------------------------------------- blobs

  async headBlob(digest: string): Promise<{ size: number } | undefined> {
    parseDigest(digest, 'blob digest');
    const res = await this.send({ method: 'HEAD', path: `/v2/${this.repository}/blobs/${digest}` });
    await res.body.dump().catch(() => {});
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, `blob ${this.imageName}@${digest}`);
    return { size: Number(headerValue(res.headers, 'content-length')) };
  }

  /**
   * The last `n` bytes of a blob of `size` bytes (`Range: bytes=size-n-(size-1)`), or undefined when the registry
   * will not give exactly that range (no 206, another Content-Range, an error): a hint, not verified here; the
   * whole blob is verified when it is read. A 200 (Range ignored) is cut off at once rather than downloaded.
   */
  async getBlobTail(digest: string, size: number, n: number): Promise<Buffer | undefined> {
    parseDigest(digest, 'blob digest');
    if (!Number.isSafeInteger(size) || size < n || n <= 0) return undefined;
    const from = size - n;
    let res: HttpResponse;
    try {
      res = await this.send({ method: 'GET', path: `/v2/${this.repository}/blobs/${digest}`, headers: { range: `bytes=${from}-${size - 1}` } });
    } catch {
      return undefined;
    }
    if (res.status !== 206 || (headerValue(res.headers, 'content-range') ?? '').trim() !== `bytes ${from}-${size - 1}/${size}`) {
      abandonBody(res);
      return undefined;
    }
    const parts: Buffer[] = [];
    let got = 0;
    res.body.on('error', () => {}); // a break below aborts the body: see abandonBody
    try {
      for await (const c of res.body) {
        parts.push(c as Buffer);
        got += (c as Buffer).length;
        if (got > n) break;
      }
    } catch {
      return undefined;
    }
    if (got !== n) {
      abandonBody(res);
      return undefined;
    }
    return Buffer.concat(parts);
  }

  private async openBlob(digest: string, offset: number): Promise<HttpResponse> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.send({ method: 'GET', path: `/v2/${this.repository}/blobs/${digest}`, headers });
    if (res.status !== 200 && res.status !== 206) return this.fail(res, `blob ${this.imageName}@${digest}`);
    return res;
  }

  /**
   * The blob's raw bytes (as stored: still compressed), verified while streaming: the stream errors with an
   * integrity error at the end if size or sha256 differ. A connection reset mid-body resumes with
   * `Range: bytes=N-`; a server that ignores Range is re-read from the start with the delivered prefix skipped.
   * With `offset`, only bytes from there on are delivered and only the size can be checked.
   */
  async getBlob(digest: string, opts: BlobGetOptions = {}): Promise<Readable> {
    parseDigest(digest, 'blob digest');
    const start = opts.offset ?? 0;
    const what = `blob ${this.imageName}@${digest}`;
    const first = await this.openBlob(digest, start);
    const firstSkip = first.status === 200 ? start : checkContentRange(first, start, what);
    const declared = headerValue(first.headers, 'content-length');
    if (opts.size !== undefined && declared !== undefined && first.status === 200 && Number(declared) !== opts.size) {
      await first.body.dump().catch(() => {});
      throw integrityError(`${what}: size mismatch: expected ${opts.size} bytes, registry sends ${declared}`);
    }
    return Readable.from(
      verifiedBlobChunks({
        digest,
        what,
        first,
        firstSkip,
        start,
        ...(opts.size !== undefined ? { size: opts.size } : {}),
        open: (offset) => this.openBlob(digest, offset),
        resumeDelayMs: this.resumeDelayMs,
        // a resume is a retry of the download: --retry-times bounds both (0 = neither)
        ...(this.opts.retry?.times !== undefined ? { maxResumes: this.opts.retry.times * 2 } : {}),
        log: (l) => this.log(l),
      }),
      { objectMode: false, highWaterMark: STREAM_BUFFER },
    );
  }

  // ---------------------------------------------------------------- uploads

  /** POST …/blobs/uploads/ (optionally a cross-repo mount): 201 = mounted, 202 = upload session at `location`. */
  async startUpload(opts: { mount?: string; from?: string } = {}): Promise<StartUploadResult> {
    let path = `/v2/${this.repository}/blobs/uploads/`;
    const extraScopes: string[] = [];
    if (opts.mount && opts.from) {
      parseDigest(opts.mount, 'mount digest');
      path += `?from=${encodeURIComponent(opts.from)}&mount=${encodeURIComponent(opts.mount)}`;
      extraScopes.push(`repository:${opts.from}:pull`);
    }
    const res = await this.send({ method: 'POST', path, extraScopes, body: Buffer.alloc(0), headers: { 'content-length': '0' } });
    if (res.status === 201 && opts.mount) {
      await res.body.dump().catch(() => {});
      return { mounted: true };
    }
    if (res.status !== 202) return this.fail(res, `blob upload to ${this.imageName}`);
    await res.body.dump().catch(() => {});
    const min = Number(headerValue(res.headers, 'oci-chunk-min-length'));
    return { mounted: false, location: this.location(res, 'upload start'), ...(Number.isSafeInteger(min) && min > 0 ? { chunkMinLength: min } : {}) };
  }

  private location(res: HttpResponse, what: string): string {
    const loc = headerValue(res.headers, 'location');
    if (!loc) throw new NixregError(`${what} on ${this.registry}: HTTP ${res.status} without a Location header`);
    return new URL(loc, res.url).toString(); // relative to the request URL, keeping its query (_state)
  }

  /** One streaming PATCH with the whole blob (never retried: the stream cannot be replayed). Returns the next location. */
  async uploadBlobStream(location: string, body: Readable | Buffer, contentLength?: number): Promise<string> {
    const destroy = () => (Buffer.isBuffer(body) ? undefined : body.destroy());
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (contentLength !== undefined) headers['content-length'] = String(contentLength);
    let res: HttpResponse;
    try {
      res = await this.send({ method: 'PATCH', url: location, headers, body, retry: false });
    } catch (e) {
      destroy();
      throw e;
    }
    if (res.status === 429) {
      // the transport could not retry this one (its body is a stream): the caller regenerates it after the wait
      destroy();
      await res.body.dump().catch(() => {});
      const retryAfter = parseRetryAfter(headerValue(res.headers, 'retry-after'));
      const quota = quotaExhausted(res.headers, this.registry, retryAfter, this.opts.retry?.totalMs ?? DEFAULT_RETRY_TOTAL_MS);
      if (quota) throw new QuotaExhausted(this.redact(quota));
      throw new RetryLater(this.redact(`blob upload to ${this.imageName}: HTTP 429 from ${this.registry}`), retryAfter);
    }
    if (contentLength === undefined && STREAM_REJECTED.has(res.status)) {
      destroy();
      const summary = await summarizeErrorBody(res);
      throw new StreamedUploadRejected(
        this.redact(`blob upload to ${this.imageName}: HTTP ${res.status} from ${this.registry} to a streamed PATCH${summary ? `: ${summary}` : ''}`),
        res.status,
      );
    }
    if (res.status !== 202 && res.status !== 204 && res.status !== 201) return this.fail(res, `blob upload to ${this.imageName}`);
    await res.body.dump().catch(() => {});
    return this.location(res, 'blob upload');
  }

  /**
   * One chunk of a chunked upload: `PATCH` with `Content-Range: start-end` (inclusive, no unit, as the OCI spec
   * and distribution's parser want) and `Content-Length`. A Buffer body is replayable, so the transport may retry
   * it; a replay the registry already applied comes back 416, which the caller resolves with uploadStatus.
   */
  async uploadChunk(location: string, chunk: Buffer, start: number): Promise<UploadChunkResult> {
    const res = await this.send({
      // 429/5xx answers are replayed by the transport (the registry did not take the chunk); a lost answer is
      // not: the registry may have applied it, and distribution cancels a session resumed with a stale _state.
      // The caller asks uploadStatus instead.
      retry: 'status',
      method: 'PATCH',
      url: location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${start}-${start + chunk.length - 1}`,
      },
      body: chunk,
    });
    if (res.status === 416 || res.status === 413) {
      await res.body.dump().catch(() => {});
      return res.status === 416 ? { outOfRange: true } : { tooLarge: true };
    }
    const what = `blob upload chunk ${start}-${start + chunk.length - 1} to ${this.imageName}`;
    if (res.status === 404) return this.sessionGone(res, what);
    if (start === 0 && CHUNKS_REJECTED.has(res.status)) {
      const summary = await summarizeErrorBody(res);
      throw new ChunkedUploadRejected(this.redact(`${what}: HTTP ${res.status} from ${this.registry}${summary ? `: ${summary}` : ''}`), res.status);
    }
    if (res.status !== 202 && res.status !== 204 && res.status !== 201) return this.fail(res, what);
    await res.body.dump().catch(() => {});
    const range = /^\s*(?:bytes=)?\d+-(\d+)\s*$/.exec(headerValue(res.headers, 'range') ?? '');
    return { location: this.location(res, 'blob upload chunk'), ...(range ? { rangeEnd: Number(range[1]) } : {}) };
  }

  /** GET <location>: how many bytes the registry holds for this upload (its `Range: 0-<last>` header). */
  async uploadStatus(location: string): Promise<{ location: string; offset: number }> {
    const res = await this.send({ method: 'GET', url: location });
    if (res.status === 404) return this.sessionGone(res, `blob upload status on ${this.imageName}`);
    if (res.status !== 204 && res.status !== 200) return this.fail(res, `blob upload status on ${this.imageName}`);
    await res.body.dump().catch(() => {});
    const range = /(\d+)-(\d+)/.exec(headerValue(res.headers, 'range') ?? '');
    if (!range) throw new NixregError(`blob upload status on ${this.registry}: HTTP ${res.status} without a Range header`);
    // "0-0" is distribution's answer for an empty upload (and, ambiguously, for one byte): read it as empty.
    const last = Number(range[2]);
    const offset = Number(range[1]) === 0 && last === 0 ? 0 : last + 1;
    return { location: headerValue(res.headers, 'location') ? this.location(res, 'blob upload status') : location, offset };
  }

  /** A 404 on an upload session (BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID): the session is gone, start a new one. */
  private async sessionGone(res: HttpResponse, what: string): Promise<never> {
    const body = await readErrorBody(res);
    throw new UploadSessionGone(this.redact(`${what}: the registry no longer knows the upload session (${body.summary || 'HTTP 404'})`));
  }

  /** PUT <location>&digest=… with an empty body; the registry verifies the digest. */
  async finishUpload(location: string, digest: string): Promise<void> {
    parseDigest(digest, 'blob digest');
    const u = new URL(location);
    u.searchParams.append('digest', digest);
    const what = `blob ${digest} upload to ${this.imageName}`;
    // A commit whose answer was lost (reset/timeout after it went out, or a retry meeting the session the
    // first attempt already closed: 404) is settled by the registry's state: the blob there means done.
    const committed = async (why: string) => {
      if (!(await this.headBlob(digest).catch(() => undefined))) return false;
      this.log(`${what}: ${why}, but the registry holds the blob`);
      return true;
    };
    let res: HttpResponse;
    try {
      res = await this.send({
        method: 'PUT',
        url: u.toString(),
        headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
        body: Buffer.alloc(0),
      });
    } catch (e) {
      if (await committed(`answer lost (${(e as Error).message})`)) return;
      throw e;
    }
    if (res.status === 404) {
      const body = await readErrorBody(res);
      if (await committed(`upload session gone (${body.summary || 'HTTP 404'})`)) return;
      return this.fail(res, what, body);
    }
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) return this.fail(res, what);
    await res.body.dump().catch(() => {});
  }

  async cancelUpload(location: string): Promise<void> {
    const res = await this.send({ method: 'DELETE', url: location });
    await res.body.dump().catch(() => {});
    if (res.status >= 400 && res.status !== 404) this.log(`cancel upload on ${this.registry}: HTTP ${res.status} (ignored)`);
  }
}

/**
 * Answers to a streamed PATCH (no Content-Length, no Content-Range) that mean "this registry wants chunks", not
 * "this upload failed": 400 and 416 (the body or range is refused), 411 Length Required, 413 (a proxy's body-size
 * limit, which chunks stay under), 415, 501 Not Implemented. The pusher then switches to a chunked upload.
 */
const STREAM_REJECTED = new Set([400, 411, 413, 415, 416, 501]);

/**
 * Answers to the first chunk PATCH (Content-Range 0-…) that mean "this registry takes no chunked uploads" (GAR:
 * 400 UNSUPPORTED, https://cloud.google.com/artifact-registry/docs/docker/pushing-and-pulling): the pusher then
 * sends each blob as one streamed PATCH.
 */
const CHUNKS_REJECTED = new Set([400, 405, 415, 501]);

/** --retry-max-time's default, as the transport has it. */
const DEFAULT_RETRY_TOTAL_MS = 5 * 60_000;

/** Tag-list pages: a safety bound (Docker Hub sends 100 tags a page by default: 1000 pages = 100k tags). */
const MAX_TAG_PAGES = 1000;
/**
 * A manifest PUT answered 400 with only these codes names blobs the registry does not see yet. distribution 2.8
 * rewrites a repository's blob link file in place (truncate, then write) whenever that blob is committed again, so
 * while another client pushes the same layer a manifest check can read an empty link: DIGEST_INVALID plus
 * MANIFEST_BLOB_UNKNOWN for a blob that is there (seen with 4 concurrent pushes of one image). Registries on
 * eventually consistent storage answer the same just after an upload. Both pass in moments, so the PUT is tried
 * again a few times (at most --retry-times) before the error is reported.
 */
const TRANSIENT_MANIFEST_CODES = new Set(['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'DIGEST_INVALID']);
const MANIFEST_BLOB_RETRIES = 3;
const MAX_TAG_PAGE_BYTES = 16 << 20;

/** The target of `rel="next"` in a Link header (RFC 8288: `<url>; rel="next"`, possibly among others), if any. */
export function nextPageLink(link: string | undefined): string | undefined {
  for (const m of (link ?? '').matchAll(/<([^>]*)>\s*((?:;\s*[^;,]*)*)/g)) {
    const rel = /;\s*rel\s*=\s*("[^"]*"|[^;\s]*)/i.exec(m[2] ?? '')?.[1]?.replace(/"/g, '') ?? '';
    if (rel.toLowerCase().split(/\s+/).includes('next')) return m[1];
  }
  return undefined;
}

/** The registry dropped an upload session (404 on its URL): the blob must go up again in a new session. */
export class UploadSessionGone extends NixregError {}

/** A manifest PUT refused for its Docker media types (a registry storing only OCI ones): `push --format auto` PUTs it again as OCI. */
export class DockerTypesRefused extends NixregError {}

/** The registry refused the first chunk of a chunked upload: it takes blobs in one PATCH only. */
export class ChunkedUploadRejected extends NixregError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class StreamedUploadRejected extends NixregError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const isTimeout = (err: unknown): boolean => {
  const code = errorCode((err as { cause?: unknown }).cause ?? err);
  return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'ETIMEDOUT';
};

/** Media type from the body when Content-Type is missing or generic. */
function guessMediaType(bytes: Buffer): string | undefined {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; schemaVersion?: number; manifests?: unknown; signatures?: unknown; config?: unknown };
    if (typeof j.mediaType === 'string') return j.mediaType;
    if (j.schemaVersion === 1) return j.signatures ? MediaType.dockerSchema1Signed : MediaType.dockerSchema1;
    if (Array.isArray(j.manifests)) return MediaType.ociIndex;
    if (j.config) return MediaType.ociManifest;
  } catch {
    /* not JSON: leave as is */
  }
  return undefined;
}

export { readLimited };
