import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { bytes, errCodes, imageManifest, putManifest, req, sha, upload } from './http.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

let reg: Registry;
let base: string;
beforeAll(async () => {
  reg = await startRegistry({ chunkMinLength: 5 });
  base = reg.url;
});
afterAll(() => reg.close());

describe('end-1 ping', () => {
  it('GET /v2/ is 200 with the API version header, bound to loopback', async () => {
    const r = await req('GET', `${base}/v2/`);
    expect(r.status).toBe(200);
    expect(r.header('docker-distribution-api-version')).toBe('registry/2.0');
    expect(reg.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(reg.host).toBe(reg.url.slice('http://'.length));
  });
  it('unknown endpoints are 404 in the spec JSON error form', async () => {
    const r = await req('GET', `${base}/nope`);
    expect(r.status).toBe(404);
    expect(errCodes(r)).toEqual(['UNSUPPORTED']);
  });
});

describe('blob uploads', () => {
  it('end-4b: monolithic POST ?digest= gives 201 with Location and Docker-Content-Digest; HEAD and GET serve it', async () => {
    const data = bytes(3000, 1);
    const d = sha(data);
    const r = await req('POST', `${base}/v2/up/mono/blobs/uploads/?digest=${d}`, { body: data, headers: { 'Content-Length': data.length } });
    expect(r.status).toBe(201);
    expect(r.header('location')).toBe(`/v2/up/mono/blobs/${d}`);
    expect(r.header('docker-content-digest')).toBe(d);
    const h = await req('HEAD', `${base}/v2/up/mono/blobs/${d}`);
    expect(h.status).toBe(200);
    expect(h.header('content-length')).toBe('3000');
    expect(h.header('docker-content-digest')).toBe(d);
    expect(h.body.length).toBe(0);
    const g = await req('GET', `${base}/v2/up/mono/blobs/${d}`);
    expect(g.status).toBe(200);
    expect(g.body.equals(data)).toBe(true);
  });

  it('end-4a + end-6: POST then PUT with the whole body', async () => {
    const data = bytes(1234, 2);
    const p = await req('POST', `${base}/v2/up/postput/blobs/uploads/`);
    expect(p.status).toBe(202);
    expect(p.header('location')).toMatch(/^\/v2\/up\/postput\/blobs\/uploads\/[0-9a-f-]+$/);
    expect(p.header('range')).toBe('0-0');
    expect(p.header('oci-chunk-min-length')).toBe('5');
    expect(p.header('docker-upload-uuid')).toBeTruthy();
    const put = await req('PUT', `${base}${p.header('location')}?digest=${sha(data)}`, { body: data });
    expect(put.status).toBe(201);
    expect((await req('GET', `${base}/v2/up/postput/blobs/${sha(data)}`)).body.equals(data)).toBe(true);
  });

  it('end-5/13/6: chunked PATCH with Content-Range, 416 on an out-of-order chunk, GET status, final chunk in PUT', async () => {
    const data = bytes(40, 3);
    const p = await req('POST', `${base}/v2/up/chunked/blobs/uploads/`, { headers: { 'Content-Length': 0 } });
    let loc = p.header('location')!;
    const patch = (from: number, to: number) =>
      req('PATCH', `${base}${loc}`, {
        body: data.subarray(from, to + 1),
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${to}`, 'Content-Length': to - from + 1 },
      });
    let r = await patch(0, 9);
    expect(r.status).toBe(202);
    expect(r.header('range')).toBe('0-9');
    loc = r.header('location')!;
    r = await patch(20, 29); // skips 10-19
    expect(r.status).toBe(416);
    expect(r.header('range')).toBe('0-9');
    r = await req('PATCH', `${base}${loc}`, { body: 'xx', headers: { 'Content-Range': 'bytes=oops' } });
    expect(r.status).toBe(416);
    const s = await req('GET', `${base}${loc}`);
    expect(s.status).toBe(204);
    expect(s.header('range')).toBe('0-9');
    expect(s.header('location')).toBe(loc);
    r = await patch(10, 29);
    expect(r.status).toBe(202);
    expect(r.header('range')).toBe('0-29');
    const put = await req('PUT', `${base}${loc}?digest=${sha(data)}`, {
      body: data.subarray(30),
      headers: { 'Content-Range': '30-39', 'Content-Length': 10, 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
    expect(put.header('location')).toBe(`/v2/up/chunked/blobs/${sha(data)}`);
    expect((await req('GET', `${base}/v2/up/chunked/blobs/${sha(data)}`)).body.equals(data)).toBe(true);
  });

  it('streamed PATCH (chunked transfer, no Content-Range) then an empty closing PUT', async () => {
    const data = bytes(200_000, 4);
    const before = reg.counters.patchBytes;
    const p = await req('POST', `${base}/v2/up/stream/blobs/uploads/`);
    const pieces = [data.subarray(0, 70_000), data.subarray(70_000, 150_000), data.subarray(150_000)];
    const r = await req('PATCH', `${base}${p.header('location')}`, { body: Readable.from(pieces) });
    expect(r.status).toBe(202);
    expect(r.header('range')).toBe(`0-${data.length - 1}`);
    expect(reg.counters.patchBytes - before).toBe(data.length);
    const put = await req('PUT', `${base}${r.header('location')}?digest=${sha(data)}`, { headers: { 'Content-Length': 0 } });
    expect(put.status).toBe(201);
    expect((await req('GET', `${base}/v2/up/stream/blobs/${sha(data)}`)).body.equals(data)).toBe(true);
  });

  it('a chunk shorter than its Content-Range is SIZE_INVALID and rolled back', async () => {
    const p = await req('POST', `${base}/v2/up/short/blobs/uploads/`);
    const loc = p.header('location')!;
    const r = await req('PATCH', `${base}${loc}`, { body: Readable.from([Buffer.from('12345')]), headers: { 'Content-Range': '0-9' } });
    expect(r.status).toBe(400);
    expect(errCodes(r)).toEqual(['SIZE_INVALID']);
    const s = await req('GET', `${base}${loc}`);
    expect(s.header('range')).toBe('0-0');
    const ok = await req('PATCH', `${base}${loc}`, { body: 'abc', headers: { 'Content-Range': '0-2' } });
    expect(ok.status).toBe(202);
    const put = await req('PUT', `${base}${loc}?digest=${sha('abc')}`);
    expect(put.status).toBe(201);
  });

  it('a wrong digest on close is DIGEST_INVALID and ends the session; missing digest is DIGEST_INVALID', async () => {
    const p = await req('POST', `${base}/v2/up/bad/blobs/uploads/`);
    const loc = p.header('location')!;
    let r = await req('PUT', `${base}${loc}`, { body: 'hello' });
    expect(r.status).toBe(400);
    expect(errCodes(r)).toEqual(['DIGEST_INVALID']);
    r = await req('PUT', `${base}${loc}?digest=${sha('other')}`, { body: 'hello' });
    expect(r.status).toBe(400);
    expect(errCodes(r)).toEqual(['DIGEST_INVALID']);
    r = await req('GET', `${base}${loc}`);
    expect(r.status).toBe(404);
    expect(errCodes(r)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    expect((await req('HEAD', `${base}/v2/up/bad/blobs/${sha('hello')}`)).status).toBe(404);
    r = await req('POST', `${base}/v2/up/bad/blobs/uploads/?digest=${sha('x')}`, { body: 'y' });
    expect(r.status).toBe(400);
    expect(errCodes(r)).toEqual(['DIGEST_INVALID']);
    r = await req('POST', `${base}/v2/up/bad/blobs/uploads/?digest=sha256:1234`, { body: 'y' });
    expect(errCodes(r)).toEqual(['DIGEST_INVALID']);
  });

  it('end-14: DELETE cancels an upload (204); the session is then unknown; other repos cannot use it', async () => {
    const p = await req('POST', `${base}/v2/up/cancel/blobs/uploads/`);
    const loc = p.header('location')!;
    const id = loc.split('/').pop();
    expect((await req('GET', `${base}/v2/up/other/blobs/uploads/${id}`)).status).toBe(404);
    const d = await req('DELETE', `${base}${loc}`);
    expect(d.status).toBe(204);
    const r = await req('PATCH', `${base}${loc}`, { body: 'x' });
    expect(r.status).toBe(404);
    expect(errCodes(r)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    expect((await req('DELETE', `${base}${loc}`)).status).toBe(404);
  });

  it('end-11: cross-repository mount (201), fallback to an upload session (202), anonymous mount without from', async () => {
    const data = bytes(500, 5);
    const d = await upload(base, 'mnt/src', data);
    const mountsBefore = reg.counters.mounts;
    let r = await req('POST', `${base}/v2/mnt/dst/blobs/uploads/?mount=${d}&from=mnt/src`);
    expect(r.status).toBe(201);
    expect(r.header('location')).toBe(`/v2/mnt/dst/blobs/${d}`);
    expect(r.header('docker-content-digest')).toBe(d);
    expect((await req('GET', `${base}/v2/mnt/dst/blobs/${d}`)).body.equals(data)).toBe(true);
    r = await req('POST', `${base}/v2/mnt/dst2/blobs/uploads/?mount=${sha('absent')}&from=mnt/src`);
    expect(r.status).toBe(202);
    expect(r.header('location')).toMatch(/\/blobs\/uploads\//);
    r = await req('POST', `${base}/v2/mnt/anon/blobs/uploads/?mount=${d}`);
    expect(r.status).toBe(201);
    expect(reg.counters.mounts - mountsBefore).toBe(2);
  });
});

describe('blobs', () => {
  const data = bytes(1000, 6);
  let d: string;
  beforeAll(async () => {
    d = await upload(base, 'blobs/r', data);
  });
  it('Range requests give 206 with Content-Range', async () => {
    let r = await req('GET', `${base}/v2/blobs/r/blobs/${d}`, { headers: { Range: 'bytes=100-199' } });
    expect(r.status).toBe(206);
    expect(r.header('content-range')).toBe('bytes 100-199/1000');
    expect(r.body.equals(data.subarray(100, 200))).toBe(true);
    r = await req('GET', `${base}/v2/blobs/r/blobs/${d}`, { headers: { Range: 'bytes=900-' } });
    expect(r.header('content-range')).toBe('bytes 900-999/1000');
    expect(r.body.equals(data.subarray(900))).toBe(true);
    r = await req('GET', `${base}/v2/blobs/r/blobs/${d}`, { headers: { Range: 'bytes=-10' } });
    expect(r.body.equals(data.subarray(990))).toBe(true);
    r = await req('GET', `${base}/v2/blobs/r/blobs/${d}`, { headers: { Range: 'bytes=1000-' } });
    expect(r.status).toBe(416);
    expect(r.header('content-range')).toBe('bytes */1000');
  });
  it('unknown blob is BLOB_UNKNOWN, unknown repository NAME_UNKNOWN, bad digest DIGEST_INVALID, bad name NAME_INVALID', async () => {
    let r = await req('GET', `${base}/v2/blobs/r/blobs/${sha('nope')}`);
    expect([r.status, errCodes(r)]).toEqual([404, ['BLOB_UNKNOWN']]);
    expect((await req('HEAD', `${base}/v2/blobs/r/blobs/${sha('nope')}`)).status).toBe(404);
    r = await req('GET', `${base}/v2/blobs/none/blobs/${d}`);
    expect([r.status, errCodes(r)]).toEqual([404, ['NAME_UNKNOWN']]);
    r = await req('GET', `${base}/v2/blobs/r/blobs/sha256:xyz`);
    expect([r.status, errCodes(r)]).toEqual([400, ['DIGEST_INVALID']]);
    for (const bad of ['Upper/case', 'a//b', 'a-', '-a', 'a__b_', 'a...b']) {
      r = await req('GET', `${base}/v2/${bad}/blobs/${d}`);
      expect([bad, r.status, errCodes(r)]).toEqual([bad, 400, ['NAME_INVALID']]);
    }
    r = await req('GET', `${base}/v2/${'a'.repeat(256)}/tags/list`);
    expect(errCodes(r)).toEqual(['NAME_INVALID']);
  });
  it('end-10: DELETE a blob (202), then 404', async () => {
    const x = await upload(base, 'blobs/del', Buffer.from('delete me'));
    expect((await req('DELETE', `${base}/v2/blobs/del/blobs/${x}`)).status).toBe(202);
    const r = await req('DELETE', `${base}/v2/blobs/del/blobs/${x}`);
    expect([r.status, errCodes(r)]).toEqual([404, ['BLOB_UNKNOWN']]);
    expect((await req('GET', `${base}/v2/blobs/del/blobs/${x}`)).status).toBe(404);
    // gone everywhere, so an anonymous mount cannot bring it back
    expect((await req('POST', `${base}/v2/blobs/del2/blobs/uploads/?mount=${x}`)).status).toBe(202);
  });
  it('unsupported methods are 405 UNSUPPORTED', async () => {
    const r = await req('POST', `${base}/v2/blobs/r/blobs/${d}`);
    expect([r.status, errCodes(r)]).toEqual([405, ['UNSUPPORTED']]);
  });
});

describe('manifests', () => {
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const layer = bytes(777, 7);
  beforeAll(async () => {
    await upload(base, 'man/img', config);
    await upload(base, 'man/img', layer);
  });

  it('end-7 / end-3: PUT, GET and HEAD each manifest type by tag and by digest', async () => {
    const oci = Buffer.from(JSON.stringify(imageManifest(config, [layer])));
    const docker = Buffer.from(JSON.stringify(imageManifest(config, [layer], {}, false)));
    for (const [body, mt, tag] of [
      [oci, OCI_MANIFEST, 'oci'],
      [docker, DOCKER_MANIFEST, 'docker'],
    ] as const) {
      const r = await putManifest(base, 'man/img', tag, body.toString(), mt);
      expect(r.status).toBe(201);
      expect(r.header('docker-content-digest')).toBe(sha(body));
      expect(r.header('location')).toBe(`/v2/man/img/manifests/${sha(body)}`);
      for (const ref of [tag, sha(body)]) {
        const g = await req('GET', `${base}/v2/man/img/manifests/${ref}`, { headers: { Accept: mt } });
        expect(g.status).toBe(200);
        expect(g.header('content-type')).toBe(mt);
        expect(g.header('docker-content-digest')).toBe(sha(body));
        expect(g.body.equals(body)).toBe(true);
        const h = await req('HEAD', `${base}/v2/man/img/manifests/${ref}`);
        expect([h.status, h.header('content-length'), h.header('docker-content-digest'), h.body.length]).toEqual([200, String(body.length), sha(body), 0]);
      }
    }
    const desc = (b: Buffer, mt: string) => ({ mediaType: mt, size: b.length, digest: sha(b), platform: { architecture: 'amd64', os: 'linux' } });
    for (const [mt, child, cmt] of [
      [OCI_INDEX, oci, OCI_MANIFEST],
      [DOCKER_LIST, docker, DOCKER_MANIFEST],
    ] as const) {
      const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt, manifests: [desc(child, cmt)] }));
      const r = await putManifest(base, 'man/img', 'list', list.toString(), mt);
      expect(r.status).toBe(201);
      const g = await req('GET', `${base}/v2/man/img/manifests/list`);
      expect(g.header('content-type')).toBe(mt);
      expect(g.body.equals(list)).toBe(true);
    }
  });

  it('a manifest referencing missing blobs is rejected with one MANIFEST_BLOB_UNKNOWN per blob', async () => {
    const missing = bytes(10, 99);
    const r = await putManifest(base, 'man/img', 'broken', imageManifest(config, [layer, missing]), OCI_MANIFEST);
    expect(r.status).toBe(400);
    const body = r.json();
    expect(body.errors).toEqual([{ code: 'MANIFEST_BLOB_UNKNOWN', message: expect.any(String), detail: { digest: sha(missing) } }]);
    // blobs of another repository do not count
    const r2 = await putManifest(base, 'man/other', 'x', imageManifest(config, [layer]), OCI_MANIFEST);
    expect(r2.json().errors.map((e: { detail: { digest: string } }) => e.detail.digest)).toEqual([sha(config), sha(layer)]);
    const idx = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, size: 1, digest: sha('nope') }] };
    const r3 = await putManifest(base, 'man/img', 'idx', idx, OCI_INDEX);
    expect([r3.status, errCodes(r3)]).toEqual([400, ['MANIFEST_BLOB_UNKNOWN']]);
    expect((await req('GET', `${base}/v2/man/img/manifests/broken`)).status).toBe(404);
  });

  it('rejects invalid manifests, digest mismatches and oversize bodies with the spec codes', async () => {
    let r = await putManifest(base, 'man/img', 'bad', 'not json', OCI_MANIFEST);
    expect([r.status, errCodes(r)]).toEqual([400, ['MANIFEST_INVALID']]);
    r = await putManifest(base, 'man/img', 'bad', { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, OCI_MANIFEST);
    expect(errCodes(r)).toEqual(['MANIFEST_INVALID']);
    r = await putManifest(base, 'man/img', 'bad', imageManifest(config, [layer]), DOCKER_MANIFEST); // type clash
    expect(errCodes(r)).toEqual(['MANIFEST_INVALID']);
    r = await putManifest(base, 'man/img', sha('something else'), imageManifest(config, [layer]), OCI_MANIFEST);
    expect([r.status, errCodes(r)]).toEqual([400, ['DIGEST_INVALID']]);
    r = await putManifest(base, 'man/img', 'bad!tag', imageManifest(config, [layer]), OCI_MANIFEST);
    expect([r.status, errCodes(r)]).toEqual([400, ['MANIFEST_INVALID']]);
    r = await putManifest(base, 'man/img', 'big', 'x'.repeat(4 * 1024 * 1024 + 1), OCI_MANIFEST);
    expect([r.status, errCodes(r)]).toEqual([413, ['SIZE_INVALID']]);
    r = await req('GET', `${base}/v2/man/img/manifests/missing`);
    expect([r.status, errCodes(r)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
    // GET/HEAD of a reference that is not a valid tag: 404 like distribution (OCI conformance .INVALID_MANIFEST_NAME)
    r = await req('GET', `${base}/v2/man/img/manifests/.INVALID_MANIFEST_NAME`);
    expect([r.status, errCodes(r)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
    expect((await req('HEAD', `${base}/v2/man/img/manifests/.INVALID_MANIFEST_NAME`)).status).toBe(404);
    r = await req('GET', `${base}/v2/man/nothere/manifests/latest`);
    expect([r.status, errCodes(r)]).toEqual([404, ['NAME_UNKNOWN']]);
  });

  it('end-9: DELETE by tag removes only the tag; DELETE by digest removes the manifest and its tags', async () => {
    const m = imageManifest(config, [layer], { annotations: { n: 'del' } });
    const d = sha(JSON.stringify(m));
    await putManifest(base, 'man/img', 'd1', m, OCI_MANIFEST);
    await putManifest(base, 'man/img', 'd2', m, OCI_MANIFEST);
    expect((await req('DELETE', `${base}/v2/man/img/manifests/d1`)).status).toBe(202);
    expect((await req('GET', `${base}/v2/man/img/manifests/d1`)).status).toBe(404);
    expect((await req('GET', `${base}/v2/man/img/manifests/${d}`)).status).toBe(200);
    expect((await req('DELETE', `${base}/v2/man/img/manifests/${d}`)).status).toBe(202);
    expect((await req('GET', `${base}/v2/man/img/manifests/d2`)).status).toBe(404);
    const r = await req('DELETE', `${base}/v2/man/img/manifests/${d}`);
    expect([r.status, errCodes(r)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
  });

  it('end-12: referrers list manifests whose subject is the digest, with artifactType filtering; OCI-Subject on PUT', async () => {
    const subject = imageManifest(config, [layer], { annotations: { role: 'subject' } });
    const sd = sha(JSON.stringify(subject));
    await putManifest(base, 'man/img', 'subject', subject, OCI_MANIFEST);
    const subjDesc = { mediaType: OCI_MANIFEST, size: JSON.stringify(subject).length, digest: sd };
    const empty = Buffer.from('{}');
    await upload(base, 'man/img', empty);
    const sbom = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.sbom',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: sha(empty) },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: sha(empty) }],
      subject: subjDesc,
      annotations: { 'org.example': 'sbom' },
    };
    const sig = { ...sbom, artifactType: undefined, config: { mediaType: 'application/vnd.example.sig', size: 2, digest: sha(empty) }, annotations: undefined };
    let r = await putManifest(base, 'man/img', sha(JSON.stringify(sbom)), sbom, OCI_MANIFEST);
    expect(r.status).toBe(201);
    expect(r.header('oci-subject')).toBe(sd);
    r = await putManifest(base, 'man/img', sha(JSON.stringify(sig)), sig, OCI_MANIFEST);
    expect(r.header('oci-subject')).toBe(sd);
    // a subject that does not exist yet is accepted (spec: push referrers in either order)
    const orphan = { ...sbom, subject: { mediaType: OCI_MANIFEST, size: 5, digest: sha('future') } };
    expect((await putManifest(base, 'man/img', sha(JSON.stringify(orphan)), orphan, OCI_MANIFEST)).status).toBe(201);

    r = await req('GET', `${base}/v2/man/img/referrers/${sd}`);
    expect(r.status).toBe(200);
    expect(r.header('content-type')).toBe(OCI_INDEX);
    expect(r.header('oci-filters-applied')).toBeUndefined();
    const idx = r.json();
    expect(idx.schemaVersion).toBe(2);
    expect(idx.mediaType).toBe(OCI_INDEX);
    const byDigest = Object.fromEntries(idx.manifests.map((m: { digest: string }) => [m.digest, m]));
    expect(Object.keys(byDigest).sort()).toEqual([sha(JSON.stringify(sbom)), sha(JSON.stringify(sig))].sort());
    expect(byDigest[sha(JSON.stringify(sbom))]).toEqual({
      mediaType: OCI_MANIFEST,
      digest: sha(JSON.stringify(sbom)),
      size: JSON.stringify(sbom).length,
      artifactType: 'application/vnd.example.sbom',
      annotations: { 'org.example': 'sbom' },
    });
    expect(byDigest[sha(JSON.stringify(sig))].artifactType).toBe('application/vnd.example.sig'); // config mediaType

    r = await req('GET', `${base}/v2/man/img/referrers/${sd}?artifactType=${encodeURIComponent('application/vnd.example.sbom')}`);
    expect(r.header('oci-filters-applied')).toBe('artifactType');
    expect(r.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([sha(JSON.stringify(sbom))]);
    r = await req('GET', `${base}/v2/man/img/referrers/${sha('no referrers')}`);
    expect([r.status, r.json().manifests]).toEqual([200, []]);
    r = await req('GET', `${base}/v2/man/img/referrers/sha256:zz`);
    expect([r.status, errCodes(r)]).toEqual([400, ['DIGEST_INVALID']]);
  });
});

describe('listings', () => {
  beforeAll(async () => {
    const c = Buffer.from('{"tags":1}');
    await upload(base, 'list/img', c);
    const m = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: c.length, digest: sha(c) },
      layers: [],
    };
    for (const t of ['b', 'a', 'D', 'c', 'e']) expect((await putManifest(base, 'list/img', t, m, OCI_MANIFEST)).status).toBe(201);
  });
  it('end-8a: all tags, sorted ASCIIbetically', async () => {
    const r = await req('GET', `${base}/v2/list/img/tags/list`);
    expect(r.json()).toEqual({ name: 'list/img', tags: ['D', 'a', 'b', 'c', 'e'] });
    expect(r.header('link')).toBeUndefined();
  });
  it('end-8b: n and last paginate, with RFC 5988 Link headers to the next page', async () => {
    let r = await req('GET', `${base}/v2/list/img/tags/list?n=2`);
    expect(r.json().tags).toEqual(['D', 'a']);
    expect(r.header('link')).toBe('</v2/list/img/tags/list?n=2&last=a>; rel="next"');
    r = await req('GET', `${base}${/<([^>]+)>/.exec(r.header('link')!)![1]}`);
    expect(r.json().tags).toEqual(['b', 'c']);
    r = await req('GET', `${base}${/<([^>]+)>/.exec(r.header('link')!)![1]}`);
    expect(r.json().tags).toEqual(['e']);
    expect(r.header('link')).toBeUndefined();
    r = await req('GET', `${base}/v2/list/img/tags/list?n=0`);
    expect([r.json().tags, r.header('link')]).toEqual([[], undefined]);
    r = await req('GET', `${base}/v2/list/img/tags/list?last=b`);
    expect(r.json().tags).toEqual(['c', 'e']);
    r = await req('GET', `${base}/v2/list/img/tags/list?n=5`);
    expect([r.json().tags.length, r.header('link')]).toEqual([5, undefined]);
    r = await req('GET', `${base}/v2/list/nothere/tags/list`);
    expect([r.status, errCodes(r)]).toEqual([404, ['NAME_UNKNOWN']]);
  });
  it('_catalog lists repositories with the same pagination', async () => {
    const all = (await req('GET', `${base}/v2/_catalog`)).json().repositories as string[];
    expect(all).toContain('list/img');
    expect([...all].sort()).toEqual(all);
    const r = await req('GET', `${base}/v2/_catalog?n=1`);
    expect(r.json().repositories).toEqual([all[0]]);
    expect(r.header('link')).toBe(`</v2/_catalog?n=1&last=${encodeURIComponent(all[0]!)}>; rel="next"`);
  });
});

describe('counters and log', () => {
  it('count uploads, HEADs and requests per route, and log every request without secrets', async () => {
    const r2 = await startRegistry();
    try {
      const data = bytes(100, 8);
      const p = await req('POST', `${r2.url}/v2/c/x/blobs/uploads/`);
      await req('PATCH', `${r2.url}${p.header('location')}`, { body: data });
      await req('PUT', `${r2.url}${p.header('location')}?digest=${sha(data)}`);
      await req('HEAD', `${r2.url}/v2/c/x/blobs/${sha(data)}`, { headers: { Authorization: 'Basic c2VjcmV0OnNlY3JldA==' } });
      const c = r2.counters;
      expect([c.blobUploadsStarted, c.blobUploadsCompleted, c.heads, c.blobHeads, c.patchBytes, c.patchRequests]).toEqual([1, 1, 1, 1, 100, 1]);
      expect(c.byRoute).toEqual({ 'POST upload': 1, 'PATCH upload': 1, 'PUT upload': 1, 'HEAD blob': 1 });
      await new Promise((r) => setTimeout(r, 20));
      expect(r2.log.map((e) => `${e.method} ${e.route} ${e.status}`)).toEqual(['POST upload 202', 'PATCH upload 202', 'PUT upload 201', 'HEAD blob 200']);
      expect(JSON.stringify(r2.log)).not.toContain('c2VjcmV0');
      r2.resetCounters();
      expect([r2.counters.requests, r2.log.length]).toEqual([0, 0]);
    } finally {
      await r2.close();
    }
  });
});

describe('robustness', () => {
  it('survives malformed URLs and escapes', async () => {
    const r = await req('GET', `${base}/v2/x/manifests/%E0%A4%A`);
    expect(r.status).toBe(400);
    expect((await req('GET', `${base}/v2/`)).status).toBe(200);
    const enc = await req('GET', `${base}/v2/blobs/r/blobs/${encodeURIComponent(sha('nope'))}`);
    expect(errCodes(enc)).toEqual(['BLOB_UNKNOWN']);
  });
});
