import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, layerTar, makeImage, manifestOf, prng, pushAmdArmIndex, pushManifest, pushTestImage, sha, type TestImage } from '../helpers/images.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { requireTool } from '../helpers/tools.js';
import { validateImage } from '../helpers/validate-image.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { loadStreamConf, streamImageToFile } from '../../src/nix/stream/index.js';
import { ExitCode } from '../../src/errors.js';
import { openSource } from '../../src/source/index.js';

/**
 * `nixreg copy` between Debian's docker-registry, OCI layouts (read back by skopeo and umoci) and docker-archives
 * (compared with `nixreg pull` byte for byte).
 */
const amd64 = { os: 'linux', arch: 'amd64' };
const PLATFORM = ['--os', 'linux', '--arch', 'amd64'];
let reg: Distribution;
let work: string;
let ociImg: TestImage;
let dockerImg: TestImage;
let amd: TestImage;
let arm: TestImage;
let indexDigest: string;

const skopeo = (...args: string[]): Buffer =>
  execFileSync('skopeo', ['--insecure-policy', '--override-os', 'linux', '--override-arch', 'amd64', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
const blob = (dir: string, digest: string) => readFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
const layoutIndex = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }>;
  };
const copy = (...args: string[]) => runCli(['copy', '-q', ...args], { cacheHome: join(work, 'cache') });
const fresh = (name: string) => join(mkdtempSync(join(work, `${name}-`)), 'out');

beforeAll(async () => {
  for (const t of ['skopeo', 'umoci']) requireTool(t);
  work = mkdtempSync(join(tmpdir(), 'nixreg-copy-'));
  reg = await startDistribution();
  ociImg = makeImage(
    [
      { tar: LAYERS.L1(), c: 'gzip' },
      { tar: LAYERS.L3(), c: 'none' },
      { tar: LAYERS.L2(), c: 'gzip' },
    ],
    'oci',
  );
  dockerImg = makeImage(
    [
      { tar: LAYERS.L1(), c: 'gzip' },
      { tar: LAYERS.L2(), c: 'gzip' },
    ],
    'docker',
  );
  await pushTestImage(reg.url, 'test/oci', ociImg, 'v1');
  await pushTestImage(reg.url, 'test/docker', dockerImg, 'v1');
  amd = makeImage([{ tar: LAYERS.L1(), c: 'gzip' }], 'oci');
  arm = makeImage(
    [
      { tar: LAYERS.L2(), c: 'gzip' },
      { tar: LAYERS.L1(), c: 'gzip' },
    ],
    'oci',
    { arch: 'arm64', variant: 'v8' },
  );
  indexDigest = (await pushAmdArmIndex(reg.url, 'test/multi', amd, arm, { index: 'idx' })).index;
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nixreg copy docker:// → oci:', () => {
  test('an OCI image keeps its manifest and config bytes; skopeo inspects and umoci unpacks the layout', async () => {
    const dir = fresh('oci');
    const r = await copy(`docker://${reg.host}/test/oci:v1`, `oci:${dir}:v1`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const entry = layoutIndex(dir).manifests[0]!;
    expect(entry.annotations?.['org.opencontainers.image.ref.name']).toBe('v1');
    expect(entry.digest).toBe(manifestOf(ociImg).digest);
    expect(skopeo('inspect', '--raw', `oci:${dir}:v1`).equals(manifestOf(ociImg).bytes)).toBe(true);
    expect(skopeo('inspect', '--config', '--raw', `oci:${dir}:v1`).equals(ociImg.config)).toBe(true);
    expect(blob(dir, sha(ociImg.config)).equals(ociImg.config)).toBe(true);
    for (const l of ociImg.layers) expect(blob(dir, sha(l.blob)).equals(l.blob)).toBe(true);
    const bundle = join(work, 'bundle-oci');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${dir}:v1`, bundle], { stdio: 'ignore' });
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8')).toBe('hello\n');
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'plain.conf'), 'utf8')).toBe('uncompressed layer\n');
    expect(existsSync(join(bundle, 'rootfs', 'usr', 'share', 'data.bin'))).toBe(true);
    await validateLayout(`oci:${dir}:v1`);
  }, 120_000);

  test('a Docker schema2 image gets the media types skopeo writes for oci:, with the same config bytes and layer blobs', async () => {
    const ours = fresh('docker-ours');
    const theirs = fresh('docker-skopeo');
    const r = await copy(`docker://${reg.host}/test/docker:v1`, `oci:${ours}:t`);
    expect(r.status, r.stderr).toBe(0);
    skopeo('copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/test/docker:v1`, `oci:${theirs}:t`);
    const types = (dir: string) => {
      const m = JSON.parse(skopeo('inspect', '--raw', `oci:${dir}:t`).toString('utf8'));
      return {
        index: layoutIndex(dir).manifests[0]!.mediaType,
        manifest: m.mediaType,
        config: m.config.mediaType,
        layers: m.layers.map((l: { mediaType: string }) => l.mediaType),
      };
    };
    expect(types(ours)).toEqual(types(theirs));
    expect(skopeo('inspect', '--config', '--raw', `oci:${ours}:t`).equals(dockerImg.config)).toBe(true);
    const m = JSON.parse(skopeo('inspect', '--raw', `oci:${ours}:t`).toString('utf8'));
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual(dockerImg.layers.map((l) => sha(l.blob)));
    const bundle = join(work, 'bundle-docker');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${ours}:t`, bundle], { stdio: 'ignore' });
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8')).toBe('hello\n');
    await validateLayout(`oci:${ours}:t`);
  }, 120_000);

  test('an uncompressed Docker layer stays uncompressed (OCI tar), its digest kept', async () => {
    const plain = makeImage([{ tar: LAYERS.L3(), c: 'none' }], 'docker');
    await pushTestImage(reg.url, 'test/plain', plain, 'v1');
    const dir = fresh('plain');
    const r = await copy(`docker://${reg.host}/test/plain:v1`, `oci:${dir}:v1`);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(skopeo('inspect', '--raw', `oci:${dir}:v1`).toString('utf8'));
    expect(m.layers).toEqual([{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(plain.layers[0]!.blob), size: plain.layers[0]!.blob.length }]);
    const bundle = join(work, 'bundle-plain');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${dir}:v1`, bundle], { stdio: 'ignore' });
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'plain.conf'), 'utf8')).toBe('uncompressed layer\n');
  }, 120_000);

  test('a second image is added to an existing layout under its own tag', async () => {
    const dir = fresh('two');
    expect((await copy(`docker://${reg.host}/test/oci:v1`, `oci:${dir}:a`)).status).toBe(0);
    expect((await copy(`docker://${reg.host}/test/docker:v1`, `oci:${dir}:b`)).status).toBe(0);
    const tags = layoutIndex(dir).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
    expect(tags).toEqual(['a', 'b']);
    expect(skopeo('inspect', '--config', '--raw', `oci:${dir}:a`).equals(ociImg.config)).toBe(true);
    expect(skopeo('inspect', '--config', '--raw', `oci:${dir}:b`).equals(dockerImg.config)).toBe(true);
  }, 120_000);

  test('into oci-archive: the same image as one tar that skopeo reads', async () => {
    const file = fresh('archive') + '.tar';
    const r = await copy(`docker://${reg.host}/test/oci:v1`, `oci-archive:${file}:v1`);
    expect(r.status, r.stderr).toBe(0);
    expect(skopeo('inspect', '--raw', `oci-archive:${file}:v1`).equals(manifestOf(ociImg).bytes)).toBe(true);
    expect(readdirSync(join(file, '..'))).toEqual(['out.tar']);
  }, 120_000);

  test('--all copies every platform and keeps the index bytes', async () => {
    const dir = fresh('all');
    const r = await copy('--all', `docker://${reg.host}/test/multi:idx`, `oci:${dir}:idx`);
    expect(r.status, r.stderr).toBe(0);
    const entry = layoutIndex(dir).manifests[0]!;
    expect(entry.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(entry.digest).toBe(indexDigest);
    const sourceIndex = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/multi:idx`);
    expect(skopeo('inspect', '--raw', `oci:${dir}:idx`).equals(sourceIndex)).toBe(true);
    for (const [img, arch] of [
      [amd, 'amd64'],
      [arm, 'arm64'],
    ] as const) {
      expect(blob(dir, manifestOf(img).digest).equals(manifestOf(img).bytes)).toBe(true);
      expect(blob(dir, sha(img.config)).equals(img.config)).toBe(true);
      for (const l of img.layers) expect(blob(dir, sha(l.blob)).equals(l.blob)).toBe(true);
      const cfg = execFileSync('skopeo', [
        '--override-os',
        'linux',
        '--override-arch',
        arch,
        ...(arch === 'arm64' ? ['--override-variant', 'v8'] : []),
        'inspect',
        '--config',
        '--raw',
        `oci:${dir}:idx`,
      ]);
      expect(cfg.equals(img.config)).toBe(true);
    }
  }, 120_000);

  test('--all from an OCI layout into another layout keeps the index; a Docker manifest list becomes an OCI index', async () => {
    const first = fresh('all-src');
    expect((await copy('--all', `docker://${reg.host}/test/multi:idx`, `oci:${first}:idx`)).status).toBe(0);
    const second = fresh('all-copy');
    const r = await copy('--all', `oci:${first}:idx`, `oci:${second}:again`);
    expect(r.status, r.stderr).toBe(0);
    expect(layoutIndex(second).manifests[0]!.digest).toBe(indexDigest);
    expect(skopeo('inspect', '--raw', `oci:${second}:again`).equals(skopeo('inspect', '--raw', `oci:${first}:idx`))).toBe(true);

    const d1 = makeImage([{ tar: LAYERS.L1(), c: 'gzip' }], 'docker');
    const d2 = makeImage([{ tar: LAYERS.L2(), c: 'gzip' }], 'docker', { arch: 'arm64', variant: 'v8' });
    await pushTestImage(reg.url, 'test/dlist', d1);
    await pushTestImage(reg.url, 'test/dlist', d2);
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          {
            mediaType: manifestOf(d1).mediaType,
            size: manifestOf(d1).bytes.length,
            digest: manifestOf(d1).digest,
            platform: { architecture: 'amd64', os: 'linux' },
          },
          {
            mediaType: manifestOf(d2).mediaType,
            size: manifestOf(d2).bytes.length,
            digest: manifestOf(d2).digest,
            platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
          },
        ],
      }),
    );
    await pushManifest(reg.url, 'test/dlist', 'l1', list, 'application/vnd.docker.distribution.manifest.list.v2+json');
    const third = fresh('all-dlist');
    const d = await copy('--all', `docker://${reg.host}/test/dlist:l1`, `oci:${third}:l1`);
    expect(d.status, d.stderr).toBe(0);
    const index = JSON.parse(skopeo('inspect', '--raw', `oci:${third}:l1`).toString('utf8'));
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m: { platform: unknown }) => m.platform)).toEqual([
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ]);
    for (const [img, m] of [
      [d1, index.manifests[0]],
      [d2, index.manifests[1]],
    ] as const) {
      expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      const manifest = JSON.parse(blob(third, m.digest).toString('utf8'));
      expect(blob(third, manifest.config.digest).equals(img.config)).toBe(true);
    }
    const arm = execFileSync('skopeo', [
      '--override-os',
      'linux',
      '--override-arch',
      'arm64',
      '--override-variant',
      'v8',
      'inspect',
      '--config',
      '--raw',
      `oci:${third}:l1`,
    ]);
    expect(arm.equals(d2.config)).toBe(true);
  }, 120_000);

  test('without --all, one platform of an index: the one pull would pick', async () => {
    const dir = fresh('one');
    const r = await copy('--os', 'linux', '--arch', 'arm64', '--variant', 'v8', `docker://${reg.host}/test/multi:idx`, `oci:${dir}:arm`);
    expect(r.status, r.stderr).toBe(0);
    expect(layoutIndex(dir).manifests[0]!.digest).toBe(manifestOf(arm).digest);
    expect(existsSync(join(dir, 'blobs', 'sha256', manifestOf(amd).digest.slice(7)))).toBe(false);
  }, 120_000);
});

describe('nixreg copy into docker-archive:', () => {
  test('is byte-identical to nixreg pull of the same image', async () => {
    for (const [repo, name] of [
      ['test/docker:v1', 'docker'],
      ['test/multi:idx', 'multi'],
    ] as const) {
      const pulled = fresh(`pull-${name}`);
      const copied = fresh(`copy-${name}`);
      const p = await runCli(['pull', '-q', ...PLATFORM, `${reg.host}/${repo}`, '-o', pulled], { cacheHome: join(work, 'cache') });
      expect(p.status, p.stderr).toBe(0);
      const r = await copy(...PLATFORM, `docker://${reg.host}/${repo}`, `docker-archive:${copied}`);
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(copied).equals(readFileSync(pulled))).toBe(true);
      // with a name given, the same as pull's --final-image-name/--final-image-tag
      const pulledNamed = fresh(`pulln-${name}`);
      const copiedNamed = fresh(`copyn-${name}`);
      expect(
        (await runCli(['pull', '-q', ...PLATFORM, `${reg.host}/${repo}`, '--final-image-name', 'my/app', '--final-image-tag', 'v2', '-o', pulledNamed])).status,
      ).toBe(0);
      expect((await copy(...PLATFORM, `docker://${reg.host}/${repo}`, `docker-archive:${copiedNamed}:my/app:v2`)).status).toBe(0);
      expect(readFileSync(copiedNamed).equals(readFileSync(pulledNamed))).toBe(true);
    }
  }, 120_000);

  test('--all is refused: a docker-archive holds one image', async () => {
    const out = fresh('refuse');
    const r = await copy('--all', `docker://${reg.host}/test/multi:idx`, `docker-archive:${out}`);
    expect(r.status).toBe(ExitCode.usage);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/one image/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});

describe('round trips', () => {
  test('docker-archive: → oci: → docker:// keeps config and layers; every step validates', async () => {
    const archive = fresh('rt') + '.tar';
    skopeo('copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/test/oci:v1`, `docker-archive:${archive}:rt/app:v1`);
    const dir = fresh('rt-oci');
    const a = await copy(`docker-archive:${archive}`, `oci:${dir}:v1`);
    expect(a.status, a.stderr).toBe(0);
    const m = JSON.parse(skopeo('inspect', '--raw', `oci:${dir}:v1`).toString('utf8'));
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(3).fill('application/vnd.oci.image.layer.v1.tar+gzip'));
    expect(skopeo('inspect', '--config', '--raw', `oci:${dir}:v1`).equals(ociImg.config)).toBe(true);
    await validateLayout(`oci:${dir}:v1`);

    const b = await copy(`oci:${dir}:v1`, `docker://${reg.host}/test/roundtrip:v1`);
    expect(b.status, b.stderr).toBe(0);
    const pushed = await openSource(`docker://${reg.host}/test/roundtrip:v1`, { platform: amd64 });
    try {
      await validateImage(pushed);
      expect(pushed.configBytes.equals(ociImg.config)).toBe(true);
      // pushed as stored: the layout's manifest digest is the registry's
      expect(pushed.manifestDigest).toBe(layoutIndex(dir).manifests[0]!.digest);
    } finally {
      await pushed.close();
    }
  }, 120_000);

  test('conf: → oci: and → docker:// give the config and layers nixreg stream writes for the conf', async () => {
    const root = await buildStoreTree();
    try {
      const confFile = join(FIXTURES, 'cases', 'a-defaults', 'conf.json');
      const streamed = fresh('conf-stream') + '.tar';
      await streamImageToFile(await loadStreamConf(confFile), streamed, { storeRoot: root });
      const dir = fresh('conf-oci');
      const r = await runCli(['copy', '-q', '--no-cache', '--store-root', root, `conf:${confFile}`, `oci:${dir}:c`]);
      expect(r.status, r.stderr).toBe(0);
      const fromArchive = await openSource(`docker-archive:${streamed}`, { platform: amd64 });
      const fromLayout = await openSource(`oci:${dir}:c`, { platform: amd64 });
      try {
        expect(fromLayout.configBytes.equals(fromArchive.configBytes)).toBe(true);
        expect(fromLayout.diffIDs).toEqual(fromArchive.diffIDs);
        await validateImage(fromLayout);
        const p = await runCli(['copy', '-q', '--no-cache', '--store-root', root, `conf:${confFile}`, `docker://${reg.host}/test/fromconf:c`]);
        expect(p.status, p.stderr).toBe(0);
        const pushed = await openSource(`docker://${reg.host}/test/fromconf:c`, { platform: amd64 });
        try {
          expect(pushed.configBytes.equals(fromArchive.configBytes)).toBe(true);
          await validateImage(pushed);
        } finally {
          await pushed.close();
        }
      } finally {
        await fromArchive.close();
        await fromLayout.close();
      }
    } finally {
      await removeStoreTree(root);
    }
  }, 120_000);

  test('--all docker:// → docker:// copies the index and every platform with their digests', async () => {
    const r = await copy('--all', `docker://${reg.host}/test/multi:idx`, `docker://${reg.host}/test/multicopy:idx`);
    expect(r.status, r.stderr).toBe(0);
    const raw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/multicopy:idx`);
    expect(raw.equals(skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/multi:idx`))).toBe(true);
    const armRaw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/multicopy@${manifestOf(arm).digest}`);
    expect(armRaw.equals(manifestOf(arm).bytes)).toBe(true);
  }, 120_000);

  test("docker:// → docker:// of one platform tags that platform's manifest", async () => {
    const r = await copy('--os', 'linux', '--arch', 'arm64', '--variant', 'v8', `docker://${reg.host}/test/multi:idx`, `docker://${reg.host}/test/armonly:v1`);
    expect(r.status, r.stderr).toBe(0);
    const raw = skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/armonly:v1`);
    expect(raw.equals(manifestOf(arm).bytes)).toBe(true);
  }, 120_000);
});

describe('a corrupt blob in the registry', () => {
  let corrupt: TestImage;
  beforeAll(async () => {
    corrupt = makeImage(
      [
        { tar: layerTar({ 'fine.bin': prng('corrupt-fine', 100_000) }), c: 'gzip' },
        { tar: layerTar({ 'big.bin': prng('corrupt', 400_000) }), c: 'gzip' },
      ],
      'oci',
    );
    await pushTestImage(reg.url, 'test/corrupt', corrupt, 'v1');
    // bit rot in the registry's storage: same size, one byte changed
    const hex = sha(corrupt.layers[1]!.blob).slice('sha256:'.length);
    const file = join(reg.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(file, bytes);
  }, 60_000);

  test('fails with one integrity line and leaves no new directory, file or temp', async () => {
    for (const dest of ['oci', 'oci-archive']) {
      const out = fresh(`corrupt-${dest}`);
      const r = await copy(`docker://${reg.host}/test/corrupt:v1`, `${dest}:${out}:v1`);
      expect(r.status).toBe(ExitCode.integrity);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(errorLines(r.stderr)[0]).toMatch(/sha256:/);
      expect(readdirSync(join(out, '..'))).toEqual([]);
    }
  }, 120_000);

  test('an existing layout keeps its index.json and gains no blob', async () => {
    const dir = fresh('corrupt-existing');
    expect((await copy(`docker://${reg.host}/test/docker:v1`, `oci:${dir}:good`)).status).toBe(0);
    const before = { index: readFileSync(join(dir, 'index.json')), blobs: readdirSync(join(dir, 'blobs', 'sha256')).sort(), top: readdirSync(dir).sort() };
    const r = await copy(`docker://${reg.host}/test/corrupt:v1`, `oci:${dir}:bad`);
    expect(r.status).toBe(ExitCode.integrity);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(readFileSync(join(dir, 'index.json')).equals(before.index)).toBe(true);
    expect(readdirSync(join(dir, 'blobs', 'sha256')).sort()).toEqual(before.blobs);
    expect(readdirSync(dir).sort()).toEqual(before.top);
  }, 120_000);
});

describe('bad inputs: one line, the exit code of src/errors.ts, no output', () => {
  test.each([
    [
      'an unknown destination transport',
      () => [`docker://${reg.host}/test/oci:v1`, `dir:${join(work, 'dir-out')}`],
      ExitCode.usage,
      /unknown destination transport "dir:"/,
    ],
    [
      'an unknown source transport',
      () => [`containers-storage:x`, `oci:${join(work, 'never')}`],
      ExitCode.usage,
      /unknown source transport "containers-storage:"/,
    ],
    ['a missing source file', () => [`docker-archive:${join(work, 'missing.tar')}`, `oci:${join(work, 'never')}`], ExitCode.usage, /missing\.tar/],
    ['a missing tag', () => [`docker://${reg.host}/test/oci:nope`, `oci:${join(work, 'never')}`], ExitCode.notFound, /nope/],
  ])(
    '%s',
    async (_what, args, code, message) => {
      const r = await copy(...args());
      expect(r.status).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(errorLines(r.stderr)[0]).toMatch(message);
      expect(existsSync(join(work, 'never'))).toBe(false);
      expect(existsSync(join(work, 'dir-out'))).toBe(false);
    },
    60_000,
  );

  test('a directory that cannot be created (under /proc) is one line, not a hang', async () => {
    // Node's mkdir({ recursive: true }) loops forever on /proc's ENOENT; the layout's directories are made one by one
    const r = await copy(`docker://${reg.host}/test/oci:v1`, 'oci:/proc/nixreg-copy-test/layout:v1');
    expect(r.status).toBe(ExitCode.failure);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/cannot write output \/proc\/nixreg-copy-test\/layout/);
  }, 60_000);

  test('an existing file is not replaced without --force', async () => {
    const file = fresh('exists');
    writeFileSync(file, 'keep');
    const r = await copy(`docker://${reg.host}/test/oci:v1`, `oci-archive:${file}`);
    expect(r.status).toBe(ExitCode.usage);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe('keep');
  }, 60_000);
});

async function validateLayout(spec: string): Promise<void> {
  const s = await openSource(spec, { platform: amd64 });
  try {
    await validateImage(s);
  } finally {
    await s.close();
  }
}
