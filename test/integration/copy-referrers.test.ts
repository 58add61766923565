import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';
import { requireTool } from '../helpers/tools.js';
import { basicAuth, layerTar, pushAmdArmIndex, pushTestImage } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { RegistryClient } from '../../src/registry/client.js';
import { attachArtifact } from '../../src/sink/registry/referrers.js';

// `nixreg copy --referrers`: the SBOM, the provenance statement and the cosign signature of an image follow it
// from Debian's distribution 2.8 (no referrers API: the sha256-<hex> index) to the mock registry (referrers API),
// to another repository of distribution, and back from the mock to distribution.
const closure = `app = mk "copyref-app-1.0" "mkdir -p $out/bin && echo hi > $out/bin/hello";`;

let tmp: string;
let app: string;
let dist: Distribution;
let mock: Registry;
let digest: string;
const nixreg = (...args: string[]) => runCli(args, { cacheHome: join(tmp, 'cache') });
const key = (n: string) => join(tmp, n);

interface Listed {
  via: string;
  subject: string;
  referrers: Array<{ digest: string; artifactType: string }>;
}
async function referrers(ref: string): Promise<Listed> {
  const l = await nixreg('referrers', ref, '--tls-verify=false', '--json');
  expect(errorLines(l.stderr)).toEqual([]);
  expect(l.status).toBe(0);
  return JSON.parse(l.stdout) as Listed;
}
const img = (name: string, arch: string) => simpleImage([layerTar({ [`etc/${name}`]: name })], { Cmd: [`/bin/${name}`] }, arch);

/** An artifact of type `type` attached to `digest` in `repo` of distribution (its sha256-<hex> index). */
async function attach(repo: string, digest: string, type: string): Promise<string> {
  const c = new RegistryClient({ registry: dist.host, repository: repo, tlsVerify: false, pushScope: true });
  try {
    const head = (await c.headManifest(digest))!;
    return (
      await attachArtifact(c, { mediaType: head.mediaType, digest, size: head.size }, type, [{ mediaType: type, bytes: Buffer.from(`{"of":"${digest}"}`) }])
    ).descriptor.digest;
  } finally {
    await c.close();
  }
}

const artifacts = (l: Listed) => l.referrers.map((r) => ({ digest: r.digest, artifactType: r.artifactType }));

beforeAll(async () => {
  for (const t of ['nix-build', 'openssl']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-copy-referrers-'));
  app = buildTestClosure(tmp, closure);
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key('k.pem')], { stdio: 'ignore' });
  execFileSync('openssl', ['pkey', '-in', key('k.pem'), '-pubout', '-out', key('k.pub')], { stdio: 'ignore' });
  dist = await startDistribution();
  mock = await startRegistry();
  const p = await nixreg('push', '--path', app, `docker://${dist.host}/app:1`, '--tls-verify=false', '--json', '--sbom', 'spdx', '--provenance');
  expect(errorLines(p.stderr)).toEqual([]);
  digest = (JSON.parse(p.stdout) as { digest: string }).digest;
  const s = await nixreg('sign', `${dist.host}/app:1`, '--key', key('k.pem'), '--tls-verify=false');
  expect(errorLines(s.stderr)).toEqual([]);
}, 120_000);
afterAll(async () => {
  await dist?.stop();
  await mock?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('copy --referrers', () => {
  it.each([
    ['distribution → mock (referrers API)', () => `${dist.host}/app:1`, () => `${mock.host}/app:1`, 'referrers-api'],
    ['distribution → another repository of distribution (tag schema)', () => `${dist.host}/app:1`, () => `${dist.host}/copied:1`, 'tag-schema'],
    ['mock → distribution (tag schema)', () => `${mock.host}/app:1`, () => `${dist.host}/back:1`, 'tag-schema'],
  ])(
    '%s: the destination lists the same artifacts and the signature verifies',
    async (_label, from, to, via) => {
      const source = await referrers(from());
      expect(source.referrers.map((r) => r.artifactType).sort()).toEqual([
        'application/spdx+json',
        'application/vnd.dev.cosign.simplesigning.v1+json',
        'application/vnd.in-toto+json',
      ]);

      const c = await nixreg('copy', '--referrers', `docker://${from()}`, `docker://${to()}`, '--src-tls-verify=false', '--dest-tls-verify=false');
      expect(errorLines(c.stderr)).toEqual([]);
      expect(c.status).toBe(0);
      for (const r of source.referrers) expect(c.stderr).toContain(`${r.digest} referring to ${digest}`);

      const copied = await referrers(to());
      expect(copied.via).toBe(via);
      expect(copied.subject).toBe(`${to().replace(/:1$/, '')}@${digest}`);
      expect(artifacts(copied)).toEqual(artifacts(source));

      const v = await nixreg('verify', to(), '--key', key('k.pub'), '--tls-verify=false');
      expect(errorLines(v.stderr)).toEqual([]);
      expect(v.status).toBe(0);
    },
    120_000,
  );

  it('copied again, the destination lists each artifact once', async () => {
    const c = await nixreg(
      'copy',
      '--referrers',
      `docker://${dist.host}/app:1`,
      `docker://${dist.host}/copied:1`,
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--quiet',
    );
    expect(errorLines(c.stderr)).toEqual([]);
    expect((await referrers(`${dist.host}/copied:1`)).referrers).toHaveLength(3);
  }, 120_000);

  it('without --referrers nothing attached follows; --referrers out of a registry copy is refused in one line', async () => {
    const c = await nixreg(
      'copy',
      `docker://${dist.host}/app:1`,
      `docker://${dist.host}/bare:1`,
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--quiet',
    );
    expect(c.status).toBe(0);
    expect((await referrers(`${dist.host}/bare:1`)).referrers).toEqual([]);
    const r = await nixreg('copy', '--referrers', `docker://${dist.host}/app:1`, `oci:${join(tmp, 'layout')}`, '--src-tls-verify=false');
    expect(r.status).toBe(2);
    expect(errorLines(r.stderr)).toEqual([
      'nixreg: --referrers copies from a registry into a registry (docker://SRC docker://DST): only there are artifacts attached to a manifest',
    ]);
  }, 120_000);

  it('--all: the referrers of the index and of each platform manifest come along', async () => {
    const ix = await pushAmdArmIndex(dist.url, 'multi', img('amd', 'amd64'), img('arm', 'arm64'), { index: 'v1' });
    const onIndex = await attach('multi', ix.index, 'application/vnd.example.index-note');
    const onArm = await attach('multi', ix.arm, 'application/spdx+json');
    const c = await nixreg(
      'copy',
      '--all',
      '--referrers',
      `docker://${dist.host}/multi:v1`,
      `docker://${mock.host}/multi:v1`,
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
    );
    expect(errorLines(c.stderr)).toEqual([]);
    expect(c.status).toBe(0);
    expect(artifacts(await referrers(`${mock.host}/multi@${ix.index}`))).toEqual([{ digest: onIndex, artifactType: 'application/vnd.example.index-note' }]);
    expect(artifacts(await referrers(`${mock.host}/multi@${ix.arm}`))).toEqual([{ digest: onArm, artifactType: 'application/spdx+json' }]);
    expect((await referrers(`${mock.host}/multi@${ix.amd}`)).referrers).toEqual([]);
  }, 120_000);

  it('a referrer the source lists but no longer has fails the copy in one line that says the image is there', async () => {
    const ix = await pushAmdArmIndex(dist.url, 'gone', img('gamd', 'amd64'), img('garm', 'arm64'), { amd: 'v1', index: 'ix' });
    const lost = await attach('gone', ix.amd, 'application/spdx+json');
    const del = await fetch(`${dist.url}/v2/gone/manifests/${lost}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const c = await nixreg(
      'copy',
      '--referrers',
      `docker://${dist.host}/gone:v1`,
      `docker://${mock.host}/gone:v1`,
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--quiet',
    );
    expect(c.status).not.toBe(0);
    expect(errorLines(c.stderr)).toHaveLength(1);
    expect(errorLines(c.stderr)[0]).toMatch(
      new RegExp(
        `^nixreg: the image is copied, but not its referrer ${lost} \\(application/spdx\\+json\\) attached to ${ix.amd}: .*not found.*; copy again once that is fixed, or without --referrers$`,
      ),
    );
    expect(c.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it('each side gets only its own credentials, for the referrers as for the image', async () => {
    const from = await startDistribution({ htpasswd: { alice: 'src-pw' } });
    const to = await startDistribution({ htpasswd: { bob: 'dst-pw' } });
    try {
      const digest = await pushTestImage(from.url, 'priv', img('priv', 'amd64'), 'v1', basicAuth('alice', 'src-pw'));
      const c = new RegistryClient({
        registry: from.host,
        repository: 'priv',
        tlsVerify: false,
        pushScope: true,
        creds: { username: 'alice', password: 'src-pw' },
      });
      let sbom: string;
      try {
        const head = (await c.headManifest(digest))!;
        sbom = (
          await attachArtifact(c, { mediaType: head.mediaType, digest, size: head.size }, 'application/spdx+json', [
            { mediaType: 'application/spdx+json', bytes: Buffer.from('{}') },
          ])
        ).descriptor.digest;
      } finally {
        await c.close();
      }
      const args = [`docker://${from.host}/priv:v1`, `docker://${to.host}/priv:v1`, '--src-tls-verify=false', '--dest-tls-verify=false', '--quiet'];
      const ok = await nixreg('copy', '--referrers', '--src-creds', 'alice:src-pw', '--dest-creds', 'bob:dst-pw', ...args);
      expect(errorLines(ok.stderr)).toEqual([]);
      expect(ok.status).toBe(0);
      const l = await nixreg('referrers', `${to.host}/priv:v1`, '--tls-verify=false', '--creds', 'bob:dst-pw', '--json');
      expect(artifacts(JSON.parse(l.stdout) as Listed)).toEqual([{ digest: sbom, artifactType: 'application/spdx+json' }]);
      const swapped = await nixreg('copy', '--referrers', '--src-creds', 'bob:dst-pw', '--dest-creds', 'alice:src-pw', ...args);
      expect(swapped.status).toBe(3);
      expect(swapped.stderr).not.toContain('-pw');
    } finally {
      await from.stop();
      await to.stop();
    }
  }, 120_000);
});
