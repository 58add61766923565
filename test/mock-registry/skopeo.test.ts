import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { pushSampleImage, sampleImage, sampleTar } from '../../mock-registry/sample-image.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { requireTool } from '../helpers/tools.js';
import { sha } from './http.js';

/**
 * The real peer: Debian's skopeo 1.9.3 pushes to and pulls from the mock, and the same image pushed to Debian's
 * docker-registry (distribution 2.8.2) ends up with the same manifest and blob digests.
 */
const run = promisify(execFile);
const skopeo = async (...args: string[]) => (await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 << 20 })).stdout;

const tmp = mkdtempSync(join(tmpdir(), 'mockreg-skopeo-'));
const layout = join(tmp, 'layout');
const tar = sampleTar([
  { name: 'etc/' },
  { name: 'etc/greeting', data: 'hello skopeo\n' },
  { name: 'bin/' },
  { name: 'bin/run', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
]);
const layer = gzipSync(tar);
const config = Buffer.from(
  JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/run'] }, rootfs: { type: 'layers', diff_ids: [sha(tar)] } }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: sha(config) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: layer.length, digest: sha(layer) }],
  }),
);

let reg: Registry;
beforeAll(async () => {
  requireTool('skopeo');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const b of [layer, config, manifest]) writeFileSync(join(layout, 'blobs', 'sha256', sha(b).slice(7)), b);
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.length, digest: sha(manifest) }],
    }),
  );
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function dirBlobs(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of readdirSync(dir)) if (/^[a-f0-9]{64}$/.test(f)) out.set('sha256:' + f, readFileSync(join(dir, f)));
  return out;
}

describe('skopeo 1.9.3 against the mock registry', () => {
  it('pushes an OCI layout, inspects it and pulls it back into dir: byte for byte', async () => {
    await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}`, `docker://${reg.host}/test/img:v1`);
    expect(reg.counters.blobUploadsCompleted).toBe(2);
    expect(reg.counters.blobHeads).toBeGreaterThanOrEqual(2);
    const raw = Buffer.from(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/img:v1`));
    expect(raw.equals(manifest)).toBe(true);
    const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${reg.host}/test/img:v1`));
    expect(info.Digest).toBe(sha(manifest));
    expect(info.Layers).toEqual([sha(layer)]);
    const out = join(tmp, 'pulled');
    await skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/test/img@${sha(manifest)}`, `dir:${out}`);
    expect(readFileSync(join(out, 'manifest.json')).equals(manifest)).toBe(true);
    const blobs = dirBlobs(out);
    expect(blobs.get(sha(layer))?.equals(layer)).toBe(true);
    expect(blobs.get(sha(config))?.equals(config)).toBe(true);
    const oci = join(tmp, 'pulled-oci');
    await skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/test/img:v1`, `oci:${oci}:x`);
    expect(readFileSync(join(oci, 'blobs', 'sha256', sha(manifest).slice(7))).equals(manifest)).toBe(true);
  });

  it('gives the same manifest and blob digests as Debian docker-registry (distribution 2.8.2)', async () => {
    let dist: Distribution | undefined;
    try {
      dist = await startDistribution();
      await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}`, `docker://${dist.host}/test/img:v1`);
      await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}`, `docker://${reg.host}/test/same:v1`);
      const [a, b] = await Promise.all(
        [dist.host, reg.host].map(async (h) =>
          JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${h}/test/${h === reg.host ? 'same' : 'img'}:v1`)),
        ),
      );
      expect(b.Digest).toBe(a.Digest);
      expect(b.Layers).toEqual(a.Layers);
      const rawA = Buffer.from(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${dist.host}/test/img:v1`));
      const rawB = Buffer.from(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/test/same:v1`));
      expect(rawB.equals(rawA)).toBe(true);
      const cfgA = Buffer.from(await skopeo('inspect', '--tls-verify=false', '--config', '--raw', `docker://${dist.host}/test/img:v1`));
      const cfgB = Buffer.from(await skopeo('inspect', '--tls-verify=false', '--config', '--raw', `docker://${reg.host}/test/same:v1`));
      expect(cfgB.equals(cfgA)).toBe(true);
      // a Docker schema2 image pushed over plain HTTP to the mock, copied by skopeo mock → distribution, keeps its digest
      const img = sampleImage();
      await pushSampleImage(reg.url, 'test/docker', 'v2', img);
      await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/test/docker:v2`, `docker://${dist.host}/test/docker:v2`);
      const back = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${dist.host}/test/docker:v2`));
      expect([back.Digest, back.Layers]).toEqual([img.manifestDigest, [sha(img.layer)]]);
    } finally {
      await dist?.stop();
    }
  });

  it('works through the bearer token flow with credentials, and anonymous pulls', async () => {
    const secure = await startRegistry({ auth: { mode: 'bearer', users: { alice: 's3cret' }, anonymousPull: true, service: 'test-registry' } });
    try {
      await expect(skopeo('copy', '--dest-tls-verify=false', `oci:${layout}`, `docker://${secure.host}/auth/img:v1`)).rejects.toThrow(
        /denied|unauthorized|authentication/i,
      );
      await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret', `oci:${layout}`, `docker://${secure.host}/auth/img:v1`);
      const info = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${secure.host}/auth/img:v1`)); // anonymous
      expect(info.Digest).toBe(sha(manifest));
      expect(secure.counters.tokensIssued).toBeGreaterThanOrEqual(2);
      expect(secure.log.some((e) => e.route === 'token')).toBe(true);
      expect(JSON.stringify(secure.log)).not.toContain('s3cret');
    } finally {
      await secure.close();
    }
  });

  it('pushes over TLS with Basic auth and pulls back with the same credentials', async () => {
    requireTool('openssl');
    const key = join(tmp, 'key.pem');
    const cert = join(tmp, 'cert.pem');
    await run('openssl', [
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
    ]);
    const certDir = join(tmp, 'certs');
    mkdirSync(certDir, { recursive: true });
    writeFileSync(join(certDir, 'ca.crt'), readFileSync(cert));
    const tls = await startRegistry({ tls: { certFile: cert, keyFile: key }, auth: { mode: 'basic', users: { bob: 'b0b' } } });
    try {
      await skopeo('copy', '--dest-cert-dir', certDir, '--dest-creds', 'bob:b0b', `oci:${layout}`, `docker://${tls.host}/tls/img:v1`);
      const out = join(tmp, 'tls-pulled');
      await skopeo('copy', '--src-cert-dir', certDir, '--src-creds', 'bob:b0b', `docker://${tls.host}/tls/img:v1`, `dir:${out}`);
      expect(readFileSync(join(out, 'manifest.json')).equals(manifest)).toBe(true);
      expect(dirBlobs(out).get(sha(layer))?.equals(layer)).toBe(true);
      expect(tls.log.every((e) => e.route === 'ping' || e.status !== 401 || e.auth === undefined)).toBe(true);
    } finally {
      await tls.close();
    }
  });
});
