import { mkdirSync, mkdtempSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { makeSelfSignedCert, type TestCert } from '../helpers/tls.js';
import { pushImage, pushIndex, uploadBlob } from '../helpers/upload.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseRetryAfter } from '../../src/registry/transport.js';
import { sha256Digest } from '../../src/digest/sha256.js';
import { MediaType } from '../../src/manifest/media-types.js';
import { parseManifest } from '../../src/manifest/manifest.js';
import { selectPlatform } from '../../src/manifest/platform.js';
import { ExitCode, NixregError } from '../../src/errors.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const fastRetry = { times: 3, baseDelayMs: 20, maxDelayMs: 2000 };

function testImage() {
  const layers = [gzipSync(randomBytes(100_000)), gzipSync(Buffer.from('layer two\n'.repeat(500)))];
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, salt: randomBytes(8).toString('hex') }),
  );
  return { config, layers };
}

/** Upload + read back through `client` (which must have pushScope), checking every byte. */
async function roundTrip(client: RegistryClient, tag = 'v1') {
  const img = testImage();
  const pushed = await pushImage(client, client.repository, tag, img);
  const byTag = await client.getManifest(tag);
  expect(byTag.bytes.equals(pushed.manifest)).toBe(true);
  expect(byTag.digest).toBe(pushed.manifestDigest);
  expect(byTag.mediaType).toBe(MediaType.dockerManifest);
  const byDigest = await client.getManifest(pushed.manifestDigest);
  expect(byDigest.bytes.equals(pushed.manifest)).toBe(true);
  expect(await client.headManifest(tag)).toEqual({ digest: pushed.manifestDigest, mediaType: MediaType.dockerManifest, size: pushed.manifest.length });
  const m = parseManifest(byTag.bytes, byTag.mediaType);
  if (m.kind !== 'image') throw new Error('expected an image manifest');
  for (const [i, l] of m.layers.entries()) {
    const got = await collect(await client.getBlob(l.digest, { size: l.size }));
    expect(got.equals(img.layers[i]!)).toBe(true);
    expect(await client.headBlob(l.digest)).toEqual({ size: img.layers[i]!.length });
  }
  expect((await collect(await client.getBlob(m.config.digest))).equals(img.config)).toBe(true);
  return { img, pushed };
}

async function errorOf(p: Promise<unknown>): Promise<NixregError> {
  const e = await p.then(
    () => undefined,
    (err) => err,
  );
  expect(e).toBeInstanceOf(NixregError);
  expect((e as Error).message).not.toContain('\n');
  return e as NixregError;
}

describe('plain distribution', () => {
  let reg: Distribution;
  beforeAll(async () => (reg = await startDistribution()));
  afterAll(async () => reg?.stop());

  it('uploads and reads back a blob + manifest; index + platform selection', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'test/img', pushScope: true, retry: fastRetry });
    const { pushed } = await roundTrip(client);
    const { indexDigest, index } = await pushIndex(client, 'test/img', 'multi', {
      manifests: [
        { digest: sha256Digest('x'.repeat(10)), size: 10, mediaType: MediaType.dockerManifest, platform: { os: 'linux', architecture: 'unknown' } },
        { digest: pushed.manifestDigest, size: pushed.size, mediaType: pushed.mediaType, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ].slice(1),
      mediaType: MediaType.ociIndex,
    });
    const got = await client.getManifest('multi');
    expect(got.bytes.equals(index)).toBe(true);
    expect(got.digest).toBe(indexDigest);
    const parsed = parseManifest(got.bytes, got.mediaType);
    if (parsed.kind !== 'index') throw new Error('expected index');
    expect(selectPlatform(parsed, { os: 'linux', arch: 'arm64' }).digest).toBe(pushed.manifestDigest);
    await client.close();
  });

  it('url-string targets work for the pull helper', async () => {
    const r = await pushImage(reg.url, 'other/img', 'latest', { ...testImage(), manifestMediaType: MediaType.ociManifest });
    const c = new RegistryClient({ registry: reg.host, repository: 'other/img' });
    const m = await c.getManifest('latest');
    expect(m.mediaType).toBe(MediaType.ociManifest);
    expect(m.digest).toBe(r.manifestDigest);
    await c.close();
  });

  it('404s are notFound errors naming image and ref', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'test/img' });
    const e = await errorOf(client.getManifest('nope'));
    expect(e.exitCode).toBe(ExitCode.notFound);
    expect(e.message).toContain(`${reg.host}/test/img:nope`);
    const d = sha256Digest('missing');
    const e2 = await errorOf(client.getBlob(d));
    expect(e2.exitCode).toBe(ExitCode.notFound);
    expect(e2.message).toContain(d);
    expect(await client.headBlob(d)).toBeUndefined();
    expect(await client.headManifest('nope')).toBeUndefined();
    await client.close();
  });

  it('cross-repo mount and cancelUpload', async () => {
    const src = new RegistryClient({ registry: reg.host, repository: 'mount/src', pushScope: true });
    const blob = randomBytes(1000);
    const digest = await uploadBlob(src, blob);
    const dst = new RegistryClient({ registry: reg.host, repository: 'mount/dst', pushScope: true });
    expect(await dst.startUpload({ mount: digest, from: 'mount/src' })).toEqual({ mounted: true });
    expect((await collect(await dst.getBlob(digest))).equals(blob)).toBe(true);
    const s = await dst.startUpload();
    if (s.mounted) throw new Error('unexpected mount');
    await dst.cancelUpload(s.location);
    await Promise.all([src.close(), dst.close()]);
  });

  it('a wrong digest on finishUpload is rejected by the registry with a summarised error', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'test/bad', pushScope: true });
    const s = await client.startUpload();
    if (s.mounted) throw new Error('unexpected mount');
    const next = await client.uploadBlobStream(s.location, Readable.from([Buffer.from('abc')], { objectMode: false }), 3);
    const e = await errorOf(client.finishUpload(next, sha256Digest('not abc')));
    expect(e.message).toMatch(/DIGEST_INVALID|digest/i);
    if (process.env.SHOW_MESSAGES) console.log('MSG', e.message);
    await client.close();
  });
});

describe('htpasswd Basic auth', () => {
  let reg: Distribution;
  let dir: string;
  beforeAll(async () => {
    reg = await startDistribution({ htpasswd: { alice: 's3cret-pass' } });
    dir = mkdtempSync(join(tmpdir(), 'nixreg-basic-'));
  });
  afterAll(async () => {
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips with --creds; the debug log never shows the secret', async () => {
    const lines: string[] = [];
    const client = new RegistryClient({
      registry: reg.host,
      repository: 'priv/img',
      pushScope: true,
      creds: { username: 'alice', password: 's3cret-pass' },
      log: (l) => lines.push(l),
    });
    await roundTrip(client);
    await client.close();
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    expect(all).not.toContain('s3cret-pass');
    expect(all).not.toContain(Buffer.from('alice:s3cret-pass').toString('base64'));
  });

  it('credentials from an auth file are used, and a wrong password names registry and source, never the secret', async () => {
    const authfile = join(dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret-pass').toString('base64') } } }));
    const ok = new RegistryClient({ registry: reg.host, repository: 'priv/img', authfile, env: { HOME: dir } });
    await ok.headManifest('whatever');
    await ok.close();
    writeFileSync(authfile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:WRONG-topsecret').toString('base64') } } }));
    const bad = new RegistryClient({ registry: reg.host, repository: 'priv/img', authfile, env: { HOME: dir } });
    const e = await errorOf(bad.getManifest('v1'));
    expect(e.exitCode).toBe(ExitCode.auth);
    expect(e.message).toContain(`401 from ${reg.host}`);
    expect(e.message).toContain('credentials from ~/auth.json'); // HOME=dir: shown relative to home
    expect(e.message).not.toContain('WRONG-topsecret');
    expect(e.message).not.toContain(Buffer.from('alice:WRONG-topsecret').toString('base64'));
    await bad.close();
  });

  it('anonymous access says to log in', async () => {
    const anon = new RegistryClient({ registry: reg.host, repository: 'priv/img', env: { HOME: dir } });
    const e = await errorOf(anon.getManifest('v1'));
    expect(e.exitCode).toBe(ExitCode.auth);
    expect(e.message).toMatch(/anonymous/);
    if (process.env.SHOW_MESSAGES) console.log('MSG', e.message);
    await anon.close();
  });
});

describe('bearer token auth (token server + distribution)', () => {
  let reg: Distribution;
  let ts: TokenServer;
  let pullOnly: TokenServer;
  let regPullOnly: Distribution;
  beforeAll(async () => {
    ts = await startTokenServer({ users: { bob: 'hunter2-secret' }, refreshTokens: { 'refresh-for-bob': 'bob' } });
    reg = await startDistribution({ token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootCertBundle: ts.rootCertBundle } });
    pullOnly = await startTokenServer({ users: { bob: 'hunter2-secret' }, allowedActions: ['pull'] });
    regPullOnly = await startDistribution({
      token: { realm: pullOnly.realm, service: pullOnly.service, issuer: pullOnly.issuer, rootCertBundle: pullOnly.rootCertBundle },
    });
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), regPullOnly?.stop(), ts?.stop(), pullOnly?.stop()]);
  });

  it('round-trips with a pull,push token; account= and Basic sent to the token server', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'tok/img', pushScope: true, creds: { username: 'bob', password: 'hunter2-secret' } });
    const before = ts.requests.length;
    await roundTrip(client);
    const mine = ts.requests.slice(before);
    expect(mine.length).toBe(1); // one token for everything
    expect(mine[0]).toEqual({ account: 'bob', scopes: ['repository:tok/img:pull,push'], service: ts.service, authorized: true });
    await client.close();
  });

  it('anonymous pull: no account, one token shared by concurrent requests', async () => {
    const pusher = new RegistryClient({ registry: reg.host, repository: 'tok/anon', pushScope: true });
    const { layers } = testImage();
    const digests = await Promise.all(layers.map((l) => uploadBlob(pusher, l)));
    await pusher.close();
    const client = new RegistryClient({ registry: reg.host, repository: 'tok/anon' });
    const before = ts.requests.length;
    const got = await Promise.all([...digests, ...digests].map(async (d) => collect(await client.getBlob(d))));
    expect(got[0]!.equals(layers[0]!)).toBe(true);
    expect(got[3]!.equals(layers[1]!)).toBe(true);
    const mine = ts.requests.slice(before);
    expect(mine).toEqual([{ scopes: ['repository:tok/anon:pull'], service: ts.service, authorized: false }]);
    await client.close();
  });

  it('identity token from an auth file: POST refresh_token grant', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-idtok-'));
    const authfile = join(dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('bob:').toString('base64'), identitytoken: 'refresh-for-bob' } } }));
    const pusher = new RegistryClient({ registry: reg.host, repository: 'tok/id', pushScope: true });
    const digest = await uploadBlob(pusher, Buffer.from('id token blob'));
    await pusher.close();
    const before = ts.requests.length;
    const client = new RegistryClient({ registry: reg.host, repository: 'tok/id', authfile, env: { HOME: dir } });
    expect((await collect(await client.getBlob(digest))).toString()).toBe('id token blob');
    expect(ts.requests.slice(before)).toEqual([{ account: 'bob (refresh nixreg)', scopes: ['repository:tok/id:pull'], service: ts.service, authorized: true }]);
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wrong password → auth error from the token server naming the registry; no secret', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'tok/img', creds: { username: 'bob', password: 'not-hunter2-xyz' } });
    const e = await errorOf(client.getManifest('v1'));
    expect(e.exitCode).toBe(ExitCode.auth);
    expect(e.message).toContain(reg.host);
    expect(e.message).toContain('--creds');
    expect(e.message).not.toContain('not-hunter2-xyz');
    if (process.env.SHOW_MESSAGES) console.log('MSG', e.message);
    await client.close();
  });

  it('a token server granting only pull makes push fail cleanly (after one insufficient_scope re-token)', async () => {
    const client = new RegistryClient({
      registry: regPullOnly.host,
      repository: 'ro/img',
      pushScope: true,
      creds: { username: 'bob', password: 'hunter2-secret' },
    });
    const e = await errorOf(pushImage(client, 'ro/img', 'v1', testImage()));
    expect(e.exitCode).toBe(ExitCode.auth);
    expect(e.message).toContain(regPullOnly.host);
    if (process.env.SHOW_MESSAGES) console.log('MSG', e.message);
    expect(e.message).not.toContain('hunter2-secret');
    await client.close();
  });
});

describe('TLS', () => {
  let reg: Distribution;
  let cert: TestCert;
  let certDir: string;
  beforeAll(async () => {
    cert = makeSelfSignedCert();
    reg = await startDistribution({ tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
    certDir = mkdtempSync(join(tmpdir(), 'nixreg-certdir-'));
    mkdirSync(certDir, { recursive: true });
    copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
  });
  afterAll(async () => {
    await reg?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  it('trusts the registry through --cert-dir', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'tls/img', pushScope: true, certDir });
    await roundTrip(client);
    await client.close();
  });

  it('NIX_SSL_CERT_FILE / SSL_CERT_FILE add trusted CAs (pullImage passes NIX_SSL_CERT_FILE through)', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'tls/env', env: { HOME: certDir, NIX_SSL_CERT_FILE: cert.certFile } });
    expect(await client.headManifest('nothing')).toBeUndefined();
    await client.close();
  });

  it('tlsVerify=false skips verification', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'tls/img2', pushScope: true, tlsVerify: false });
    await roundTrip(client);
    await client.close();
  });

  it('untrusted certificate: a clear TLS error, no silent http fallback', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'tls/img' });
    const e = await errorOf(client.getManifest('v1'));
    expect(e.message).toMatch(/TLS certificate not trusted/);
    if (process.env.SHOW_MESSAGES) console.log('MSG', e.message);
    expect(e.message).toContain(reg.host);
    await client.close();
  });
});

// ------------------------------------------------------------------------------------------------
// Faults a real registry cannot produce: a purpose-built server on 127.0.0.1.

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface Fake {
  host: string;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  connections: number;
  stop(): Promise<void>;
  server: Server;
}

async function startFake(handler: Handler): Promise<Fake> {
  const fake: Fake = { host: '', requests: [], connections: 0, stop: async () => {}, server: undefined as unknown as Server };
  const server = createServer((req, res) => {
    fake.requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (req.url === '/v2/') return void res.writeHead(200, { 'content-length': '2' }).end('{}');
    handler(req, res);
  });
  server.on('connection', () => fake.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.server = server;
  fake.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  fake.stop = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}

describe('faults', () => {
  const blob = randomBytes(300_000);
  const digest = sha256Digest(blob);

  /** Serves `blob`; the first response is cut after `cut` bytes (socket destroyed). */
  function resetting(opts: { range: boolean }) {
    let first = true;
    return (req: IncomingMessage, res: ServerResponse) => {
      const range = opts.range ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
      if (range) {
        const start = Number(range[1]);
        res.writeHead(206, { 'content-length': String(blob.length - start), 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
        return void res.end(blob.subarray(start));
      }
      res.writeHead(200, { 'content-length': String(blob.length) });
      if (first) {
        first = false;
        res.write(blob.subarray(0, 100_000), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      res.end(blob);
    };
  }

  it('resumes a reset blob with Range: bytes=N-', async () => {
    const fake = await startFake(resetting({ range: true }));
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x', retry: fastRetry });
    const got = await collect(await client.getBlob(digest, { size: blob.length }));
    expect(got.equals(blob)).toBe(true);
    const gets = fake.requests.filter((r) => r.url.includes('/blobs/'));
    expect(gets.length).toBe(2);
    expect(gets[1]!.headers.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(gets[1]!.headers.range!)![0])).toBeGreaterThan(0);
    expect(gets[0]!.headers['accept-encoding']).toBeUndefined();
    await client.close();
    await fake.stop();
  });

  it('falls back to a full re-read (prefix skipped) when the server ignores Range', async () => {
    const fake = await startFake(resetting({ range: false }));
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x', retry: fastRetry });
    const got = await collect(await client.getBlob(digest, { size: blob.length }));
    expect(got.equals(blob)).toBe(true);
    await client.close();
    await fake.stop();
  });

  it('a flipped byte fails with an integrity error naming expected and actual digest', async () => {
    const bad = Buffer.from(blob);
    bad[12345] ^= 0x01;
    const fake = await startFake((_req, res) => res.writeHead(200, { 'content-length': String(bad.length) }).end(bad));
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x' });
    const stream = await client.getBlob(digest, { size: blob.length });
    const e = await errorOf(collect(stream));
    expect(e.exitCode).toBe(ExitCode.integrity);
    expect(e.message).toContain(`expected ${digest}`);
    expect(e.message).toContain(`got ${sha256Digest(bad)}`);
    // wrong Content-Length is caught before streaming
    const e2 = await errorOf(client.getBlob(digest, { size: blob.length + 1 }));
    expect(e2.exitCode).toBe(ExitCode.integrity);
    await client.close();
    await fake.stop();
  });

  it('429 with Retry-After (seconds) is retried after the delay; 503 with backoff; connections are reused', async () => {
    let n = 0;
    const fake = await startFake((_req, res) => {
      n++;
      if (n === 1) return void res.writeHead(429, { 'retry-after': '1', 'content-length': '0' }).end();
      if (n === 2) return void res.writeHead(503, { 'content-length': '0' }).end();
      res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
    });
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x', retry: fastRetry });
    const t0 = Date.now();
    const got = await collect(await client.getBlob(digest));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(got.equals(blob)).toBe(true);
    expect(n).toBe(3);
    // keep-alive: further requests reuse the pooled connection(s) instead of opening new ones
    const c0 = fake.connections;
    for (let i = 0; i < 5; i++) expect((await collect(await client.getBlob(digest))).equals(blob)).toBe(true);
    expect(fake.connections - c0).toBeLessThanOrEqual(1); // 5 requests; without keep-alive this would be 5
    await client.close();
    await fake.stop();
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
    expect(parseRetryAfter('7')).toBe(7000);
  });

  it('retries stop after the configured times and surface the registry error summary', async () => {
    const fake = await startFake((_req, res) =>
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'storage backend down' }] })),
    );
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x', retry: { times: 2, baseDelayMs: 5 } });
    const e = await errorOf(client.getManifest('v1'));
    expect(e.message).toContain('HTTP 500');
    expect(e.message).toContain('UNKNOWN: storage backend down');
    expect(fake.requests.filter((r) => r.url.includes('manifests')).length).toBe(3);
    await client.close();
    await fake.stop();
  });

  it('redirects are followed without Authorization to another host', async () => {
    const cdn = await startFake((_req, res) => res.writeHead(200, { 'content-length': String(blob.length) }).end(blob));
    const reg = await startFake((req, res) => {
      if (!req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="x"', 'content-length': '0' }).end();
      res.writeHead(307, { location: `http://${cdn.host}/blob-data?sig=abc`, 'content-length': '0' }).end();
    });
    // the fake answers /v2/ with 200; make the first blob GET carry a Basic challenge via creds + basic scheme
    reg.server.removeAllListeners('request');
    reg.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      reg.requests.push({ method: req.method!, url: req.url!, headers: req.headers });
      if (req.url === '/v2/' && !req.headers.authorization)
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="x"', 'content-length': '0' }).end();
      if (!req.headers.authorization) return void res.writeHead(401, { 'content-length': '0' }).end();
      res.writeHead(307, { location: `http://${cdn.host}/blob-data?sig=abc`, 'content-length': '0' }).end();
    });
    const client = new RegistryClient({ registry: reg.host, repository: 'r/x', creds: { username: 'u', password: 'redirect-secret' } });
    const got = await collect(await client.getBlob(digest));
    expect(got.equals(blob)).toBe(true);
    const regGet = reg.requests.find((r) => r.url.includes('/blobs/'))!;
    expect(regGet.headers.authorization).toMatch(/^Basic /);
    expect(cdn.requests.length).toBe(1);
    expect(cdn.requests[0]!.headers.authorization).toBeUndefined();
    expect(cdn.requests[0]!.url).toBe('/blob-data?sig=abc');
    await client.close();
    await Promise.all([cdn.stop(), reg.stop()]);
  });

  it('manifest: Accept list, digest verification, schema1 rejection', async () => {
    const real = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: {}, layers: [] }));
    const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [], signatures: [] }));
    const fake = await startFake((req, res) => {
      if (req.url!.endsWith('/old')) return void res.writeHead(200, { 'content-type': MediaType.dockerSchema1Signed }).end(schema1);
      if (req.url!.endsWith('/oldjson')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(schema1);
      res.writeHead(200, { 'content-type': MediaType.dockerManifest + '; charset=utf-8' }).end(real);
    });
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x' });
    const m = await client.getManifest('v1');
    expect(m.mediaType).toBe(MediaType.dockerManifest);
    expect(m.bytes.equals(real)).toBe(true);
    const accept = fake.requests.find((r) => r.url.endsWith('/manifests/v1'))!.headers.accept!;
    expect(accept.split(', ')).toEqual([
      MediaType.ociManifest,
      MediaType.dockerManifest,
      MediaType.dockerSchema1Signed,
      MediaType.dockerSchema1,
      MediaType.dockerManifestList,
      MediaType.ociIndex,
    ]);
    const wrong = sha256Digest('something else');
    const e = await errorOf(client.getManifest(wrong));
    expect(e.exitCode).toBe(ExitCode.integrity);
    expect(e.message).toContain(`expected ${wrong}`);
    expect((await errorOf(client.getManifest('old'))).message).toMatch(/schema1.*not supported/);
    expect((await errorOf(client.getManifest('oldjson'))).message).toMatch(/schema1.*not supported/);
    await client.close();
    await fake.stop();
  });

  it('getBlob with offset asks for Range: bytes=N- and delivers the tail (size-checked)', async () => {
    const fake = await startFake((req, res) => {
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(206, { 'content-length': String(blob.length - start), 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
      res.end(blob.subarray(start));
    });
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x' });
    const tail = await collect(await client.getBlob(digest, { offset: 250_000, size: blob.length }));
    expect(tail.equals(blob.subarray(250_000))).toBe(true);
    expect(fake.requests.find((r) => r.url.includes('/blobs/'))!.headers.range).toBe('bytes=250000-');
    await client.close();
    await fake.stop();
  });

  it('cert dir: *.crt CA and a *.cert/*.key client pair (mutual TLS)', async () => {
    const serverCert = makeSelfSignedCert();
    const clientCert = makeSelfSignedCert('nixreg-client');
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-mtls-'));
    copyFileSync(serverCert.certFile, join(dir, 'ca.crt'));
    copyFileSync(clientCert.certFile, join(dir, 'client.cert'));
    copyFileSync(clientCert.keyFile, join(dir, 'client.key'));
    const seen: (string | undefined)[] = [];
    const server = createHttpsServer(
      { key: serverCert.keyPem, cert: serverCert.certPem, ca: [clientCert.certPem], requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        seen.push((req.socket as TLSSocket).getPeerCertificate().subject?.CN as string | undefined);
        if (req.url === '/v2/') return void res.writeHead(200, { 'content-length': '2' }).end('{}');
        res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const client = new RegistryClient({ registry: host, repository: 'r/x', certDir: dir });
    expect((await collect(await client.getBlob(digest))).equals(blob)).toBe(true);
    expect(seen).toContain('nixreg-client');
    await client.close();
    // without the client pair the server refuses the handshake
    const dir2 = mkdtempSync(join(tmpdir(), 'nixreg-mtls-'));
    copyFileSync(serverCert.certFile, join(dir2, 'ca.crt'));
    const noPair = new RegistryClient({ registry: host, repository: 'r/x', certDir: dir2 });
    const t0 = Date.now();
    const e = await errorOf(noPair.getBlob(digest));
    expect(e.message).toContain(`cannot reach registry ${host}`);
    expect(Date.now() - t0).toBeLessThan(3000); // handshake refusals are not retried with backoff
    if (process.env.SHOW_MESSAGES) console.log('MSG', e.message);
    await noPair.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
    rmSync(dir2, { recursive: true, force: true });
  });

  it('a stalled body hits the read timeout: one resume, then a clear error', async () => {
    const fake = await startFake((_req, res) => {
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.write(blob.subarray(0, 1000)); // then nothing
    });
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x', timeoutMs: 300, retry: { times: 1, baseDelayMs: 10 } });
    const t0 = Date.now();
    const e = await errorOf(collect(await client.getBlob(digest)));
    expect(e.message).toMatch(/read timeout/);
    expect(Date.now() - t0).toBeLessThan(6000); // 2 x 300 ms read timeouts, not the 60 s default
    expect(fake.requests.filter((r) => r.url.includes('/blobs/')).length).toBe(2);
    await client.close();
    await fake.stop();
  });

  it('http_proxy from the environment is used (pullImage passes proxy variables through); loopback bypasses it', async () => {
    const fake = await startFake((_req, res) => res.writeHead(200, { 'content-length': String(blob.length) }).end(blob));
    const proxied: string[] = [];
    const proxy = createServer((req, res) => {
      proxied.push(req.url!); // absolute-form: http://registry.invalid:5000/path → forwarded to the fake
      const target = new URL(req.url!);
      const up = httpRequest(`http://${fake.host}${target.pathname}${target.search}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    proxy.on('connect', (_req, sock) => sock.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n')); // no https tunnels here
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const home = mkdtempSync(join(tmpdir(), 'nixreg-proxy-'));
    const env = { HOME: home, http_proxy: proxyUrl };
    const viaProxy = new RegistryClient({ registry: 'registry.invalid:5000', repository: 'r/x', env, tlsVerify: false, timeoutMs: 3000 });
    expect((await collect(await viaProxy.getBlob(digest))).equals(blob)).toBe(true);
    expect(proxied).toContain(`http://registry.invalid:5000/v2/r/x/blobs/${digest}`);
    await viaProxy.close();
    const n = proxied.length;
    const direct = new RegistryClient({ registry: fake.host, repository: 'r/x', env, timeoutMs: 3000 });
    expect((await collect(await direct.getBlob(digest))).equals(blob)).toBe(true);
    expect(proxied.length).toBe(n);
    await direct.close();
    proxy.closeAllConnections();
    await new Promise<void>((r) => proxy.close(() => r()));
    await fake.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('a 401 challenge after an open /v2/ is adopted (GGCR behaviour), once', async () => {
    const fake = await startFake((req, res) => {
      if (req.headers.authorization !== 'Basic ' + Buffer.from('u:pw-open').toString('base64'))
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="repo"', 'content-length': '0' }).end();
      res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
    });
    const client = new RegistryClient({ registry: fake.host, repository: 'r/x', creds: { username: 'u', password: 'pw-open' } });
    expect((await collect(await client.getBlob(digest))).equals(blob)).toBe(true);
    expect((await collect(await client.getBlob(digest))).equals(blob)).toBe(true);
    expect(fake.requests.filter((r) => r.url.includes('/blobs/')).length).toBe(3); // 401, 200, then 200 directly
    await client.close();
    await fake.stop();
  });

  it('unknown host is one clear line (the .invalid TLD never resolves)', async () => {
    const client = new RegistryClient({ registry: 'registry.invalid', repository: 'r/x', retry: fastRetry, env: { HOME: tmpdir() } });
    const e = await errorOf(client.getManifest('v1'));
    expect(e.message).toBe('cannot reach registry registry.invalid: unknown host');
    await client.close();
  });

  it('connection refused is one clear line, fast', async () => {
    const fake = await startFake(() => {});
    const host = fake.host;
    await fake.stop();
    const client = new RegistryClient({ registry: host, repository: 'r/x' });
    const t0 = Date.now();
    const e = await errorOf(client.getManifest('v1'));
    expect(e.message).toBe(`cannot reach registry ${host}: connection refused`);
    expect(Date.now() - t0).toBeLessThan(3000);
    await client.close();
  });
});
