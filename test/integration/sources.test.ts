import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, manifestOf, pushTestImage, pushTestIndex, type TestImage } from '../helpers/images.js';
import { requireTool } from '../helpers/tools.js';
import { simpleImage } from '../helpers/simple-image.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { openSource, type SourceImage } from '../../src/source/index.js';
import { loadStreamConf, streamImageToFile } from '../../src/nix/stream/index.js';
import { NixregError } from '../../src/errors.js';

/**
 * openSource against every kind of input, all made by real tools from one registry image: the registry itself,
 * skopeo's docker-archive (plain and gzip'd), OCI layout and OCI archive, and a streamLayeredImage conf. Each must
 * give the same config bytes and the same uncompressed layers, and every stream must be verified.
 */
const amd64 = { os: 'linux', arch: 'amd64' };
let reg: Distribution;
let work: string;
let img: TestImage;
let tars: Buffer[];
let imgDigest: string;
let indexDigest: string;

async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function skopeo(...args: string[]): void {
  execFileSync('skopeo', ['--insecure-policy', '--override-os', 'linux', '--override-arch', 'amd64', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function expectSameImage(s: SourceImage): Promise<void> {
  expect(s.configBytes.equals(img.config)).toBe(true);
  expect(s.diffIDs).toEqual(tars.map((t) => 'sha256:' + createHash('sha256').update(t).digest('hex')));
  for (let i = 0; i < tars.length; i++) expect((await readAll(await s.openUncompressedLayer(i))).equals(tars[i]!)).toBe(true);
}

beforeAll(async () => {
  requireTool('skopeo');
  requireTool('zstd');
  work = mkdtempSync(join(tmpdir(), 'nixreg-sources-'));
  reg = await startDistribution();
  tars = [LAYERS.L1(), LAYERS.L2(), LAYERS.L3()];
  img = makeImage(
    [
      { tar: tars[0]!, c: 'gzip' },
      { tar: tars[1]!, c: 'zstd' },
      { tar: tars[2]!, c: 'none' },
    ],
    'oci',
  );
  imgDigest = await pushTestImage(reg.url, 'src/img', img, 'v1');
  const arm = makeImage([{ tar: tars[0]!, c: 'gzip' }], 'oci', { arch: 'arm64', variant: 'v8' });
  await pushTestImage(reg.url, 'src/img', arm);
  indexDigest = await pushTestIndex(
    reg.url,
    'src/img',
    [
      { img, platform: { os: 'linux', architecture: 'amd64' } },
      { img: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
    'multi',
  );
  // skopeo 1.9.3 refuses tar+zstd layers when writing a docker-archive; the gzip-only twin is used for archives
  const ref = `docker://${reg.host}/src/img:multi`;
  skopeo('copy', '--src-tls-verify=false', ref, `oci:${work}/layout:v1`);
  skopeo('copy', '--src-tls-verify=false', ref, `oci-archive:${work}/layout.tar:v1`);
  skopeo('copy', '--all', '--src-tls-verify=false', ref, `oci:${work}/multi:v1`);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('openSource', () => {
  test('docker://: manifest and index digests, verified layers in every compression', async () => {
    const s = await openSource(`docker://${reg.host}/src/img:multi`, { platform: amd64, tlsVerify: false });
    expect(s.kind).toBe('registry');
    expect(s.manifestDigest).toBe(imgDigest);
    expect(s.index?.digest).toBe(indexDigest);
    expect(s.index?.platforms.map((p) => p.platform?.architecture)).toEqual(['amd64', 'arm64']);
    expect(s.manifestBytes!.equals(manifestOf(img).bytes)).toBe(true);
    expect(s.repoTags).toEqual([`${reg.host}/src/img:multi`]);
    await expectSameImage(s);
    const arm = await openSource(`docker://${reg.host}/src/img:multi`, { platform: { os: 'linux', arch: 'arm64' }, tlsVerify: false });
    expect(arm.diffIDs.length).toBe(1);
  });

  test('oci:DIR[:REF] and a bare layout directory; oci-archive:PATH[:REF] and a bare archive', async () => {
    const raw = execFileSync('skopeo', ['inspect', '--raw', `oci:${work}/layout:v1`]);
    const layoutDigest = 'sha256:' + createHash('sha256').update(raw).digest('hex');
    for (const spec of [`oci:${work}/layout:v1`, `oci:${work}/layout`, `${work}/layout`, `oci-archive:${work}/layout.tar:v1`, `${work}/layout.tar`]) {
      const s = await openSource(spec, { platform: amd64 });
      expect(s.kind).toBe(spec.includes('layout.tar') ? 'oci-archive' : 'oci-layout');
      expect(s.repoTags).toEqual(['v1']);
      // skopeo copied the chosen platform's image only (it rewrites the manifest: compare with what it reads back)
      expect(s.index).toBe(null);
      expect(s.manifestDigest).toBe(layoutDigest);
      await expectSameImage(s);
      await s.close();
    }
    // copy --all keeps the index: the platform is chosen from it
    const rawIndex = execFileSync('skopeo', ['inspect', '--raw', `oci:${work}/multi:v1`]);
    const entries = JSON.parse(rawIndex.toString()).manifests as Array<{ digest: string; platform: { architecture: string } }>;
    const m = await openSource(`oci:${work}/multi:v1`, { platform: amd64 });
    expect(m.index?.bytes.equals(rawIndex)).toBe(true);
    expect(m.manifestDigest).toBe(entries.find((e) => e.platform.architecture === 'amd64')!.digest);
    await expectSameImage(m);
    const arm = await openSource(`oci:${work}/multi:v1`, { platform: { os: 'linux', arch: 'arm64' } });
    expect(arm.index?.digest).toBe(m.index?.digest);
    expect(arm.manifestDigest).toBe(entries.find((e) => e.platform.architecture === 'arm64')!.digest);
  });

  test('docker-archive: plain, gzip and zstd, picked by tag, with the manifest digest skopeo reports', async () => {
    // skopeo's docker-archive reader wants an integer StopTimeout: a plain config instead of prettyConfig
    const gz = simpleImage(tars);
    const d = await pushTestImage(reg.url, 'src/gz', gz);
    const plain = join(work, 'da.tar');
    skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/src/gz@${d}`, `docker-archive:${plain}:example.org/a/b:1`);
    writeFileSync(`${plain}.gz`, gzipSync(readFileSync(plain)));
    execFileSync('zstd', ['-q', '-f', plain, '-o', `${plain}.zst`]);
    const skopeoDigest = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${plain}`], { encoding: 'utf8' })).Digest;
    for (const spec of [plain, `docker-archive:${plain}`, `docker-archive:${plain}:example.org/a/b:1`, `${plain}.gz`, `docker-archive:${plain}.zst`]) {
      const s = await openSource(spec, { platform: amd64 });
      expect(s.kind).toBe('docker-archive');
      expect(s.repoTags).toEqual(['example.org/a/b:1']);
      expect(s.manifestDigest).toBe(skopeoDigest);
      expect(s.configBytes.equals(gz.config)).toBe(true);
      for (let i = 0; i < tars.length; i++) expect((await readAll(await s.openUncompressedLayer(i))).equals(tars[i]!)).toBe(true);
      await s.close();
    }
    await expect(openSource(`docker-archive:${plain}:example.org/a/b:2`, { platform: amd64 })).rejects.toThrow(/has no image tagged example.org\/a\/b:2/);
  });

  test('conf:PATH gives the config and layers of the stream output; both have the same manifest digest', async () => {
    const root = await buildStoreTree();
    try {
      const confFile = join(FIXTURES, 'cases', 'a-defaults', 'conf.json');
      const out = join(work, 'stream.tar');
      await streamImageToFile(await loadStreamConf(confFile), out, { storeRoot: root });
      const c = await openSource(`conf:${confFile}`, { platform: amd64, storeRoot: root });
      const a = await openSource(out, { platform: amd64 });
      expect(c.kind).toBe('conf');
      expect(c.configBytes.equals(a.configBytes)).toBe(true);
      expect(c.manifestDigest).toBe(a.manifestDigest);
      expect(c.repoTags).toEqual(a.repoTags);
      for (let i = 0; i < a.layers.length; i++)
        expect((await readAll(await c.openUncompressedLayer(i))).equals(await readAll(await a.openUncompressedLayer(i)))).toBe(true);
      await c.close();
      await a.close();
    } finally {
      await removeStoreTree(root);
    }
  });

  test('a corrupted blob fails its stream with an integrity error; a corrupted config fails the open', async () => {
    const bad = join(work, 'bad-layout');
    cpSync(join(work, 'layout'), bad, { recursive: true });
    const s0 = await openSource(`oci:${bad}:v1`, { platform: amd64 });
    const blob = join(bad, 'blobs', 'sha256', s0.layers[0]!.digest.slice(7));
    const bytes = readFileSync(blob);
    bytes[bytes.length - 5] ^= 1;
    writeFileSync(blob, bytes);
    await expect(readAll(await s0.openLayer(0))).rejects.toThrow(/digest mismatch/);
    const cfg = join(bad, 'blobs', 'sha256', s0.config.digest.slice(7));
    writeFileSync(cfg, readFileSync(cfg).toString().replace('amd64', 'amd65'));
    const err = await openSource(`oci:${bad}:v1`, { platform: amd64 }).catch((e) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect(err.message).toMatch(/config: digest mismatch/);
    expect(err.message).not.toMatch(/\n/);
  });

  test('one-line errors naming the source', async () => {
    const notTar = join(work, 'not-an-archive');
    writeFileSync(notTar, 'hello, world\n'.repeat(100));
    const cases: Array<[string, RegExp]> = [
      [join(work, 'missing.tar'), /missing\.tar does not exist/],
      [notTar, /not-an-archive is not a tar archive/],
      [`oci:${work}/layout:nope`, /has no image named nope \(refs: v1\)/],
      [`oci:${work}`, /not an OCI image layout/],
      [`docker://${reg.host}/src/img:absent`, /absent/],
    ];
    for (const [spec, re] of cases) {
      const err = await openSource(spec, { platform: amd64, tlsVerify: false, retry: { times: 0 } }).catch((e) => e);
      expect(err, spec).toBeInstanceOf(NixregError);
      expect(err.message).toMatch(re);
      expect(err.message).not.toMatch(/\n/);
    }
    expect(readdirSync(work)).not.toContain('missing.tar');
  });
});
