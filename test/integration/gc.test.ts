import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { manifestsInStorage, startAcrListingFront, type ListingFront } from '../helpers/acr-listing-front.js';
import { runCli, errorLines } from '../helpers/cli.js';
import { layerTar, manifestOf, pushBlob, pushManifest, pushTestImage, sha } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { requireTool } from '../helpers/tools.js';
import { startRegistry } from '../../mock-registry/index.js';
import { RegistryClient } from '../../src/registry/client.js';
import { attachArtifact, listReferrers } from '../../src/sink/registry/referrers.js';

/**
 * `nixreg gc` against Debian's registry. distribution 2.8 cannot list a repository's untagged manifests, so the
 * listing case puts a front before it that answers Azure Container Registry's `GET /acr/v1/<name>/_manifests`
 * from the registry's own storage directory (paged by Link, 3 a page) and passes every other request through:
 * manifests, tags and deletes are the real registry's.
 */
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const img = (name: string, arch = 'amd64') => simpleImage([layerTar({ [`etc/${name}`]: name })], { Cmd: [`/bin/${name}`] }, arch);

async function pushIndex(url: string, repo: string, children: ReturnType<typeof img>[], tag: string): Promise<string> {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c, i) => {
        const m = manifestOf(c);
        return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, platform: { os: 'linux', architecture: i ? 'arm64' : 'amd64' } };
      }),
    }),
  );
  return pushManifest(url, repo, tag, bytes, OCI_INDEX);
}

/** An untagged OCI artifact whose `subject` is `subject` (a signature, an SBOM). */
async function pushReferrer(url: string, repo: string, subject: { digest: string; size: number; mediaType: string }): Promise<string> {
  const empty = Buffer.from('{}');
  await pushBlob(url, repo, empty);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: 2 }],
      subject,
    }),
  );
  return pushManifest(url, repo, sha(bytes), bytes, 'application/vnd.oci.image.manifest.v1+json');
}

let reg: Distribution;
let front: ListingFront;
const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n, i) => img(n, i % 2 ? 'arm64' : 'amd64')) as [
  ReturnType<typeof img>,
  ReturnType<typeof img>,
  ReturnType<typeof img>,
  ReturnType<typeof img>,
];
const orphans = ['o1', 'o2', 'o3', 'o4'].map((n) => img(n));
let i1: string;
let i2: string;
let referrer: string;

beforeAll(async () => {
  reg = await startDistribution();
  front = await startAcrListingFront(reg);
  for (const x of [a, b, c, d, ...orphans]) await pushTestImage(reg.url, 'app', x);
  i1 = await pushIndex(reg.url, 'app', [a, b], 'v1');
  i2 = await pushIndex(reg.url, 'app', [c, d], 'v2');
  const i1bytes = await (await fetch(`${reg.url}/v2/app/manifests/v1`, { headers: { accept: OCI_INDEX } })).arrayBuffer();
  referrer = await pushReferrer(reg.url, 'app', { mediaType: OCI_INDEX, digest: i1, size: i1bytes.byteLength });
}, 60_000);
afterAll(async () => {
  await front?.close();
  await reg?.stop();
});

const orphanDigests = () => orphans.map((o) => manifestOf(o).digest).sort();
const listed = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => /^would delete (sha256:[0-9a-f]{64}) \(untagged\)$/.exec(l)?.[1] ?? l)
    .sort();

describe('nixreg gc', () => {
  it('--dry-run on two tagged indexes, their children, a referrer and four orphans lists exactly the four', async () => {
    const r = await runCli(['gc', `${front.host}/app`, '--keep', 'v*', '--dry-run']);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    expect(listed(r.stdout)).toEqual(orphanDigests());
    expect(r.stderr).toBe(`would delete 4 manifests of ${front.host}/app; kept 7 reached from 2 tags\n`);
    expect(manifestsInStorage(reg, 'app')).toHaveLength(11);
    const j = await runCli(['gc', `${front.host}/app`, '--keep', 'v?', '--dry-run', '--json']);
    const out = JSON.parse(j.stdout);
    expect(out).toMatchObject({ keptTags: ['v1', 'v2'], kept: 7, dryRun: true, source: 'listing' });
    expect(out.deleted.map((m: { digest: string }) => m.digest).sort()).toEqual(orphanDigests());
  }, 60_000);

  it('deletes what only an unkept tag reaches, never a child or referrer of a kept index', async () => {
    // v3 shares child a with v1; keeping only v1 drops v2 and v3 with their own children, and the orphans
    const e = img('e', 'arm64');
    await pushTestImage(reg.url, 'app', e);
    const i3 = await pushIndex(reg.url, 'app', [a, e], 'v3');
    const r = await runCli(['gc', `${front.host}/app`, '--keep', 'v1']);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const gone = [i2, i3, manifestOf(c).digest, manifestOf(d).digest, manifestOf(e).digest, ...orphanDigests()].sort();
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => /^deleting (sha256:\S+)/.exec(l)![1])
        .sort(),
    ).toEqual(gone);
    // indexes are deleted before their children
    const order = r.stdout
      .trim()
      .split('\n')
      .map((l) => /^deleting (sha256:\S+)/.exec(l)![1]);
    expect(order.slice(0, 2).sort()).toEqual([i2, i3].sort());
    expect(
      manifestsInStorage(reg, 'app')
        .map((m) => m.digest)
        .sort(),
    ).toEqual([i1, manifestOf(a).digest, manifestOf(b).digest, referrer].sort());
    expect((await runCli(['tags', `${reg.host}/app`])).stdout).toBe('v1\n');
  }, 60_000);

  it('refuses on a registry that cannot list untagged manifests; --tagged-only collects only unkept tags', async () => {
    const own = await startDistribution();
    try {
      const x = img('x');
      const y = img('y', 'arm64');
      const orphan = img('orphan');
      for (const m of [x, y, orphan]) await pushTestImage(own.url, 'svc', m);
      await pushIndex(own.url, 'svc', [x, y], 'keep-me');
      const old = await pushTestImage(own.url, 'svc', img('old'), 'old');
      const r = await runCli(['gc', `${own.host}/svc`, '--keep', 'keep-*', '--dry-run']);
      expect(r.status).toBe(1);
      expect(errorLines(r.stderr)).toEqual([
        `nixreg: ${own.host} offers no listing of a repository's manifests (GET /acr/v1/svc/_manifests: 404), so gc cannot see untagged ones; ` +
          'pass --tagged-only to collect only the manifests of tags --keep does not match (distribution: run registry garbage-collect --delete-untagged on the server)',
      ]);
      const t = await runCli(['gc', `${own.host}/svc`, '--keep', 'keep-*', '--tagged-only']);
      expect(t.status, t.stderr).toBe(0);
      expect(t.stdout).toBe(`deleting ${old} (old)\n`);
      expect((await fetch(`${own.url}/v2/svc/manifests/${old}`, { method: 'HEAD' })).status).toBe(404);
      expect((await fetch(`${own.url}/v2/svc/manifests/${manifestOf(orphan).digest}`, { method: 'HEAD' })).status).toBe(200);
      const none = await runCli(['gc', `${own.host}/svc`, '--keep', 'release-*', '--tagged-only']);
      expect(none.status).toBe(4);
      expect(errorLines(none.stderr)).toEqual([
        `nixreg: no tag of ${own.host}/svc matches --keep release-* (tags: keep-me); refusing to delete every manifest`,
      ]);
    } finally {
      await own.stop();
    }
  }, 60_000);

  it('says clearly when the registry does not allow deletes', async () => {
    const ro = await startDistribution({ deleteEnabled: false });
    try {
      await pushTestImage(ro.url, 'svc', img('k'), 'keep');
      const old = await pushTestImage(ro.url, 'svc', img('old2'), 'old');
      const r = await runCli(['gc', `${ro.host}/svc`, '--keep', 'keep', '--tagged-only', '--quiet']);
      expect(r.status).toBe(1);
      expect(errorLines(r.stderr)).toEqual([
        expect.stringMatching(
          /does not allow deleting manifests \(HTTP 405.*\); nothing was deleted\. For distribution, start it with REGISTRY_STORAGE_DELETE_ENABLED=true/,
        ),
      ]);
      expect((await fetch(`${ro.url}/v2/svc/manifests/${old}`, { method: 'HEAD' })).status).toBe(200);
    } finally {
      await ro.stop();
    }
  }, 60_000);
});

describe('nixreg gc and what is attached to a manifest', () => {
  let keys: string;
  beforeAll(() => {
    requireTool('openssl');
    keys = mkdtempSync(join(tmpdir(), 'nixreg-gc-keys-'));
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(keys, 'k.pem')], { stdio: 'ignore' });
    execFileSync('openssl', ['pkey', '-in', join(keys, 'k.pem'), '-pubout', '-out', join(keys, 'k.pub')], { stdio: 'ignore' });
  });
  afterAll(() => rmSync(keys, { recursive: true, force: true }));

  /** An image tagged `tag`, signed by nixreg (cosign's .sig tag) with an SBOM-like artifact in its sha256-<hex> index. */
  async function attachedImage(repo: string, name: string, tag: string) {
    const digest = await pushTestImage(reg.url, repo, img(name), tag);
    const s = await runCli(['sign', `${reg.host}/${repo}:${tag}`, '--key', join(keys, 'k.pem')]);
    expect(errorLines(s.stderr)).toEqual([]);
    const client = new RegistryClient({ registry: reg.host, repository: repo, tlsVerify: false, pushScope: true });
    try {
      const head = (await client.headManifest(digest))!;
      const a = await attachArtifact(client, { mediaType: head.mediaType, digest, size: head.size }, 'application/spdx+json', [
        { mediaType: 'application/spdx+json', bytes: Buffer.from(`{"name":"${name}"}`) },
      ]);
      expect(a.via).toBe('tag-schema');
      const sig = (await client.headManifest(`${digest.replace(':', '-')}.sig`))!.digest;
      const index = (await client.headManifest(digest.replace(':', '-')))!.digest;
      return { digest, artifact: a.descriptor.digest, sig, index };
    } finally {
      await client.close();
    }
  }

  it('on a registry with the referrers API (mock), --tagged-only: the untagged referrers of a deleted image go with it', async () => {
    const mock = await startRegistry();
    const client = new RegistryClient({ registry: mock.host, repository: 'api', tlsVerify: false, pushScope: true });
    try {
      const attach = async (name: string, tag: string) => {
        const digest = await pushTestImage(mock.url, 'api', img(name), tag);
        const head = (await client.headManifest(digest))!;
        const a = await attachArtifact(client, { mediaType: head.mediaType, digest, size: head.size }, 'application/spdx+json', [
          { mediaType: 'application/spdx+json', bytes: Buffer.from(`{"name":"${name}"}`) },
        ]);
        expect(a.via).toBe('referrers-api');
        return { digest, artifact: a.descriptor.digest };
      };
      const kept = await attach('api-kept', 'v1');
      const old = await attach('api-old', 'old');
      const r = await runCli(['gc', `${mock.host}/api`, '--keep', 'v*', '--tagged-only']);
      expect(errorLines(r.stderr)).toEqual([]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim().split('\n').sort()).toEqual(
        [`deleting ${old.digest} (old)`, `deleting ${old.artifact} (untagged), attached to ${old.digest}`].sort(),
      );
      expect(await client.headManifest(old.artifact)).toBeUndefined();
      expect((await listReferrers(client, kept.digest)).referrers.map((x) => x.digest)).toEqual([kept.artifact]);
    } finally {
      await client.close();
      await mock.close();
    }
  }, 120_000);

  it.each([
    ['--tagged-only (distribution itself)', 'sc1', () => reg.host, ['--tagged-only']],
    ['the manifest listing (front)', 'sc2', () => front.host, []],
  ])(
    '%s: keeps the signature, referrers index and artifact of a kept image; deletes those of a deleted one, and says so',
    async (_label, repo, host, flags) => {
      const kept = await attachedImage(repo, `${repo}-kept`, 'v1');
      const old = await attachedImage(repo, `${repo}-old`, 'old');
      const dry = await runCli(['gc', `${host()}/${repo}`, '--keep', 'v*', '--dry-run', ...flags]);
      expect(errorLines(dry.stderr)).toEqual([]);
      expect(dry.status).toBe(0);
      const hex = old.digest.slice(7);
      expect(dry.stdout.trim().split('\n').sort()).toEqual(
        [
          `would delete ${old.digest} (old)`,
          `would delete ${old.sig} (sha256-${hex}.sig), attached to ${old.digest}`,
          `would delete ${old.index} (sha256-${hex}), attached to ${old.digest}`,
          `would delete ${old.artifact} (untagged), attached to ${old.digest}`,
        ].sort(),
      );

      const r = await runCli(['gc', `${host()}/${repo}`, '--keep', 'v*', ...flags, '--quiet']);
      expect(errorLines(r.stderr)).toEqual([]);
      expect(r.status).toBe(0);
      const head = async (d: string) =>
        (
          await fetch(`${reg.url}/v2/${repo}/manifests/${d}`, {
            method: 'HEAD',
            headers: { accept: OCI_INDEX + ', application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
          })
        ).status;
      for (const d of [old.digest, old.sig, old.index, old.artifact]) expect(await head(d)).toBe(404);
      for (const d of [kept.digest, kept.sig, kept.index, kept.artifact]) expect(await head(d)).toBe(200);
      const l = await runCli(['referrers', `${reg.host}/${repo}:v1`, '--json']);
      expect((JSON.parse(l.stdout) as { referrers: Array<{ digest: string }> }).referrers.map((x) => x.digest).sort()).toEqual(
        [kept.artifact, kept.sig].sort(),
      );
      const v = await runCli(['verify', `${reg.host}/${repo}:v1`, '--key', join(keys, 'k.pub')]);
      expect(errorLines(v.stderr)).toEqual([]);
      expect(v.status).toBe(0);
      const client = new RegistryClient({ registry: reg.host, repository: repo, tlsVerify: false });
      try {
        expect((await listReferrers(client, old.digest)).referrers).toEqual([]);
      } finally {
        await client.close();
      }
    },
    120_000,
  );
});
