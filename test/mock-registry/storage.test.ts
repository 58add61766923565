import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'node:http';
import { startRegistry } from '../../mock-registry/index.js';
import { bytes, imageManifest, putManifest, req, sha, upload } from './http.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mockreg-store-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const OCI = 'application/vnd.oci.image.manifest.v1+json';

describe('directory storage', () => {
  it('survives a restart: blobs, manifests, tags, referrers and deletions', async () => {
    const dir = tmp();
    const config = Buffer.from('{"os":"linux"}');
    const layer = bytes(300_000, 21);
    let reg = await startRegistry({ storage: dir });
    await upload(reg.url, 'keep/img', config);
    await upload(reg.url, 'keep/img', layer);
    const m = imageManifest(config, [layer]);
    const md = sha(JSON.stringify(m));
    expect((await putManifest(reg.url, 'keep/img', 'v1', m, OCI)).status).toBe(201);
    await putManifest(reg.url, 'keep/img', 'gone', m, OCI);
    await req('DELETE', `${reg.url}/v2/keep/img/manifests/gone`);
    const ref = imageManifest(config, [], { subject: { mediaType: OCI, size: JSON.stringify(m).length, digest: md } });
    await putManifest(reg.url, 'keep/img', sha(JSON.stringify(ref)), ref, OCI);
    await reg.close();

    reg = await startRegistry({ storage: dir });
    try {
      const g = await req('GET', `${reg.url}/v2/keep/img/manifests/v1`);
      expect([g.status, g.header('content-type'), g.body.toString()]).toEqual([200, OCI, JSON.stringify(m)]);
      expect((await req('GET', `${reg.url}/v2/keep/img/blobs/${sha(layer)}`)).body.equals(layer)).toBe(true);
      const r = await req('GET', `${reg.url}/v2/keep/img/blobs/${sha(layer)}`, { headers: { Range: 'bytes=1000-1999' } });
      expect([r.status, r.body.equals(layer.subarray(1000, 2000))]).toEqual([206, true]);
      expect((await req('GET', `${reg.url}/v2/keep/img/tags/list`)).json().tags).toEqual(['v1']);
      expect((await req('GET', `${reg.url}/v2/keep/img/referrers/${md}`)).json().manifests).toHaveLength(1);
      expect((await req('GET', `${reg.url}/v2/_catalog`)).json().repositories).toEqual(['keep/img']);
    } finally {
      await reg.close();
    }
  });

  it('an upload cut off mid-stream is rolled back; a crash mid-upload leaves nothing behind after restart', async () => {
    const dir = tmp();
    let reg = await startRegistry({ storage: dir });
    const data = bytes(100_000, 22);
    const p = await req('POST', `${reg.url}/v2/crash/img/blobs/uploads/`);
    const loc = `${reg.url}${p.header('location')}`;
    expect((await req('PATCH', loc, { body: data.subarray(0, 40_000), headers: { 'Content-Range': '0-39999' } })).status).toBe(202);
    // a client that dies halfway through the next chunk
    const dying = request(loc, { method: 'PATCH', headers: { 'Content-Range': '40000-99999', 'Content-Length': 60_000 } });
    dying.on('error', () => undefined);
    dying.write(data.subarray(40_000, 50_000));
    await new Promise((r) => setTimeout(r, 100));
    dying.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await req('GET', loc)).header('range')).toBe('0-39999');
    expect(readdirSync(join(dir, '_uploads'))).toHaveLength(1);
    // "crash": stop with the upload open; the partial file must not become a blob after restart
    await reg.close();
    writeFileSync(join(dir, 'blobs', 'sha256', '.partial-junk'), 'x');
    reg = await startRegistry({ storage: dir });
    try {
      expect(existsSync(join(dir, '_uploads'))).toBe(false);
      expect(readdirSync(join(dir, 'blobs', 'sha256'))).toEqual([]);
      expect((await req('GET', `${reg.url}${p.header('location')}`)).status).toBe(404);
      expect((await req('HEAD', `${reg.url}/v2/crash/img/blobs/${sha(data)}`)).status).toBe(404);
      // and the same upload done properly lands exactly once, named by its digest
      await upload(reg.url, 'crash/img', data);
      expect(readdirSync(join(dir, 'blobs', 'sha256'))).toEqual([sha(data).slice(7)]);
    } finally {
      await reg.close();
    }
  });

  it('streams a large blob to disk without buffering it (memory stays flat)', async () => {
    const dir = tmp();
    const reg = await startRegistry({ storage: dir });
    try {
      const chunk = bytes(1024 * 1024, 23);
      const n = 48; // 48 MiB streamed
      const { createHash } = await import('node:crypto');
      const h = createHash('sha256');
      for (let i = 0; i < n; i++) h.update(chunk);
      const digest = 'sha256:' + h.digest('hex');
      let i = 0;
      const body = new Readable({
        read() {
          this.push(i++ < n ? chunk : null);
        },
      });
      const rss0 = process.memoryUsage().rss;
      const p = await req('POST', `${reg.url}/v2/big/img/blobs/uploads/`);
      const r = await req('PATCH', `${reg.url}${p.header('location')}`, { body });
      expect(r.header('range')).toBe(`0-${n * chunk.length - 1}`);
      expect((await req('PUT', `${reg.url}${r.header('location')}?digest=${digest}`)).status).toBe(201);
      expect(process.memoryUsage().rss - rss0).toBeLessThan(40 * 1024 * 1024);
      const head = await req('HEAD', `${reg.url}/v2/big/img/blobs/${digest}`);
      expect(head.header('content-length')).toBe(String(n * chunk.length));
    } finally {
      await reg.close();
    }
  });
});
