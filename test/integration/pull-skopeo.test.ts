import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, pushTestImage, pushTestIndex, type TestImage } from '../helpers/images.js';
import { nixHashFlatBase32, requireTool } from '../helpers/tools.js';
import { toSRI, fromNix32 } from '../../src/digest/nixhash.js';

/**
 * `nixreg pull` against real skopeo 1.9.3 running exactly dockerTools.pullImage's command line, both reading the
 * same real distribution registry: the archives must be byte-identical. Assumes dist/ is built (npm test does it).
 */
const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/nixreg.js');
let reg: Distribution;
let work: string;
const digests: Record<string, string> = {};
let basic: TestImage;

function skopeoPull(name: string, digest: string, out: string, arch: string, finalName: string, finalTag: string, variant?: string): Buffer {
  const tmp = mkdtempSync(join(work, 'skopeo-tmp-'));
  execFileSync(
    'skopeo',
    [
      '--insecure-policy',
      `--tmpdir=${tmp}`,
      '--override-os',
      'linux',
      '--override-arch',
      arch,
      ...(variant ? ['--override-variant', variant] : []),
      'copy',
      '--src-tls-verify=false',
      `docker://${reg.host}/${name}@${digest}`,
      `docker-archive://${out}:${finalName}:${finalTag}`,
    ],
    { env: { ...process.env, REGISTRY_AUTH_FILE: join(tmp, 'auth.json') }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return readFileSync(out);
}

function nixreg(args: string[]) {
  return spawnSync('node', [BIN, ...args], { encoding: 'buffer', env: { ...process.env, NIXREG_DEBUG: '' } });
}

function nixregPull(name: string, digest: string, out: string, extra: string[] = []): Buffer {
  const r = nixreg(['pull', `${reg.host}/${name}`, '--digest', digest, '-o', out, '--tls-verify=false', '--quiet', ...extra]);
  if (r.status !== 0) throw new Error(`nixreg pull failed (${r.status}): ${r.stderr.toString()}`);
  return readFileSync(out);
}

beforeAll(async () => {
  requireTool('skopeo');
  requireTool('zstd');
  expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
  work = mkdtempSync(join(tmpdir(), 'nixreg-pull-skopeo-'));
  reg = await startDistribution();
  const L = { L1: LAYERS.L1(), L2: LAYERS.L2(), L3: LAYERS.L3(), L4: LAYERS.L4() };
  // several gzip layers, layer 1 repeated, pretty config with <>&, non-ASCII, kept escapes, U+2028 (Docker schema2)
  basic = makeImage(
    [L.L1, L.L2, L.L1].map((tar) => ({ tar, c: 'gzip' as const })),
    'docker',
  );
  digests.basic = await pushTestImage(reg.url, 'test/img', basic);
  // the same image with layers recompressed at gzip -1
  digests.gzip1 = await pushTestImage(
    reg.url,
    'test/img',
    makeImage(
      [L.L1, L.L2, L.L1].map((tar) => ({ tar, c: 'gzip-1' as const })),
      'docker',
    ),
  );
  // OCI manifest: gzip, uncompressed and zstd layers (zstd once under the gzip media type, which skopeo 1.9.3
  // accepts, and once as tar+zstd, which its docker-archive writer refuses but nixreg reads)
  digests.mixed = await pushTestImage(
    reg.url,
    'test/mixed',
    makeImage(
      [
        { tar: L.L1, c: 'gzip' },
        { tar: L.L3, c: 'none' },
        { tar: L.L4, c: 'zstd-as-gzip' },
      ],
      'oci',
    ),
  );
  digests.zstd = await pushTestImage(
    reg.url,
    'test/mixed',
    makeImage(
      [
        { tar: L.L1, c: 'gzip' },
        { tar: L.L3, c: 'none' },
        { tar: L.L4, c: 'zstd' },
      ],
      'oci',
    ),
  );
  // OCI index: amd64 (the Docker schema2 image above) and arm64/v8 (an OCI manifest)
  const arm = makeImage(
    [
      { tar: L.L2, c: 'gzip' },
      { tar: L.L4, c: 'gzip' },
    ],
    'oci',
    { arch: 'arm64', variant: 'v8' },
  );
  await pushTestImage(reg.url, 'test/img', basic);
  digests.arm = await pushTestImage(reg.url, 'test/img', arm);
  digests.index = await pushTestIndex(reg.url, 'test/img', [
    { img: basic, platform: { os: 'linux', architecture: 'amd64' } },
    { img: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nixreg pull == skopeo (pullImage command line)', () => {
  test('Docker schema2, gzip layers with a repeat, awkward config; and the same image at gzip -1', () => {
    const sk = skopeoPull('test/img', digests.basic!, join(work, 'sk-basic.tar'), 'amd64', 'test/img', '1.0');
    const mine = nixregPull('test/img', digests.basic!, join(work, 'nr-basic.tar'), [
      '--arch',
      'amd64',
      '--final-image-name',
      'test/img',
      '--final-image-tag',
      '1.0',
    ]);
    expect(mine.equals(sk)).toBe(true);
    execFileSync('cmp', [join(work, 'sk-basic.tar'), join(work, 'nr-basic.tar')]);
    const sk1 = skopeoPull('test/img', digests.gzip1!, join(work, 'sk-gzip1.tar'), 'amd64', 'test/img', '1.0');
    const mine1 = nixregPull('test/img', digests.gzip1!, join(work, 'nr-gzip1.tar'), [
      '--arch',
      'amd64',
      '--final-image-name',
      'test/img',
      '--final-image-tag',
      '1.0',
      '--jobs',
      '1',
    ]);
    expect(sk1.equals(sk)).toBe(true); // compression level does not matter ...
    expect(mine1.equals(sk)).toBe(true); // ... to either tool
  });

  test('OCI manifest with gzip, uncompressed and zstd layers; default final name/tag', () => {
    const name = `${reg.host}/test/mixed`;
    const sk = skopeoPull('test/mixed', digests.mixed!, join(work, 'sk-mixed.tar'), 'amd64', name, 'latest');
    const mine = nixregPull('test/mixed', digests.mixed!, join(work, 'nr-mixed.tar'), ['--arch', 'amd64']);
    expect(mine.equals(sk)).toBe(true);
    expect(sk.toString('latin1')).toContain(`"RepoTags":["${name}:latest"]`);
    const zstd = nixregPull('test/mixed', digests.zstd!, join(work, 'nr-zstd.tar'), ['--arch', 'amd64']);
    expect(zstd.equals(sk)).toBe(true);
  });

  test('OCI index: amd64 by index digest; arm64/v8 by index digest + --arch arm64 and by its own digest', () => {
    const skAmd = skopeoPull('test/img', digests.index!, join(work, 'sk-idx-amd.tar'), 'amd64', 'test/img', '1.0');
    const nrAmd = nixregPull('test/img', digests.index!, join(work, 'nr-idx-amd.tar'), [
      '--arch',
      'amd64',
      '--final-image-name',
      'test/img',
      '--final-image-tag',
      '1.0',
    ]);
    expect(nrAmd.equals(skAmd)).toBe(true);
    expect(nrAmd.equals(readFileSync(join(work, 'sk-basic.tar')))).toBe(true);

    const skArm = skopeoPull('test/img', digests.index!, join(work, 'sk-idx-arm.tar'), 'arm64', 'nixos/nix', '2.19.3');
    const skArmDirect = skopeoPull('test/img', digests.arm!, join(work, 'sk-arm.tar'), 'arm64', 'nixos/nix', '2.19.3');
    const nrArm = nixregPull('test/img', digests.index!, join(work, 'nr-idx-arm.tar'), [
      '--arch',
      'arm64',
      '--final-image-name',
      'nixos/nix',
      '--final-image-tag',
      '2.19.3',
    ]);
    const nrArmV8 = nixregPull('test/img', digests.index!, join(work, 'nr-idx-armv8.tar'), [
      '--arch',
      'arm64',
      '--variant',
      'v8',
      '--final-image-name',
      'nixos/nix',
      '--final-image-tag',
      '2.19.3',
    ]);
    const nrArmDirect = nixregPull('test/img', digests.arm!, join(work, 'nr-arm.tar'), [
      '--arch',
      'amd64',
      '--final-image-name',
      'nixos/nix',
      '--final-image-tag',
      '2.19.3',
    ]);
    expect(skArmDirect.equals(skArm)).toBe(true);
    expect(nrArm.equals(skArm)).toBe(true);
    expect(nrArmV8.equals(skArm)).toBe(true);
    expect(nrArmDirect.equals(skArm)).toBe(true);
    expect(skArm.toString('latin1')).toContain('"RepoTags":["docker.io/nixos/nix:2.19.3"]');
  });

  test("--sha256 / --hash: the nix-hash of skopeo's file is accepted; a wrong one exits 5 and leaves no file", () => {
    const skFile = join(work, 'sk-basic.tar');
    const nix32 = nixHashFlatBase32(skFile);
    const sri = toSRI(fromNix32(nix32));
    const ok = join(work, 'hash-ok.tar');
    const args = [
      'pull',
      `${reg.host}/test/img`,
      '--digest',
      digests.basic!,
      '--tls-verify=false',
      '--arch',
      'amd64',
      '--final-image-name',
      'test/img',
      '--final-image-tag',
      '1.0',
      '--quiet',
    ];
    let r = nixreg([...args, '-o', ok, '--sha256', nix32]);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(readFileSync(ok).equals(readFileSync(skFile))).toBe(true);
    r = nixreg([...args, '-o', join(work, 'hash-ok2.tar'), '--hash', sri]);
    expect(r.status, r.stderr.toString()).toBe(0);

    const dir = mkdtempSync(join(work, 'bad-'));
    const wrong = toSRI(Buffer.alloc(32, 7));
    r = nixreg([...args, '-o', join(dir, 'out.tar'), '--hash', wrong]);
    expect(r.status).toBe(5);
    const err = r.stderr.toString();
    expect(err).toBe(`nixreg: hash mismatch for ${reg.host}/test/img: specified: ${wrong} got: ${sri}\n`);
    expect(readdirSync(dir)).toEqual([]);
  });
});
