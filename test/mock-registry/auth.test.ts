import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { requireTool } from '../helpers/tools.js';
import { errCodes, req, sha } from './http.js';

const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
const tmp = mkdtempSync(join(tmpdir(), 'mockreg-auth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Parse `Bearer realm="..",service="..",scope=".."` the way clients do. */
function challenge(h: string | undefined): Record<string, string> {
  expect(h).toBeTruthy();
  const out: Record<string, string> = { scheme: h!.split(' ')[0]!.toLowerCase() };
  for (const m of h!.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

describe('basic auth', () => {
  let reg: Registry;
  beforeAll(async () => {
    const users = join(tmp, 'users');
    writeFileSync(users, '# comment\nalice:wonder:land\nbob:builder\n');
    reg = await startRegistry({
      auth: {
        mode: 'basic',
        usersFile: users,
        grants: [
          { user: 'alice', repo: '*', actions: ['pull', 'push', 'delete'] },
          { user: 'bob', repo: 'shared/*', actions: ['pull'] },
        ],
      },
    });
  });
  afterAll(() => reg.close());

  it('answers 401 UNAUTHORIZED with a Basic challenge without or with wrong credentials', async () => {
    for (const headers of [{}, { Authorization: basic('alice', 'wrong') }, { Authorization: basic('mallory', 'x') }] as Array<Record<string, string>>) {
      const r = await req('GET', `${reg.url}/v2/`, { headers });
      expect(r.status).toBe(401);
      expect(r.header('www-authenticate')).toBe('Basic realm="nixreg-mock"');
      expect(errCodes(r)).toEqual(['UNAUTHORIZED']);
    }
    expect(reg.counters.authFailures).toBe(3);
  });
  it('accepts users from the file (passwords may contain ":") and checks per-repository grants (403 DENIED)', async () => {
    expect((await req('GET', `${reg.url}/v2/`, { headers: { Authorization: basic('alice', 'wonder:land') } })).status).toBe(200);
    let r = await req('POST', `${reg.url}/v2/shared/x/blobs/uploads/?digest=${sha('a')}`, {
      body: 'a',
      headers: { Authorization: basic('alice', 'wonder:land') },
    });
    expect(r.status).toBe(201);
    r = await req('GET', `${reg.url}/v2/shared/x/blobs/${sha('a')}`, { headers: { Authorization: basic('bob', 'builder') } });
    expect([r.status, r.body.toString()]).toEqual([200, 'a']);
    r = await req('POST', `${reg.url}/v2/shared/x/blobs/uploads/`, { headers: { Authorization: basic('bob', 'builder') } });
    expect([r.status, errCodes(r)]).toEqual([403, ['DENIED']]);
    r = await req('GET', `${reg.url}/v2/private/x/tags/list`, { headers: { Authorization: basic('bob', 'builder') } });
    expect([r.status, errCodes(r)]).toEqual([403, ['DENIED']]);
    expect(reg.log.some((e) => e.user === 'bob' && e.auth === 'basic')).toBe(true);
    expect(JSON.stringify(reg.log)).not.toContain('builder');
  });
});

describe('bearer token auth', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry({
      auth: {
        mode: 'bearer',
        users: { alice: 'pw-a', bob: 'pw-b' },
        anonymousPull: true,
        service: 'test-registry',
        grants: [
          { user: 'alice', repo: '*', actions: ['pull', 'push', 'delete'] },
          { user: 'bob', repo: 'bob/*', actions: ['pull', 'push'] },
        ],
      },
    });
  });
  afterAll(() => reg.close());

  const token = async (scopes: string[], auth?: string) => {
    const q = new URLSearchParams([['service', 'test-registry'], ...scopes.map((s) => ['scope', s])]);
    const r = await req('GET', `${reg.url}/token?${q}`, { headers: auth ? { Authorization: auth } : {} });
    return r;
  };

  it('challenges with realm, service and the scope the request needs', async () => {
    let r = await req('GET', `${reg.url}/v2/`);
    expect(r.status).toBe(401);
    expect(challenge(r.header('www-authenticate'))).toEqual({ scheme: 'bearer', realm: `${reg.url}/token`, service: 'test-registry' });
    r = await req('PUT', `${reg.url}/v2/bob/app/manifests/v1`, { body: '{}' });
    expect(challenge(r.header('www-authenticate')).scope).toBe('repository:bob/app:pull,push');
    expect(errCodes(r)).toEqual(['UNAUTHORIZED']);
  });

  it('issues HMAC-signed tokens with only the granted actions; the registry enforces them per repository', async () => {
    let t = await token(['repository:bob/app:pull,push', 'repository:other/app:pull,push,delete'], basic('bob', 'pw-b'));
    expect(t.status).toBe(200);
    const body = t.json();
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    const claims = JSON.parse(Buffer.from(body.token.split('.')[0], 'base64url').toString());
    expect(claims.access).toEqual([
      { type: 'repository', name: 'bob/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'other/app', actions: ['pull'] }, // anonymous pull applies to everyone
    ]);
    const auth = { Authorization: `Bearer ${body.token}` };
    expect((await req('GET', `${reg.url}/v2/`, { headers: auth })).status).toBe(200);
    let r = await req('POST', `${reg.url}/v2/bob/app/blobs/uploads/?digest=${sha('b')}`, { body: 'b', headers: auth });
    expect(r.status).toBe(201);
    r = await req('POST', `${reg.url}/v2/other/app/blobs/uploads/`, { headers: auth });
    expect(r.status).toBe(401);
    const ch = challenge(r.header('www-authenticate'));
    expect([ch.error, ch.scope]).toEqual(['insufficient_scope', 'repository:other/app:pull,push']);
    r = await req('DELETE', `${reg.url}/v2/bob/app/blobs/${sha('b')}`, { headers: auth });
    expect([r.status, challenge(r.header('www-authenticate')).error]).toEqual([401, 'insufficient_scope']);
    t = await token(['repository:bob/app:delete'], basic('alice', 'pw-a'));
    r = await req('DELETE', `${reg.url}/v2/bob/app/blobs/${sha('b')}`, { headers: { Authorization: `Bearer ${t.json().token}` } });
    expect(r.status).toBe(202);
    expect(reg.counters.tokensIssued).toBeGreaterThanOrEqual(2);
  });

  it('anonymous tokens grant pull only; bad credentials and tampered tokens are refused', async () => {
    let t = await token(['repository:bob/app:pull,push']);
    expect(t.status).toBe(200);
    const anon = t.json().token as string;
    expect(JSON.parse(Buffer.from(anon.split('.')[0]!, 'base64url').toString()).access).toEqual([{ type: 'repository', name: 'bob/app', actions: ['pull'] }]);
    expect((await req('GET', `${reg.url}/v2/bob/app/tags/list`, { headers: { Authorization: `Bearer ${anon}` } })).status).not.toBe(401);
    t = await token(['repository:bob/app:pull'], basic('bob', 'nope'));
    expect([t.status, errCodes(t)]).toEqual([401, ['UNAUTHORIZED']]);
    const [payload, sig] = anon.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), access: [{ type: 'repository', name: 'bob/app', actions: ['push'] }] }),
    ).toString('base64url');
    const r = await req('GET', `${reg.url}/v2/`, { headers: { Authorization: `Bearer ${forged}.${sig}` } });
    expect([r.status, challenge(r.header('www-authenticate')).error]).toEqual([401, 'invalid_token']);
  });

  it('supports the OAuth2 password grant (POST) and the catalog scope', async () => {
    const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'pw-a', service: 'test-registry', scope: 'registry:catalog:*' });
    const t = await req('POST', `${reg.url}/token`, { body: form.toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(t.status).toBe(200);
    const r = await req('GET', `${reg.url}/v2/_catalog`, { headers: { Authorization: `Bearer ${t.json().access_token}` } });
    expect(r.status).toBe(200);
    expect(r.json().repositories).toContain('bob/app');
  });

  it('tokens expire', async () => {
    const short = await startRegistry({ auth: { mode: 'bearer', users: { a: 'b' }, tokenTtlSeconds: -1 } });
    try {
      const t = await req('GET', `${short.url}/token?service=nixreg-mock`, { headers: { Authorization: basic('a', 'b') } });
      const r = await req('GET', `${short.url}/v2/`, { headers: { Authorization: `Bearer ${t.json().token}` } });
      expect(r.status).toBe(401);
    } finally {
      await short.close();
    }
  });
});

describe('TLS', () => {
  it('serves HTTPS with a given certificate and key', async () => {
    requireTool('openssl');
    const key = join(tmp, 'key.pem');
    const cert = join(tmp, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const reg = await startRegistry({ tls: { certFile: cert, keyFile: key }, auth: { mode: 'basic', users: { u: 'p' } } });
    try {
      expect(reg.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = readFileSync(cert);
      const r = await req('GET', `${reg.url}/v2/`, { ca, headers: { Authorization: basic('u', 'p') } });
      expect(r.status).toBe(200);
      await expect(req('GET', `${reg.url}/v2/`)).rejects.toThrow(/self.signed|certificate/i);
    } finally {
      await reg.close();
    }
  });
});
