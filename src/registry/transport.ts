import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { Agent, Client, EnvHttpProxyAgent, Pool, buildConnector, type Dispatcher } from './undici.js';
import { NixregError, describeSystemError, usageError } from '../errors.js';
import { quotaExhausted } from './rate-limit.js';
import { QuotaExhausted } from './upload-errors.js';
import { parseRetryAfter } from './retry-after.js';

export { parseRetryAfter } from './retry-after.js';

/**
 * HTTP for the registry client: one undici Agent (keep-alive, so blob and manifest requests reuse connections),
 * TLS options, timeouts, redirects that never carry Authorization to another host, and retries with capped
 * exponential backoff + jitter for 429 / 408 / 5xx / connection resets. Requests whose body cannot be replayed
 * (a stream) are sent exactly once.
 */
export interface TransportOptions {
  /** Host the TLS material belongs to (certs.d/<host:port> lookup). */
  host: string;
  tlsVerify?: boolean;
  certDir?: string;
  userAgent?: string;
  retry?: { times?: number; maxDelayMs?: number; baseDelayMs?: number; totalMs?: number };
  timeoutMs?: number;
  log?: (line: string) => void;
  /** For http(s)_proxy / no_proxy and SSL_CERT_FILE / NIX_SSL_CERT_FILE (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string | string[]>;
  /** Buffers/strings are replayable (retried); a Readable is sent once and never retried. */
  body?: Buffer | string | Readable;
  /** Follow 3xx for GET/HEAD (default true). */
  followRedirects?: boolean;
  /**
   * Retry on retryable failures (default true for replayable requests). 'status': retry 429/5xx answers only,
   * not connection failures (a first contact over plain http, where a reset means "this is not an http server").
   */
  retry?: boolean | 'status';
  /**
   * Read a successful (2xx) body of at most this many bytes into `bytes` inside the retry loop, so a reset or stall
   * mid-body is retried like one before the headers (manifests, tokens: small documents nobody streams).
   */
  /** `hint`: what the user can do when the body is over `limit` (e.g. the flag raising it). */
  bufferBody?: { limit: number; what: string; hint?: string };
  /**
   * The first request to a registry (the /v2/ ping): answered in milliseconds by any live registry, so it waits at
   * most FIRST_CONTACT_MS for the headers even when --timeout allows slow blob reads. A dead host fails in seconds.
   */
  firstContact?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** Final URL after redirects (Location headers resolve against it). */
  url: string;
  /** The whole body, when the request asked for `bufferBody` and the status was 2xx (`body` is then consumed). */
  bytes?: Buffer;
}

export const DEFAULT_USER_AGENT = 'nixreg/0.1.0';
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
/**
 * A proxy that accepts the connection and closes it without answering CONNECT fails the tunnel with undici's
 * UND_ERR_SOCKET, which undici's Client treats as a recoverable socket error: it keeps the request queued and
 * reconnects at once, in a tight loop that never ends (333,000 proxy connections in 90 s, measured with undici 7).
 * Renaming that one failure (a tunnel that was never opened, so nothing of the request was sent) makes undici fail
 * the queued request instead, and the transport's normal bounded retries take over.
 */
const PROXY_DROPPED = 'NIXREG_PROXY_DROPPED';
function failFastTunnels(origin: URL | string, options: Record<string, unknown>): Dispatcher {
  const inner = options.connect;
  const connect: buildConnector.connector | undefined =
    typeof inner === 'function'
      ? (o, cb) =>
          (inner as buildConnector.connector)(o, (err, socket) => {
            if (err && (err as { code?: string }).code === 'UND_ERR_SOCKET')
              return cb(Object.assign(new Error('the proxy closed the connection instead of opening a tunnel', { cause: err }), { code: PROXY_DROPPED }), null);
            cb(err as Error & null, socket as never);
          })
      : undefined;
  const opts = { ...options, ...(connect ? { connect } : {}) };
  // undici's own default factory: one Client when a single connection is asked for, else a Pool
  return options.connections === 1 ? new Client(origin, opts) : new Pool(origin, opts);
}

const RESET_CODES = new Set([PROXY_DROPPED, 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT', 'UND_ERR_CLOSED']);
// A buffered body that breaks off is retried as a whole (the request is replayable and the body small).
const BODY_RETRY_CODES = new Set([
  ...RESET_CODES,
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_ABORTED',
]);
const MAX_REDIRECTS = 10;
/** Connecting (TCP + TLS) and the first answer of a registry never legitimately take longer than this. */
export const FIRST_CONTACT_MS = 10_000;

export const errorCode = (err: unknown): string | undefined => {
  if (err instanceof NixregError) return errorCode(err.cause); // its own `code` is not a system error code
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code;
};

/** TLS verification failures: never worth an http fallback or a retry. */
export function isTlsTrustError(err: unknown): boolean {
  const c = errorCode(err) ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(c);
}

export const headerValue = (h: HttpResponse['headers'], name: string): string | undefined => {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Stop reading a response and close its connection instead of draining it (a 200 to a Range request, a body not
 * wanted). undici then emits an "aborted" error on the body, which nobody needs: without a listener it would
 * crash the process.
 */
export function abandonBody(res: HttpResponse): void {
  res.body.on('error', () => {});
  res.body.destroy();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CA bundle and client pair from a cert dir (c/image/docker layout: *.crt CAs, *.cert + *.key pairs). */
export function loadCertDir(dir: string): { ca: string[]; cert?: string; key?: string } {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw usageError(`cannot read certificate directory ${dir}: ${describeSystemError(e)}`);
  }
  const ca = names.filter((n) => n.endsWith('.crt')).map((n) => readFileSync(join(dir, n), 'utf8'));
  const certName = names.find((n) => n.endsWith('.cert'));
  const out: { ca: string[]; cert?: string; key?: string } = { ca };
  if (certName) {
    const keyName = certName.slice(0, -'.cert'.length) + '.key';
    if (!names.includes(keyName)) throw usageError(`client certificate ${certName} in ${dir} has no matching ${keyName}`);
    out.cert = readFileSync(join(dir, certName), 'utf8');
    out.key = readFileSync(join(dir, keyName), 'utf8');
  }
  return out;
}

/** A --cert-dir that is missing is a mistake to report, not a reason to fall back to plain http. */
function requireDirectory(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw usageError(`cannot read certificate directory ${dir}: ${describeSystemError(e)}; pass --cert-dir a directory holding the registry's CA (*.crt)`);
  }
  if (!isDir) throw usageError(`certificate directory ${dir} is not a directory; pass --cert-dir a directory holding the registry's CA (*.crt)`);
}

const secureContexts = new Map<string, SecureContext | undefined>();

/**
 * TLS context for a cert dir and/or CA bundle files, built once per process: Node's `ca` replaces the default
 * roots, so they are added back (extra trust must not break redirects to public CDNs), and parsing ~140 roots
 * costs 250-550 ms on the project VM - too much to repeat per client or per handshake.
 */
function secureContextFor(dir: string | undefined, bundles: string[]): SecureContext | undefined {
  const key = JSON.stringify([dir, bundles]);
  if (!secureContexts.has(key)) {
    const tls = dir ? loadCertDir(dir) : { ca: [] as string[], cert: undefined, key: undefined };
    const ca = [...tls.ca, ...bundles.map((f) => readFileSync(f, 'utf8'))];
    secureContexts.set(
      key,
      ca.length || tls.cert
        ? createSecureContext({
            ...(ca.length ? { ca: [...rootCertificates, ...ca] } : {}),
            ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
          })
        : undefined,
    );
  }
  return secureContexts.get(key);
}

/** The cert dir to use: explicit, else the first existing c/image default for this host. */
function defaultCertDir(host: string): string | undefined {
  const candidates = [
    join(process.env.XDG_CONFIG_HOME || join(process.env.HOME || homedir(), '.config'), 'containers', 'certs.d', host),
    join('/etc/containers/certs.d', host),
    join('/etc/docker/certs.d', host),
  ];
  return candidates.find((d) => existsSync(d));
}

export class Transport {
  readonly agent: Dispatcher;
  private readonly opts: TransportOptions;
  private readonly times: number;
  private readonly maxDelayMs: number;
  private readonly baseDelayMs: number;
  private readonly totalMs: number;
  /** Longest Retry-After honoured per try: unbounded (only the total budget counts) unless retry.maxDelayMs is set. */
  private readonly retryAfterCapMs: number;
  private readonly timeoutMs: number;
  /** Origins that answered at least once: a refused connection there later means "restarting", worth a retry. */
  private readonly reachedOrigins = new Set<string>();

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.times = opts.retry?.times ?? 4;
    this.maxDelayMs = opts.retry?.maxDelayMs ?? 30_000;
    this.baseDelayMs = opts.retry?.baseDelayMs ?? 1000;
    this.totalMs = opts.retry?.totalMs ?? 5 * 60_000;
    this.retryAfterCapMs = opts.retry?.maxDelayMs ?? Number.POSITIVE_INFINITY;
    const env = opts.env ?? process.env;
    const timeout = opts.timeoutMs ?? 60_000;
    this.timeoutMs = timeout;
    if (opts.certDir !== undefined) requireDirectory(opts.certDir);
    const dirs = [opts.certDir ?? defaultCertDir(opts.host)].filter((d): d is string => !!d);
    // pullImage passes NIX_SSL_CERT_FILE through impureEnvVars; Node itself only reads its bundled roots.
    // With verification off the CAs are never consulted: skip the bundles, and the 0.1-0.5 s of parsing them on the
    // https attempt that precedes the http fallback (--tls-verify=false, loopback registries).
    const bundles = opts.tlsVerify === false ? [] : [env.NIX_SSL_CERT_FILE, env.SSL_CERT_FILE].filter((f): f is string => !!f && existsSync(f));
    const wantsContext = dirs.length > 0 || bundles.length > 0;
    const tlsFor = () => {
      const secureContext = wantsContext ? secureContextFor(dirs[0], bundles) : undefined;
      return { rejectUnauthorized: opts.tlsVerify !== false, ...(secureContext ? { secureContext } : {}) };
    };
    const connectTimeout = Math.min(timeout, FIRST_CONTACT_MS);
    // The TLS context (re-parsing Node's roots to add extra CAs: 0.1-0.5 s) is built on the first https
    // connection, not up front: plain-http registries (loopback, --tls-verify=false) never pay for it.
    const plainConnector = buildConnector({ timeout: connectTimeout, rejectUnauthorized: opts.tlsVerify !== false });
    let tlsConnector: buildConnector.connector | undefined;
    const connect: buildConnector.connector = (o, cb) => {
      if (o.protocol === 'https:' && wantsContext) {
        tlsConnector ??= buildConnector({ timeout: connectTimeout, ...tlsFor() });
        return tlsConnector(o, cb);
      }
      return plainConnector(o, cb);
    };
    const agentOptions = {
      keepAliveTimeout: 30_000,
      connections: 16,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    };
    const httpProxy = env.http_proxy ?? env.HTTP_PROXY ?? '';
    const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY ?? '';
    this.agent =
      httpProxy || httpsProxy
        ? new EnvHttpProxyAgent({
            ...agentOptions,
            connect: { timeout: connectTimeout, ...tlsFor() }, // proxied setups are rare: eager is fine
            requestTls: tlsFor(),
            // http targets go to an http proxy as plain absolute-form requests (like Go/curl), not CONNECT tunnels.
            proxyTunnel: false,
            httpProxy,
            httpsProxy,
            // Like Go's net/http (skopeo, crane): loopback is never proxied.
            noProxy: [env.no_proxy ?? env.NO_PROXY ?? '', 'localhost', '127.0.0.1', '[::1]'].filter(Boolean).join(','),
            factory: failFastTunnels,
          })
        : new Agent({ ...agentOptions, connect });
  }

  private log(line: string) {
    this.opts.log?.(line);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** How many times a failed request is tried again (--retry-times). */
  get retryTimes(): number {
    return this.times;
  }

  /** One request with redirects and retries. Network failures become one-line NixregErrors naming the host. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const replayable = !(req.body instanceof Readable);
    const mayRetry = (req.retry ?? true) !== false && replayable;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse | undefined;
      let failure: unknown;
      try {
        res = await this.requestFollowingRedirects(req);
        if (req.bufferBody && res.status >= 200 && res.status < 300) res = { ...res, bytes: await this.readBuffered(res, req) };
      } catch (err) {
        res = undefined;
        failure = err;
      }
      const retryable = res
        ? RETRY_STATUSES.has(res.status)
        : req.retry !== 'status' &&
          // a first contact that timed out is a dead host: retrying multiplies the wait, it does not shorten it
          !(req.firstContact && /TIMEOUT|TIMEDOUT/.test(errorCode(failure) ?? '')) &&
          (this.isRetryableError(failure, req.url) || (!!req.bufferBody && BODY_RETRY_CODES.has(errorCode(failure) ?? '')));
      if (!retryable || !mayRetry || attempt >= this.times) {
        if (res) return res;
        throw this.networkError(failure, req);
      }
      const retryAfter = res ? parseRetryAfter(headerValue(res.headers, 'retry-after')) : undefined;
      if (res?.status === 429) {
        const quota = quotaExhausted(res.headers, new URL(res.url).host, retryAfter, this.totalMs - (Date.now() - started));
        if (quota) {
          await res.body.dump().catch(() => {});
          throw new QuotaExhausted(quota);
        }
      }
      const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
      // the registry's own Retry-After is honoured in full, up to --retry-max-time (checked below)
      const delay = retryAfter !== undefined ? Math.min(this.retryAfterCapMs, retryAfter) : Math.min(this.maxDelayMs, backoff * (1 + Math.random() * 0.1));
      if (Date.now() - started + delay > this.totalMs) {
        if (res) return res;
        throw this.networkError(failure, req);
      }
      this.log(
        `retry ${attempt + 1}/${this.times} ${req.method} ${redactUrl(req.url)} after ${res ? `HTTP ${res.status}` : describeSystemError(failure)} in ${Math.round(delay)} ms`,
      );
      if (res) await res.body.dump().catch(() => {});
      await sleep(delay);
    }
  }

  /** A small body read whole; over `limit` is an error of its own (never retried). */
  private async readBuffered(res: HttpResponse, req: HttpRequest): Promise<Buffer> {
    const { limit, what } = req.bufferBody!;
    const hint = req.bufferBody!.hint ? `; ${req.bufferBody!.hint}` : '';
    const declared = Number(headerValue(res.headers, 'content-length'));
    if (declared > limit) {
      await res.body.dump().catch(() => {});
      throw new NixregError(`${what} is ${declared} bytes, more than the ${limit}-byte limit${hint}`);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > limit) {
        res.body.destroy();
        throw new NixregError(`${what} is larger than the ${limit}-byte limit${hint}`);
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private isRetryableError(err: unknown, url: string): boolean {
    if (err instanceof NixregError) return false;
    const code = errorCode(err);
    if (code === 'ECONNREFUSED') return this.reachedOrigins.has(new URL(url).origin);
    return code !== undefined && RESET_CODES.has(code);
  }

  networkError(err: unknown, req: { method: string; url: string; bufferBody?: { what: string } }): Error {
    if (err instanceof NixregError) return err;
    const host = new URL(req.url).host;
    const what = req.bufferBody ? `${req.bufferBody.what} (${req.method} ${host})` : `${req.method} ${host}`;
    return new NixregError(`${what}: ${describeSystemError(err)}`, undefined, { cause: err });
  }

  private async requestFollowingRedirects(req: HttpRequest): Promise<HttpResponse> {
    let url = new URL(req.url);
    const originalHost = url.host;
    const originalOrigin = url.origin;
    let headers = { ...(req.headers ?? {}) };
    for (let hop = 0; ; hop++) {
      const r = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: req.method,
        headers: { 'user-agent': this.opts.userAgent ?? DEFAULT_USER_AGENT, 'docker-distribution-api-version': 'registry/2.0', ...headers },
        body: req.body ?? null,
        ...(req.firstContact ? { headersTimeout: Math.min(this.timeoutMs, FIRST_CONTACT_MS) } : {}),
      });
      this.reachedOrigins.add(url.origin);
      const res: HttpResponse = { status: r.statusCode, headers: r.headers, body: r.body, url: url.toString() };
      const location = headerValue(res.headers, 'location');
      const isRedirect = [301, 302, 303, 307, 308].includes(res.status) && location;
      // 307/308 keep the method and body (RFC 9110 15.4.8-9): followed for any request whose body is a Buffer
      const resendable =
        req.method === 'GET' || req.method === 'HEAD' || ((res.status === 307 || res.status === 308) && (req.body === undefined || Buffer.isBuffer(req.body)));
      if (!isRedirect || req.followRedirects === false || !resendable) return res;
      if (hop >= MAX_REDIRECTS) {
        await res.body.dump().catch(() => {});
        throw new NixregError(`${req.method} ${originalHost}: more than ${MAX_REDIRECTS} redirects`);
      }
      await res.body.dump().catch(() => {});
      const next = new URL(location!, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:')
        throw new NixregError(`${originalHost} redirected to an unsupported URL scheme ${next.protocol}`);
      if (next.origin !== originalOrigin) {
        // Credentials are for the registry's origin (scheme + host + port) only: never for a CDN/S3 redirect
        // target, another port, nor the registry itself after a downgrade from https to plain http.
        const { authorization: _drop, Authorization: _drop2, ...rest } = headers as Record<string, string | string[]>;
        headers = rest;
      }
      this.log(`redirect ${res.status} → ${next.host}`);
      url = next;
    }
  }
}

/** URLs can carry signed query strings (S3) or upload state: log without the query. */
export function redactUrl(u: string): string {
  try {
    const x = new URL(u);
    return x.origin + x.pathname + (x.search ? '?…' : '');
  } catch {
    return '(url)';
  }
}
