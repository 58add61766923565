import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { startRegistry, type Registry, type RegistryOptions } from '../../mock-registry/index.js';
import { QUIRK_PROFILES } from '../../mock-registry/quirks-profiles.js';
import { sampleImage, type SampleImage } from '../../mock-registry/sample-image.js';
import { req } from './http.js';

// Each quirk a profile declares, seen on the wire with raw HTTP.
const CLI = 'dist/mock-registry/cli.js';
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const USERS = { ci: 'ci-password' };
const basic = { Authorization: 'Basic ' + Buffer.from('ci:ci-password').toString('base64') };

let reg: Registry | undefined;
afterEach(async () => {
  await reg?.close();
  reg = undefined;
});
const start = async (quirks: string, extra: RegistryOptions = {}) => (reg = await startRegistry({ quirks, auth: { mode: 'none', users: USERS }, ...extra }));

/** A bearer token for `scope` from the realm the 401 challenge names. */
async function bearer(r: Registry, path: string, method = 'GET'): Promise<Record<string, string>> {
  const res = await req(method, `${r.url}${path}`);
  expect(res.status).toBe(401);
  const ch = res.header('www-authenticate')!;
  const realm = /realm="([^"]+)"/.exec(ch)![1]!;
  const service = /service="([^"]+)"/.exec(ch)![1]!;
  const scope = /scope="([^"]+)"/.exec(ch)?.[1] ?? '';
  const t = await req('GET', `${realm}?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, { headers: basic });
  expect(t.status).toBe(200);
  return { Authorization: `Bearer ${t.json().token as string}` };
}

async function seed(r: Registry, name: string, img: SampleImage = sampleImage()): Promise<void> {
  await r.putBlob(name, img.layer);
  await r.putBlob(name, img.config);
  await r.putManifest(name, 'v1', img.manifest, img.mediaType);
}

describe('quirk profiles', () => {
  it('an unknown profile name is refused, naming the known ones', async () => {
    await expect(startRegistry({ quirks: 'nexus' })).rejects.toThrow(/unknown quirk profile "nexus" \(.*ghcr.*\)/);
  });

  it('ghcr: a chunk PATCH over 4 MiB gets 416 "too large"; a streamed PATCH of the same size passes', async () => {
    const r = await start('ghcr');
    const auth = await bearer(r, '/v2/q/app/blobs/uploads/', 'POST');
    const big = Buffer.alloc((4 << 20) + 1, 1);
    const post = await req('POST', `${r.url}/v2/q/app/blobs/uploads/`, { headers: auth });
    expect(post.status).toBe(202);
    const loc = post.header('location')!;
    const chunk = await req('PATCH', new URL(loc, r.url).href, {
      headers: { ...auth, 'Content-Range': `0-${big.length - 1}`, 'Content-Length': big.length, 'Content-Type': 'application/octet-stream' },
      body: big,
    });
    expect(chunk.status).toBe(416);
    expect(chunk.body.toString()).toContain('maximum permissible limit of 4.00MiB');
    const streamed = await req('PATCH', new URL(loc, r.url).href, { headers: { ...auth, 'Content-Length': big.length }, body: big });
    expect(streamed.status).toBe(202);
    const put = await req('PUT', `${new URL(loc, r.url).href}?digest=${sha(big)}`, { headers: auth });
    expect(put.status).toBe(201);
  });

  it('ecr: basic auth, PATCH answers 201, no advertised chunk minimum, manifest HEAD without Docker-Content-Digest', async () => {
    const r = await start('ecr');
    expect((await req('GET', `${r.url}/v2/`)).header('www-authenticate')).toMatch(/^Basic /);
    await seed(r, 'q/app');
    const head = await req('HEAD', `${r.url}/v2/q/app/manifests/v1`, { headers: basic });
    expect(head.status).toBe(200);
    expect(head.header('docker-content-digest')).toBeUndefined();
    const get = await req('GET', `${r.url}/v2/q/app/manifests/v1`, { headers: basic });
    expect(get.header('docker-content-digest')).toBe(sha(get.body));
    const post = await req('POST', `${r.url}/v2/q/app/blobs/uploads/`, { headers: basic });
    expect(post.header('oci-chunk-min-length')).toBeUndefined();
    const url = new URL(post.header('location')!, r.url).href;
    const small = Buffer.alloc(1024, 2);
    const p1 = await req('PATCH', url, { headers: { ...basic, 'Content-Range': '0-1023', 'Content-Length': 1024 }, body: small });
    expect(p1.status).toBe(201);
    // a chunk after one under 5 MiB: refused, as ECR's LayerPartTooSmallException
    const p2 = await req('PATCH', url, { headers: { ...basic, 'Content-Range': '1024-2047', 'Content-Length': 1024 }, body: small });
    expect(p2.status).toBe(416);
  });

  it('gar: uploads under /artifacts-uploads with an opaque token, absolute; a second PATCH or a Content-Range is refused', async () => {
    const r = await start('gar');
    const auth = await bearer(r, '/v2/q/app/blobs/uploads/', 'POST');
    const post = await req('POST', `${r.url}/v2/q/app/blobs/uploads/`, { headers: auth });
    const loc = post.header('location')!;
    expect(loc.startsWith(`${r.url}/artifacts-uploads/v2/q/app/blobs/uploads/`)).toBe(true);
    expect(loc).toMatch(/upload_token=[\w-]{100,}/);
    const ranged = await req('PATCH', loc, { headers: { ...auth, 'Content-Range': '0-2', 'Content-Length': 3 }, body: 'abc' });
    expect(ranged.status).toBe(400);
    expect(ranged.body.toString()).toContain('monolithic');
    const post2 = await req('POST', `${r.url}/v2/q/app/blobs/uploads/`, { headers: auth });
    const loc2 = post2.header('location')!;
    expect((await req('PATCH', loc2, { headers: auth, body: 'abc' })).status).toBe(202);
    expect((await req('PATCH', loc2, { headers: auth, body: 'def' })).status).toBe(400);
    const put = await req('PUT', `${loc2}&digest=${sha(Buffer.from('abc'))}`, { headers: auth });
    expect(put.status).toBe(201);
  });

  it('acr: a Content-Range with a unit is refused; the first manifest PUT is throttled with Retry-After', async () => {
    const r = await start('acr');
    const auth = await bearer(r, '/v2/q/app/blobs/uploads/', 'POST');
    const post = await req('POST', `${r.url}/v2/q/app/blobs/uploads/`, { headers: auth });
    const url = new URL(post.header('location')!, r.url).href;
    const bad = await req('PATCH', url, { headers: { ...auth, 'Content-Range': 'bytes 0-2/*', 'Content-Length': 3 }, body: 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toContain('Content-Range header format is invalid');
    expect((await req('PATCH', url, { headers: { ...auth, 'Content-Range': '0-2', 'Content-Length': 3 }, body: 'abc' })).status).toBe(202);
    const img = sampleImage();
    await r.putBlob('q/app', img.layer);
    await r.putBlob('q/app', img.config);
    // the throttle answers before authentication, once
    const put = (h: Record<string, string> = {}) =>
      req('PUT', `${r.url}/v2/q/app/manifests/v1`, { headers: { ...h, 'Content-Type': img.mediaType }, body: img.manifest });
    const first = await put();
    expect(first.status).toBe(429);
    expect(first.header('retry-after')).toBe('1');
    expect((await put(await bearer(r, '/v2/q/app/manifests/v1', 'PUT'))).status).toBe(201);
  });

  it('dockerhub: the token realm is on another port; manifest GETs carry RateLimit headers and end in 429 without Retry-After', async () => {
    const r = await start('dockerhub');
    await seed(r, 'library/app');
    const challenge = (await req('GET', `${r.url}/v2/library/app/manifests/v1`)).header('www-authenticate')!;
    const realm = new URL(/realm="([^"]+)"/.exec(challenge)![1]!);
    expect(realm.hostname).toBe('127.0.0.1');
    expect(Number(realm.port)).not.toBe(r.port);
    const t = await req('GET', `${realm.href}?service=registry.docker.io&scope=repository:library/app:pull`); // anonymous
    const auth = { Authorization: `Bearer ${t.json().token as string}` };
    const limit = QUIRK_PROFILES.dockerhub!.rateLimit!.limit;
    for (let i = 1; i <= limit; i++) {
      const g = await req('GET', `${r.url}/v2/library/app/manifests/v1`, { headers: auth });
      expect(g.status).toBe(200);
      expect(g.header('ratelimit-remaining')).toBe(`${limit - i};w=21600`);
    }
    const over = await req('GET', `${r.url}/v2/library/app/manifests/v1`, { headers: auth });
    expect(over.status).toBe(429);
    expect(over.json().errors[0].code).toBe('TOOMANYREQUESTS');
    expect(over.header('retry-after')).toBeUndefined();
    expect(over.header('ratelimit-limit')).toBe(`${limit};w=21600`);
    expect(over.header('docker-ratelimit-source')).toBeDefined();
  });

  it('quay: a manifest naming an uncompressed Docker layer type is refused as invalid', async () => {
    const r = await start('quay');
    const img = sampleImage();
    await r.putBlob('q/app', img.layer);
    await r.putBlob('q/app', img.config);
    const doc = JSON.parse(img.manifest.toString('utf8'));
    doc.layers[0].mediaType = 'application/vnd.docker.image.rootfs.diff.tar';
    const auth = await bearer(r, '/v2/q/app/manifests/v1', 'PUT');
    const bad = await req('PUT', `${r.url}/v2/q/app/manifests/v1`, { headers: { ...auth, 'Content-Type': img.mediaType }, body: JSON.stringify(doc) });
    expect(bad.status).toBe(400);
    expect(bad.json().errors[0].code).toBe('MANIFEST_INVALID');
    const good = await req('PUT', `${r.url}/v2/q/app/manifests/v1`, { headers: { ...auth, 'Content-Type': img.mediaType }, body: img.manifest });
    expect(good.status).toBe(201);
    expect(good.header('docker-content-digest')).toBe(img.manifestDigest);
  });

  it.each([
    ['harbor', 403],
    ['gitlab', 401],
  ] as const)('%s: a cross-repository mount answers %i instead of mounting or falling back', async (name, status) => {
    const r = await start(name);
    await seed(r, 'src/app');
    const auth = await bearer(r, '/v2/dst/app/blobs/uploads/', 'POST');
    const res = await req('POST', `${r.url}/v2/dst/app/blobs/uploads/?mount=${sha(sampleImage().layer)}&from=src/app`, { headers: auth });
    expect(res.status).toBe(status);
    const plain = await req('POST', `${r.url}/v2/dst/app/blobs/uploads/`, { headers: auth });
    expect(plain.status).toBe(202);
    if (name === 'harbor') expect(plain.header('location')!.startsWith(`${r.url}/v2/dst/app/blobs/uploads/`)).toBe(true);
  });

  it('zot: Docker manifests are refused (400 MANIFEST_INVALID), OCI ones stored; upload Range has a unit', async () => {
    const r = await start('zot');
    const img = sampleImage();
    await r.putBlob('q/app', img.layer);
    await r.putBlob('q/app', img.config);
    const docker = await req('PUT', `${r.url}/v2/q/app/manifests/v1`, { headers: { 'Content-Type': img.mediaType }, body: img.manifest });
    expect(docker.status).toBe(400);
    expect(docker.body.toString()).toContain('unsupported media type');
    const doc = JSON.parse(img.manifest.toString('utf8'));
    doc.mediaType = 'application/vnd.oci.image.manifest.v1+json';
    doc.config.mediaType = 'application/vnd.oci.image.config.v1+json';
    doc.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
    const oci = await req('PUT', `${r.url}/v2/q/app/manifests/v1`, { headers: { 'Content-Type': doc.mediaType }, body: JSON.stringify(doc) });
    expect(oci.status).toBe(201);
    const post = await req('POST', `${r.url}/v2/q/app/blobs/uploads/`);
    expect(post.header('location')!.startsWith('/v2/')).toBe(true);
    expect(post.header('range')).toBe('bytes=0-0');
  });

  it('the mock CLI (dist/) takes --quirks and refuses an unknown profile in one line', async () => {
    const bad = spawnSync(process.execPath, [CLI, '--port', '0', '--quirks', 'ghcr,nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^mock-registry: unknown quirk profile "nope" \(/);
    const child = spawn(process.execPath, [CLI, '--port', '0', '--quiet', '--quirks', 'zot'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (c) => reject(new Error(`exited ${c}`)));
      });
      const base = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line)![1]!;
      expect((await req('POST', `${base}/v2/q/app/blobs/uploads/`)).header('range')).toBe('bytes=0-0');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
