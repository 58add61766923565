import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, pushTestImage, pushTestIndex } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

/**
 * `nixreg inspect` against Debian's `skopeo inspect` on the same images: a registry image and an index, the
 * docker-archive and OCI layout skopeo makes of them, and a streamLayeredImage conf (vs skopeo on its stream
 * output). --raw and --config must be byte-identical; digests and layer lists equal. Needs a built dist/.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/nixreg.js');
let reg: Distribution;
let work: string;
let indexDigest: string;

function nixreg(...args: string[]) {
  const r = runCliSync(['inspect', ...args]);
  return { status: r.status, stdout: r.stdoutBytes, stderr: r.stderr };
}
function ok(...args: string[]): Buffer {
  const r = nixreg(...args);
  if (r.status !== 0) throw new Error(`nixreg inspect ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
function skopeo(...args: string[]): Buffer {
  return execFileSync('skopeo', ['--insecure-policy', ...args], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}
const json = (b: Buffer) => JSON.parse(b.toString('utf8'));

beforeAll(async () => {
  requireTool('skopeo');
  expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
  work = mkdtempSync(join(tmpdir(), 'nixreg-inspect-'));
  reg = await startDistribution();
  const extra = { Entrypoint: ['/bin/hi'], Cmd: ['--help'], Labels: { 'org.example.a': '1', b: 'two words' } };
  const amd = simpleImage([LAYERS.L1(), LAYERS.L2()], extra);
  const arm = simpleImage([LAYERS.L3()], extra, 'arm64');
  await pushTestImage(reg.url, 'ins/img', amd, 'v1');
  await pushTestImage(reg.url, 'ins/img', arm);
  indexDigest = await pushTestIndex(
    reg.url,
    'ins/img',
    [
      { img: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { img: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ],
    'multi',
  );
  skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/ins/img:v1`, `docker-archive:${work}/img.tar:ins/img:v1`);
  skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/ins/img:v1`, `oci:${work}/layout:v1`);
  skopeo('copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/ins/img:multi`, `oci:${work}/multi:m`);
  await pushTestIndex(reg.url, 'ins/img', [{ img: arm, platform: { os: 'linux', architecture: 'arm64' } }], 'armonly');
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nixreg inspect vs skopeo inspect', () => {
  test('registry image: --raw, --config byte-identical; --json digests, layers, config summary equal', () => {
    const ref = `docker://${reg.host}/ins/img:v1`;
    expect(ok(ref, '--tls-verify=false', '--raw').equals(skopeo('inspect', '--tls-verify=false', '--raw', ref))).toBe(true);
    expect(ok(ref, '--tls-verify=false', '--config').equals(skopeo('inspect', '--tls-verify=false', '--config', '--raw', ref))).toBe(true);
    const mine = json(ok(ref, '--tls-verify=false', '--json'));
    const theirs = json(skopeo('inspect', '--tls-verify=false', ref));
    for (const k of ['Name', 'Digest', 'RepoTags', 'Created', 'Architecture', 'Os', 'Layers', 'Env', 'Labels', 'DockerVersion'] as const)
      expect(mine[k], k).toEqual(theirs[k]);
    expect([...mine.RepoTags].sort()).toEqual(['armonly', 'multi', 'v1']); // every tag of the repository, like skopeo
    expect(mine.Entrypoint).toEqual(['/bin/hi']);
    expect(mine.Cmd).toEqual(['--help']);
    expect(mine.Index).toBe(null);
    const text = ok(ref, '--tls-verify=false').toString();
    expect(text).toContain(`Digest:       ${theirs.Digest}`);
    for (const l of theirs.Layers) expect(text).toContain(l);
    expect(text).toContain('org.example.a=1');
  });

  test('--no-tags: RepoTags empty, without the tag-list request', () => {
    const from = readFileSync(reg.logFile, 'utf8').length;
    const r = nixreg(`docker://${reg.host}/ins/img:v1`, '--tls-verify=false', '--json', '--no-tags');
    expect(r.status, r.stderr).toBe(0);
    expect(json(r.stdout).RepoTags).toEqual([]);
    expect(readFileSync(reg.logFile, 'utf8').slice(from)).not.toMatch(/tags\/list/);
  });

  test('index: --raw prints the index bytes; --json names the index, its platforms and the chosen one', () => {
    const ref = `docker://${reg.host}/ins/img:multi`;
    expect(ok(ref, '--tls-verify=false', '--raw').equals(skopeo('inspect', '--tls-verify=false', '--raw', ref))).toBe(true);
    for (const arch of ['amd64', 'arm64']) {
      const mine = json(ok(ref, '--tls-verify=false', '--json', '--arch', arch));
      const theirs = json(skopeo('--override-arch', arch, '--override-os', 'linux', 'inspect', '--tls-verify=false', ref));
      // like skopeo, Digest is what the reference names (the index); ManifestDigest is the platform's image
      expect(mine.Digest).toBe(theirs.Digest);
      expect(mine.Digest).toBe(indexDigest);
      expect(mine.ManifestDigest).toBe(
        json(ok(ref, '--tls-verify=false', '--raw')).manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === arch).digest,
      );
      expect(mine.Layers).toEqual(theirs.Layers);
      expect(mine.Architecture).toBe(arch);
      expect(mine.Index.Digest).toBe(indexDigest);
      expect(mine.Index.Platforms.map((p: { Platform: string }) => p.Platform)).toEqual(['linux/amd64', 'linux/arm64']);
      expect(
        ok(ref, '--tls-verify=false', '--config', '--arch', arch).equals(
          skopeo('--override-arch', arch, '--override-os', 'linux', 'inspect', '--tls-verify=false', '--config', '--raw', ref),
        ),
      ).toBe(true);
    }
  });

  test('--raw names no platform: an index without this platform still prints, from a registry and a layout', () => {
    const ref = `docker://${reg.host}/ins/img:armonly`;
    expect(ok(ref, '--tls-verify=false', '--raw', '--arch', 'amd64').equals(skopeo('inspect', '--tls-verify=false', '--raw', ref))).toBe(true);
    const r = nixreg(ref, '--tls-verify=false', '--json', '--arch', 'amd64');
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/no image for platform linux\/amd64 in the index; available: linux\/arm64/);
    const layout = `oci:${work}/multi:m`;
    const raw = ok(layout, '--raw', '--arch', 's390x');
    expect(raw.equals(skopeo('inspect', '--raw', layout))).toBe(true);
    expect(JSON.parse(raw.toString()).manifests).toHaveLength(2);
    const mine = json(ok(layout, '--json', '--arch', 'arm64'));
    expect(mine.Index.Digest).toBe('sha256:' + createHash('sha256').update(raw).digest('hex'));
    expect(mine.Architecture).toBe('arm64');
  });

  test('docker-archive and OCI layout made by skopeo', () => {
    for (const spec of [`docker-archive:${work}/img.tar`, `oci:${work}/layout:v1`]) {
      expect(ok(spec, '--raw').equals(skopeo('inspect', '--raw', spec)), spec).toBe(true);
      expect(ok(spec, '--config').equals(skopeo('inspect', '--config', '--raw', spec)), spec).toBe(true);
      const mine = json(ok(spec, '--json'));
      const theirs = json(skopeo('inspect', spec));
      for (const k of ['Digest', 'Layers', 'Env', 'Labels', 'Architecture', 'Os', 'Created'] as const) expect(mine[k], `${spec} ${k}`).toEqual(theirs[k]);
    }
    expect(json(ok(`${work}/img.tar`, '--json')).RepoTags).toEqual(['docker.io/ins/img:v1']);
  });

  test('conf: the same digest and config skopeo reads from the stream output', async () => {
    const root = await buildStoreTree();
    try {
      const conf = join(FIXTURES, 'cases', 'e-config', 'conf.json');
      const out = join(work, 'stream.tar');
      const s = spawnSync(process.execPath, [BIN, 'stream', conf, '--store-root', root, '-o', out], { encoding: 'utf8' });
      expect(s.status, s.stderr).toBe(0);
      const mine = json(ok(`conf:${conf}`, '--store-root', root, '--json'));
      const theirs = json(skopeo('inspect', `docker-archive:${out}`));
      for (const k of ['Digest', 'Layers', 'Env', 'Labels', 'Architecture', 'Os', 'Created'] as const) expect(mine[k], k).toEqual(theirs[k]);
      expect(ok(conf, '--store-root', root, '--config').equals(skopeo('inspect', '--config', '--raw', `docker-archive:${out}`))).toBe(true);
    } finally {
      await removeStoreTree(root);
    }
  });

  test('errors: one line, non-zero exit', () => {
    const cases: Array<[string[], number, RegExp]> = [
      [[join(work, 'nope.tar')], 2, /nope\.tar does not exist/],
      [[`docker://${reg.host}/ins/img:absent`, '--tls-verify=false', '--retry-times', '0'], 4, /absent/],
      [[`docker://${reg.host}/ins/img:multi`, '--tls-verify=false', '--arch', 's390x'], 4, /no image for platform linux\/s390x/],
      [[`oci:${work}/layout:v2`], 4, /no image named v2/],
      [[`${work}/img.tar`, '--raw', '--json'], 2, /at most one of/],
    ];
    for (const [args, code, re] of cases) {
      const r = nixreg(...args);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout.length).toBe(0);
    }
  });
});
