import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { makeSelfSignedCert } from '../helpers/tls.js';
import { RegistryClient } from '../../src/registry/client.js';
import { NixregError } from '../../src/errors.js';

/**
 * Credentials: run pull, prefetch and push with known test secrets (htpasswd password, bearer token
 * login, identity token, --creds, auth files) in success and failure paths, with --debug and NIXREG_DEBUG=1,
 * and scan every byte of output for the secrets, raw and base64. Plus: Authorization never follows a redirect
 * to another host, never goes over plain http to a host that was not allowed, and TLS is verified by default.
 * Needs dist/ built (npx tsc -p tsconfig.json).
 */
const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/nixreg.js');
const ARCHIVE = join(resolve(import.meta.dirname, '..'), 'fixtures/docker-archive/skopeo-tiny.tar');

const PW = 'alice-PW-9f3kq7';
const WRONG = 'wrong-PW-x81mz2';
const TOKEN_PW = 'bob-PW-7hd62p';
const ID_TOKEN = 'refresh-ID-4kx9ww0';
const BAD_ID_TOKEN = 'refresh-BAD-0s8d7f';
const ECHO_PW = 'carol-PW-2jd8sk';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const SECRETS = [
  PW,
  WRONG,
  TOKEN_PW,
  ID_TOKEN,
  BAD_ID_TOKEN,
  ECHO_PW,
  b64(`alice:${PW}`),
  b64(`alice:${WRONG}`),
  b64(`bob:${TOKEN_PW}`),
  b64(`carol:${ECHO_PW}`),
  b64(PW),
  b64(ID_TOKEN),
  'eyJhbGciOiJSUzI1NiIs', // every JWT our token server issues starts with this header
];

let root: string;
let home: string;
const captured: Array<{ what: string; text: string }> = [];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI (async, so in-process servers keep answering) and keep everything it printed for the scan. */
function nixreg(what: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn('node', [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, '.config'), NIXREG_DEBUG: '1', ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('latin1').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('latin1').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => {
      captured.push({ what, text: stdout + stderr });
      done({ status, stdout, stderr });
    });
  });
}

function expectNoSecret(what: string, text: string) {
  for (const s of SECRETS) if (text.includes(s)) throw new Error(`${what}: output contains the test secret ${s.slice(0, 4)}…`);
}

function authFile(name: string, auths: Record<string, Record<string, string>>): string {
  const p = join(root, name);
  writeFileSync(p, JSON.stringify({ auths }));
  return p;
}

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
const close = (s: Server) =>
  new Promise((r) => {
    s.closeAllConnections();
    s.close(r);
  });

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-secrets-'));
  home = join(root, 'home');
  mkdirSync(home);
});
afterAll(() => {
  // The scan over everything every test printed: the point of this suite.
  for (const c of captured) expectNoSecret(c.what, c.text);
  rmSync(root, { recursive: true, force: true });
});

describe('htpasswd (Basic) registry', () => {
  let reg: Distribution;
  beforeAll(async () => {
    reg = await startDistribution({ htpasswd: { alice: PW } });
  }, 60_000);
  afterAll(() => reg?.stop());

  it('push, pull and prefetch succeed with --creds and with an auth file, printing no secret', async () => {
    const push = await nixreg('push ok', ['push', ARCHIVE, `docker://${reg.host}/sec/basic:1`, '--creds', `alice:${PW}`, '--debug']);
    expect(push.status, push.stderr).toBe(0);
    expect(push.stderr).toContain('debug: ');
    const pull = await nixreg('pull ok', ['pull', `${reg.host}/sec/basic:1`, '-o', join(root, 'basic.tar'), '--creds', `alice:${PW}`]);
    expect(pull.status, pull.stderr).toBe(0);
    const af = authFile('basic-auth.json', { [reg.host]: { auth: b64(`alice:${PW}`) } });
    const pull2 = await nixreg('pull authfile ok', ['pull', `${reg.host}/sec/basic:1`, '-o', join(root, 'basic2.tar'), '--authfile', af]);
    expect(pull2.status, pull2.stderr).toBe(0);
    expect(readFileSync(join(root, 'basic2.tar')).equals(readFileSync(join(root, 'basic.tar')))).toBe(true);
    const pre = await nixreg('prefetch ok', ['prefetch', `${reg.host}/sec/basic`, '1', '--creds', `alice:${PW}`]);
    expect(pre.status, pre.stderr).toBe(0);
    expect(pre.stdout).toMatch(/hash = "sha256-/);
    for (const r of [push, pull, pull2, pre]) expectNoSecret('basic ok', r.stdout + r.stderr);
  });

  it('a wrong password fails with exit 3 and one line naming where the credentials came from', async () => {
    const pull = await nixreg('pull wrong', ['pull', `${reg.host}/sec/basic:1`, '-o', join(root, 'wrong.tar'), '--creds', `alice:${WRONG}`]);
    expect(pull.status).toBe(3);
    expect(pull.stderr).toMatch(
      new RegExp(
        `^nixreg: 401 from ${reg.host.replace(/\./g, '\\.')} for manifest ${reg.host.replace(/\./g, '\\.')}/sec/basic:1 with credentials from --creds: check the username, password and access to sec/basic`,
      ),
    );
    const push = await nixreg('push wrong', ['push', ARCHIVE, `docker://${reg.host}/sec/basic:2`, '--creds', `alice:${WRONG}`, '--debug']);
    expect(push.status).toBe(3);
    const af = authFile('basic-wrong.json', { [reg.host]: { username: 'alice', password: WRONG } });
    const pre = await nixreg('prefetch wrong', ['prefetch', `${reg.host}/sec/basic`, '1', '--authfile', af]);
    expect(pre.status).toBe(3);
    expect(pre.stderr).toContain(`with credentials from ${af}`);
    for (const r of [pull, push, pre]) expectNoSecret('basic wrong', r.stdout + r.stderr);
  });
});

describe('token (Bearer) registry', () => {
  let ts: TokenServer;
  let reg: Distribution;
  beforeAll(async () => {
    ts = await startTokenServer({ users: { bob: TOKEN_PW }, refreshTokens: { [ID_TOKEN]: 'bob' }, anonymous: false });
    reg = await startDistribution({ token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootCertBundle: ts.rootCertBundle } });
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
    await ts?.stop();
  });

  it('push with a login, pull and prefetch with an identity token; bad login and bad identity token fail cleanly', async () => {
    const push = await nixreg('token push', ['push', ARCHIVE, `docker://${reg.host}/sec/token:1`, '--creds', `bob:${TOKEN_PW}`, '--debug']);
    expect(push.status, push.stderr).toBe(0);
    expect(push.stderr).toMatch(/debug: .*token|debug: ping/);
    const good = authFile('id-token.json', { [reg.host]: { identitytoken: ID_TOKEN } });
    const pull = await nixreg('token pull', ['pull', `${reg.host}/sec/token:1`, '-o', join(root, 'token.tar'), '--authfile', good]);
    expect(pull.status, pull.stderr).toBe(0);
    const pre = await nixreg('token prefetch', ['prefetch', `${reg.host}/sec/token`, '1', '--authfile', good]);
    expect(pre.status, pre.stderr).toBe(0);
    const bad = authFile('bad-id-token.json', { [reg.host]: { identitytoken: BAD_ID_TOKEN } });
    const pull2 = await nixreg('token pull bad id', ['pull', `${reg.host}/sec/token:1`, '-o', join(root, 'bad.tar'), '--authfile', bad]);
    expect(pull2.status).toBe(3);
    expect(pull2.stderr).toMatch(
      /^nixreg: 401 from the token server 127\.0\.0\.1:\d+ for 127\.0\.0\.1:\d+ with credentials from .*bad-id-token\.json: check the username and password\n$/,
    );
    const push2 = await nixreg('token push wrong', ['push', ARCHIVE, `docker://${reg.host}/sec/token:2`, '--creds', `bob:${WRONG}`, '--debug']);
    expect(push2.status).toBe(3);
    for (const r of [push, pull, pre, pull2, push2]) expectNoSecret('token', r.stdout + r.stderr);
  });
});

describe('hostile servers that echo what they were sent', () => {
  const servers: Server[] = [];
  const echo = (req: IncomingMessage, body = '') =>
    `auth=${req.headers.authorization ?? ''} decoded=${Buffer.from((req.headers.authorization ?? '').replace(/^\w+ /, ''), 'base64').toString()} url=${req.url} body=${body}`;
  /** A fake registry: `challenge` on every unauthenticated request, then 403 echoing what it got. */
  async function fake(challenge: string, handler?: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const s = createServer(async (req, res) => {
      let body = '';
      for await (const c of req) body += c;
      if (handler) return handler(req, res);
      if (!req.headers.authorization) return res.writeHead(401, { 'www-authenticate': challenge }).end();
      if (req.url === '/v2/') return res.writeHead(200).end('{}');
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: echo(req, body) }] }));
    });
    servers.push(s);
    return `127.0.0.1:${await listen(s)}`;
  }
  afterAll(async () => {
    for (const s of servers) await close(s);
  });

  it('a 403 whose body echoes our Authorization header is reported without it', async () => {
    const host = await fake('Basic realm="echo"');
    const r = await nixreg('echo 403', ['pull', `${host}/sec/echo:1`, '-o', join(root, 'echo.tar'), '--creds', `carol:${ECHO_PW}`]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /^nixreg: 403 from 127\.0\.0\.1:\d+ for manifest 127\.0\.0\.1:\d+\/sec\/echo:1 with credentials from --creds: check the username, password and access to sec\/echo: DENIED: auth=Basic \*\*\* decoded=carol:\*\*\* url=/,
    );
    const p = await nixreg('echo 403 push', ['push', ARCHIVE, `docker://${host}/sec/echo:1`, '--creds', `carol:${ECHO_PW}`, '--debug']);
    expect(p.status, p.stderr).toBe(3);
    expectNoSecret('echo', r.stderr + p.stderr);
  });

  it('token server errors (500, 403) never quote what we sent', async () => {
    const tokenHost = await fake('', (req, res) => {
      const status = req.url?.includes('forbidden') ? 403 : 500;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: echo(req) }] }));
    });
    const host = await fake(`Bearer realm="http://${tokenHost}/token",service="echo"`);
    const af = authFile('echo-id.json', { [host]: { identitytoken: ID_TOKEN } });
    const r1 = await nixreg('token 500', ['pull', `${host}/sec/token:1`, '-o', join(root, 't.tar'), '--authfile', af, '--retry-times', '0']);
    expect(r1.status, r1.stderr).toBe(1);
    expect(r1.stderr).toBe(`nixreg: token server ${tokenHost} for ${host} answered HTTP 500\n`);
    const r2 = await nixreg('token 403 creds', [
      'push',
      ARCHIVE,
      `docker://${host}/sec/forbidden:1`,
      '--creds',
      `carol:${ECHO_PW}`,
      '--retry-times',
      '0',
      '--debug',
    ]);
    expect(r2.status, r2.stderr).toBe(3);
    expect(r2.stderr.split('\n').filter((l) => l.startsWith('nixreg: '))).toEqual([
      `nixreg: 403 from the token server ${tokenHost} for ${host} with credentials from --creds: check the username and password`,
    ]);
    expectNoSecret('token errors', r1.stderr + r2.stderr);
  });

  it('credentials are never sent to a plain-http token realm on a host that was not allowed', async () => {
    const host = await fake('Bearer realm="http://token.nixreg-test.invalid/token",service="echo"');
    const r = await nixreg('plain realm', ['pull', `${host}/sec/plainrealm:1`, '-o', join(root, 'p.tar'), '--creds', `carol:${ECHO_PW}`]);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(
      `nixreg: ${host} sends its token requests to plain-http token.nixreg-test.invalid; refusing to send credentials from --creds unencrypted (use --tls-verify=false only if that network is trusted)\n`,
    );
  });
});

describe('redirects to another host', () => {
  let reg: Distribution;
  let front: Server;
  let cdn: Server;
  const cdnSaw: Array<string | undefined> = [];
  const frontSawAuth: boolean[] = [];

  /** Forward a request to the real registry (optionally with our own credentials), streaming both ways. */
  function forward(req: IncomingMessage, res: ServerResponse, auth?: string) {
    const headers = { ...req.headers, host: reg.host, ...(auth ? { authorization: auth } : {}) };
    const up = httpRequest({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  beforeAll(async () => {
    reg = await startDistribution({ htpasswd: { alice: PW } });
    // The "CDN": another port is another host. It records the Authorization it got and serves with its own.
    cdn = createServer((req, res) => {
      cdnSaw.push(req.headers.authorization);
      forward(req, res, 'Basic ' + b64(`alice:${PW}`));
    });
    const cdnPort = await listen(cdn);
    front = createServer((req, res) => {
      frontSawAuth.push(!!req.headers.authorization);
      if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && req.headers.authorization)
        return res.writeHead(307, { location: `http://127.0.0.1:${cdnPort}${req.url}` }).end();
      forward(req, res);
    });
    await listen(front);
  }, 60_000);
  afterAll(async () => {
    await close(front);
    await close(cdn);
    await reg?.stop();
  });

  it('blobs redirected to another port are fetched without Authorization, and the pull succeeds', async () => {
    const frontHost = `127.0.0.1:${(front.address() as { port: number }).port}`;
    const push = await nixreg('redirect push', ['push', ARCHIVE, `docker://${reg.host}/sec/redir:1`, '--creds', `alice:${PW}`]);
    expect(push.status, push.stderr).toBe(0);
    const direct = await nixreg('redirect pull direct', ['pull', `${reg.host}/sec/redir:1`, '-o', join(root, 'direct.tar'), '--creds', `alice:${PW}`]);
    expect(direct.status, direct.stderr).toBe(0);
    const r = await nixreg('redirect pull', [
      'pull',
      `${frontHost}/sec/redir:1`,
      '-o',
      join(root, 'redir.tar'),
      '--creds',
      `alice:${PW}`,
      '--final-image-name',
      `${reg.host}/sec/redir`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(frontSawAuth).toContain(true); // the registry itself did get credentials
    expect(cdnSaw.length).toBeGreaterThanOrEqual(2); // config + layers went through the redirect
    expect(cdnSaw.filter((a) => a !== undefined)).toEqual([]);
    expect(readFileSync(join(root, 'redir.tar')).equals(readFileSync(join(root, 'direct.tar')))).toBe(true);
  });
});

describe('plain http and TLS', () => {
  it('a non-loopback registry is never spoken to over plain http unless --tls-verify=false', async () => {
    // An http proxy stands in for the network: it sees every plain-http request and answers as a registry.
    const saw: string[] = [];
    const proxy = createServer((req, res) => {
      saw.push(`${req.method} ${req.url} auth=${req.headers.authorization ? 'yes' : 'no'}`);
      if (req.url === 'http://registry.nixreg-test.invalid/v2/') return res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}');
    });
    // https goes through CONNECT (undici uses http_proxy for https when https_proxy is unset); deny it like a
    // corporate proxy would. (A proxy that drops the CONNECT socket is covered in error-messages-sources.test.ts.)
    proxy.on('connect', (req, sock) => {
      saw.push(`CONNECT ${req.url}`);
      sock.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
    });
    const port = await listen(proxy);
    const env = { http_proxy: `http://127.0.0.1:${port}`, PATH: process.env.PATH ?? '' };
    const opts = { registry: 'registry.nixreg-test.invalid', repository: 'a/b', creds: { username: 'u', password: PW }, retry: { times: 0 }, env };
    const strict = new RegistryClient(opts);
    const err = await strict.getManifest('v1').catch((e: unknown) => e);
    await strict.close();
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toMatch(/^cannot reach registry registry\.nixreg-test\.invalid: /);
    expect(saw).toEqual(['CONNECT registry.nixreg-test.invalid:443']); // tunnelled TLS only, nothing in clear
    saw.length = 0;
    const lax = new RegistryClient({ ...opts, tlsVerify: false });
    const err2 = await lax.getManifest('v1').catch((e: unknown) => e);
    await lax.close();
    expect((err2 as Error).message).toBe('manifest registry.nixreg-test.invalid/a/b:v1 not found on registry.nixreg-test.invalid: MANIFEST_UNKNOWN: no');
    expect(saw.filter((l) => !l.startsWith('CONNECT'))).toEqual([
      'GET http://registry.nixreg-test.invalid/v2/ auth=no',
      'GET http://registry.nixreg-test.invalid/v2/a/b/manifests/v1 auth=yes', // explicitly allowed: credentials go
    ]);
    await close(proxy);
  });

  it('TLS is verified by default: a self-signed registry fails clearly, works with --cert-dir or --tls-verify=false', async () => {
    const cert = makeSelfSignedCert('127.0.0.1', mkdtempSync(join(root, 'tls-')));
    const reg = await startDistribution({ htpasswd: { alice: PW }, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
    try {
      const certDir = join(root, 'certs.d');
      mkdirSync(certDir);
      copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
      const push = await nixreg('tls push', ['push', ARCHIVE, `docker://${reg.host}/sec/tls:1`, '--creds', `alice:${PW}`, '--cert-dir', certDir]);
      expect(push.status, push.stderr).toBe(0);
      const strict = await nixreg('tls strict', ['pull', `${reg.host}/sec/tls:1`, '-o', join(root, 'tls0.tar'), '--creds', `alice:${PW}`]);
      expect(strict.status).toBe(1);
      expect(strict.stderr.split('\n')[0]).toBe(
        `nixreg: cannot reach registry ${reg.host}: TLS certificate not trusted (DEPTH_ZERO_SELF_SIGNED_CERT); use --cert-dir with the registry's CA, or --tls-verify=false`,
      );
      const withCa = await nixreg('tls cert-dir', [
        'pull',
        `${reg.host}/sec/tls:1`,
        '-o',
        join(root, 'tls1.tar'),
        '--creds',
        `alice:${PW}`,
        '--cert-dir',
        certDir,
      ]);
      expect(withCa.status, withCa.stderr).toBe(0);
      const lax = await nixreg('tls off', ['pull', `${reg.host}/sec/tls:1`, '-o', join(root, 'tls2.tar'), '--creds', `alice:${PW}`, '--tls-verify=false']);
      expect(lax.status, lax.stderr).toBe(0);
      expect(readFileSync(join(root, 'tls1.tar')).equals(readFileSync(join(root, 'tls2.tar')))).toBe(true);
    } finally {
      await reg.stop();
    }
  }, 60_000);
});
