import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Authenticator, type AuthOptions, type AuthResult, type Scope } from './auth.js';
import { RegistryError, defaultMessage, sendError } from './errors.js';
import { FaultInjector, sendBody, stall, type FaultOptions, type FaultRule } from './faults.js';
import * as h from './handlers.js';
import { parseRoute, validName, type Route } from './names.js';
import { newCounters, resetCounters, type Counters, type LogEntry } from './stats.js';
import { Storage } from './storage.js';
import { createHash } from 'node:crypto';
import { parseManifest } from './manifests.js';
import { Readable } from 'node:stream';
import { QuirkRuntime, withQuirks } from './quirks.js';
import { resolveQuirks } from './quirks-profiles.js';

export interface RegistryOptions {
  /** interface to bind (default 127.0.0.1) */
  host?: string;
  /** port (default 0 = ephemeral) */
  port?: number;
  /** storage directory (survives restarts); default: in memory */
  storage?: string;
  auth?: AuthOptions;
  /** serve HTTPS with this certificate and key (PEM text, or paths via certFile/keyFile) */
  tls?: { cert?: string | Buffer; key?: string | Buffer; certFile?: string; keyFile?: string };
  /** fault rules (or rules + seed) */
  faults?: FaultOptions | FaultRule[];
  /** OCI-Chunk-Min-Length advertised on upload POST (default 65536; 0 = not advertised) */
  chunkMinLength?: number;
  /**
   * answer a streamed PATCH (no Content-Length and no Content-Range: chunked transfer) with this status instead of
   * accepting it, like registries that only take chunked uploads (default 0 = accept)
   */
  rejectStreamedPatch?: number;
  /** refuse (416) a chunk after one shorter than chunkMinLength: only the last chunk may be short (default false) */
  enforceChunkMinLength?: boolean;
  /** allow `mount` without `from` (default true) */
  anonymousMount?: boolean;
  /** allow DELETE (default true) */
  deleteEnabled?: boolean;
  /** manifest size limit in bytes (default 4 MiB) */
  maxManifestBytes?: number;
  /** page size for tags/list and _catalog when the client sends no `n` (default: no paging) */
  pageSize?: number;
  /** keep at most this many log entries (default 10000; oldest dropped) */
  logLimit?: number;
  /** quirk profiles of real registries, e.g. "ghcr" or "ecr,zot" (mock-registry/quirks-*.ts); explicit options win, but the profile sets the auth mode */
  quirks?: string | string[];
  /** called for each finished request (the CLI prints them) */
  onRequest?: (e: LogEntry) => void;
}

export interface Registry {
  /** http(s)://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, as used in image references */
  host: string;
  port: number;
  log: LogEntry[];
  counters: Counters;
  resetCounters(): void;
  /** replace the fault rules (e.g. after seeding content without faults) */
  setFaults(f: FaultOptions | FaultRule[]): void;
  /** seed a blob directly (no HTTP, no auth, no faults); returns its digest */
  putBlob(name: string, data: Buffer): Promise<string>;
  /** seed a manifest directly (validated like a PUT, referenced blobs must exist); returns its digest */
  putManifest(name: string, ref: string | undefined, body: Buffer | string, mediaType?: string): Promise<string>;
  storage: Storage;
  close(): Promise<void>;
}

const METHODS: Record<Route['kind'], string[]> = {
  ping: ['GET', 'HEAD'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  upload: ['POST', 'PATCH', 'PUT', 'GET', 'DELETE'],
  tags: ['GET'],
  catalog: ['GET'],
  referrers: ['GET'],
  token: ['GET', 'POST'],
};

/** The permission each request needs; pushes need pull too, as in distribution. */
function requiredScopes(route: Route, method: string): Scope[] {
  const repo = (...actions: string[]): Scope[] => [{ type: 'repository', name: route.name!, actions }];
  switch (route.kind) {
    case 'ping':
      return [];
    case 'catalog':
      return [{ type: 'registry', name: 'catalog', actions: ['*'] }];
    case 'upload':
      return repo('pull', 'push');
    case 'manifest':
      if (method === 'PUT') return repo('pull', 'push');
      return method === 'DELETE' ? repo('delete') : repo('pull');
    case 'blob':
      return method === 'DELETE' ? repo('delete') : repo('pull');
    default:
      return repo('pull');
  }
}

const LOGGED_HEADERS = ['range', 'content-range', 'content-type', 'content-length', 'accept', 'transfer-encoding'];

export async function startRegistry(given: RegistryOptions = {}): Promise<Registry> {
  const quirks = resolveQuirks(given.quirks);
  const runtime = quirks ? new QuirkRuntime(quirks) : undefined;
  const options: RegistryOptions = quirks ? withQuirks(quirks, given) : given;
  const storage = await Storage.open(options.storage);
  const auth = new Authenticator(options.auth ?? { mode: 'none' });
  const toFaultOptions = (f?: FaultOptions | FaultRule[]): FaultOptions => (Array.isArray(f) ? { rules: f } : (f ?? { rules: [] }));
  let injector = new FaultInjector(toFaultOptions(options.faults));
  const counters = newCounters();
  const log: LogEntry[] = [];
  const logLimit = options.logLimit ?? 10_000;
  const handlerOptions: h.HandlerOptions = {
    chunkMinLength: options.chunkMinLength ?? 65536,
    rejectStreamedPatch: options.rejectStreamedPatch ?? 0,
    enforceChunkMinLength: options.enforceChunkMinLength ?? false,
    anonymousMount: options.anonymousMount ?? true,
    deleteEnabled: options.deleteEnabled ?? true,
    maxManifestBytes: options.maxManifestBytes ?? 4 * 1024 * 1024,
    pageSize: options.pageSize,
  };
  let seq = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const asSent = req.url ?? '/';
    if (runtime) req.url = runtime.rewriteUrl(asSent);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://registry.invalid');
    } catch {
      url = new URL('http://registry.invalid/');
    }
    const route = parseRoute(url.pathname);
    const entry: LogEntry = {
      seq: ++seq,
      time: new Date(started).toISOString(),
      method,
      url: asSent,
      route: route?.kind ?? 'unknown',
      name: route?.name,
      status: 0,
      headers: Object.fromEntries(LOGGED_HEADERS.filter((k) => req.headers[k] !== undefined).map((k) => [k, String(req.headers[k])])),
      durationMs: 0,
    };
    const authz = req.headers.authorization;
    if (authz) entry.auth = /^bearer /i.test(authz) ? 'bearer' : /^basic /i.test(authz) ? 'basic' : undefined;
    counters.requests++;
    res.once('close', () => {
      entry.status = res.statusCode;
      entry.durationMs = Date.now() - started;
      counters.byStatus[res.statusCode] = (counters.byStatus[res.statusCode] ?? 0) + 1;
      log.push(entry);
      if (log.length > logLimit) log.splice(0, log.length - logLimit);
      options.onRequest?.(entry);
    });
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    try {
      if (!route) throw new RegistryError(404, 'UNSUPPORTED', `no endpoint ${url.pathname.slice(0, 100)}`);
      const key = `${method} ${route.kind}`;
      counters.byRoute[key] = (counters.byRoute[key] ?? 0) + 1;
      const faults = injector.pick(route.kind, method, req.headers.range !== undefined, url.searchParams.has('mount'));
      if (faults.length) {
        counters.faultsInjected += faults.length;
        entry.faults = faults.map((f) => (f.kind === 'status' ? `status ${f.status ?? 503}` : f.kind));
      }
      const preStall = faults.find((f) => f.kind === 'stall' && f.afterBytes === undefined);
      if (preStall) {
        await stall(res, preStall.stallMs);
        if (res.destroyed) return;
      }
      // Body faults act on GET manifest/blob bodies; a reset anywhere else drops the connection before any answer.
      const bodyRoute = method === 'GET' && (route.kind === 'blob' || route.kind === 'manifest' || route.kind === 'token');
      if (!bodyRoute && faults.some((f) => f.kind === 'reset')) {
        req.socket.resetAndDestroy();
        return;
      }
      const statusFault = faults.find((f) => f.kind === 'status');
      if (statusFault) return injectStatus(res, statusFault, method === 'HEAD');
      if (!METHODS[route.kind].includes(method))
        throw new RegistryError(405, 'UNSUPPORTED', `${method} is not supported on ${route.kind} endpoints`, undefined, {
          Allow: METHODS[route.kind].join(', '),
        });
      if (route.name !== undefined && !validName(route.name))
        throw new RegistryError(400, 'NAME_INVALID', `invalid repository name "${route.name.slice(0, 100)}"`, { name: route.name });

      if (route.kind === 'token') return await token(req, res, url, faults);

      let who: AuthResult;
      try {
        who = auth.authorize(req, requiredScopes(route, method));
      } catch (err) {
        counters.authFailures++;
        throw err;
      }
      entry.user = who.user;
      if (runtime) runtime.wrap(res, route, method);
      const body = runtime ? await runtime.before(req, res, route, method, url) : req;
      const ctx: h.Ctx = {
        req: body,
        res,
        url,
        method,
        name: route.name ?? '',
        ref: route.ref ?? '',
        storage,
        counters,
        faults,
        options: handlerOptions,
        canPull: (name) => {
          try {
            auth.authorize(req, [{ type: 'repository', name, actions: ['pull'] }]);
            return true;
          } catch {
            return false;
          }
        },
      };
      await dispatch(route, method, ctx);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof RegistryError) return sendError(res, err, method === 'HEAD');
      // a client that went away mid-body is not a server error worth a stack trace
      if (req.destroyed || (err as { code?: string }).code === 'ECONNRESET' || (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE')
        return void res.destroy();
      const msg = (err as Error)?.message ?? String(err);
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`internal error: ${msg}\n`);
    }
  }

  async function token(req: IncomingMessage, res: ServerResponse, url: URL, faults: FaultRule[]): Promise<void> {
    let form: URLSearchParams | undefined;
    if (req.method === 'POST') {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      form = new URLSearchParams(Buffer.concat(parts).toString('utf8'));
    }
    const body = Buffer.from(JSON.stringify(auth.issueToken(req, url.searchParams, form)));
    counters.tokensIssued++;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    await sendBody(res, Readable.from([body]), body.length, faults); // body faults (reset, truncate, ...) apply to tokens too
  }

  const tlsCert = options.tls && (options.tls.cert ?? (options.tls.certFile ? readFileSync(options.tls.certFile) : undefined));
  const tlsKey = options.tls && (options.tls.key ?? (options.tls.keyFile ? readFileSync(options.tls.keyFile) : undefined));
  if (options.tls && (!tlsCert || !tlsKey)) throw new Error('TLS needs both a certificate and a key');
  const listener = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);
  const server: Server = options.tls ? createHttps({ cert: tlsCert, key: tlsKey }, listener) : createHttp(listener);
  // Node's default 5 s keep-alive timeout is shorter than Go clients' idle timeout; avoid racing them.
  server.keepAliveTimeout = 65_000;
  const bindHost = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, bindHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = bindHost.includes(':') ? `[${bindHost}]` : bindHost;
  const host = `${hostPart}:${port}`;
  const url = `${options.tls ? 'https' : 'http'}://${host}`;
  auth.realm = `${url}/token`;
  let realmServer: Server | undefined;
  if (runtime) {
    runtime.base = url;
    if (runtime.q.realmOnOtherPort) {
      realmServer = options.tls ? createHttps({ cert: tlsCert, key: tlsKey }, listener) : createHttp(listener);
      const s = realmServer;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, bindHost, () => resolve());
      });
      auth.realm = `${options.tls ? 'https' : 'http'}://${hostPart}:${(s.address() as AddressInfo).port}/token`;
    }
  }

  return {
    url,
    host,
    port,
    log,
    counters,
    storage,
    resetCounters: () => {
      resetCounters(counters);
      log.length = 0;
    },
    setFaults: (f) => {
      injector = new FaultInjector(toFaultOptions(quirks ? withQuirks(quirks, { faults: f }).faults : f));
    },
    async putBlob(name, data) {
      const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
      const u = await storage.startUpload(name);
      await storage.append(u, Readable.from([data]));
      await storage.commitUpload(u, digest);
      return digest;
    },
    async putManifest(name, ref, body, mediaType) {
      const buf = Buffer.from(body);
      const digest = 'sha256:' + createHash('sha256').update(buf).digest('hex');
      const info = parseManifest(buf, mediaType, digest);
      for (const b of info.blobs) if (storage.blobSize(name, b) === undefined) throw new Error(`putManifest: blob ${b} is not in ${name}`);
      await storage.putManifest(name, info, buf, ref && !ref.includes(':') ? ref : undefined);
      return digest;
    },
    close: () =>
      new Promise<void>((resolve) => {
        realmServer?.close();
        realmServer?.closeAllConnections();
        server.close(() => resolve());
        server.closeAllConnections(); // stalled fault responses must not keep the server alive
      }),
  };
}

async function dispatch(route: Route, method: string, ctx: h.Ctx): Promise<void> {
  switch (route.kind) {
    case 'ping':
      return h.ping(ctx);
    case 'manifest':
      if (method === 'PUT') return h.putManifest(ctx);
      if (method === 'DELETE') return h.deleteManifest(ctx);
      return h.getManifest(ctx);
    case 'blob':
      return method === 'DELETE' ? h.deleteBlob(ctx) : h.getBlob(ctx);
    case 'upload':
      if (method === 'POST') return h.startUpload(ctx);
      if (ctx.ref === '') throw new RegistryError(404, 'BLOB_UPLOAD_UNKNOWN', 'no upload session id in the URL');
      if (method === 'PATCH') return h.patchUpload(ctx);
      if (method === 'PUT') return h.putUpload(ctx);
      if (method === 'GET') return h.uploadStatus(ctx);
      return h.cancelUpload(ctx);
    case 'tags':
      return h.listTags(ctx);
    case 'catalog':
      return h.catalog(ctx);
    case 'referrers':
      return h.referrers(ctx);
    default:
      throw new RegistryError(404, 'UNSUPPORTED', 'no such endpoint');
  }
}

function injectStatus(res: ServerResponse, f: FaultRule, head: boolean): void {
  const status = f.status ?? 503;
  const retryAfter = f.retryAfter ?? (status === 429 ? 1 : undefined);
  const headers: Record<string, string> = { ...(retryAfter !== undefined ? { 'Retry-After': String(retryAfter) } : {}), ...(f.headers ?? {}) };
  if (status === 429) return sendError(res, new RegistryError(429, 'TOOMANYREQUESTS', 'too many requests (injected)', undefined, headers), head);
  if (f.codes?.length)
    return sendError(
      res,
      RegistryError.many(
        status,
        f.codes.map((code) => ({ code, message: `${defaultMessage(code)} (injected)` })),
      ),
      head,
    );
  const body = Buffer.from(`injected fault: HTTP ${status}\n`);
  res.writeHead(status, { ...headers, 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(head ? undefined : body);
}
