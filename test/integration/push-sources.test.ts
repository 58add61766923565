import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { errorLines, runCli } from '../helpers/cli.js';

// Every file/directory source kind `openSource` reads, as a push source into Debian's real distribution:
// docker-archive plain/gzip (converted: layers compressed on the way, same digests as the conf push),
// OCI layout and OCI archive (kept as stored: same manifest digest as the layout holds).
const CASE = join(FIXTURES, 'cases/a-defaults');

let storeRoot: string;
let tmp: string;
let reg: Distribution;
let confDigest: string;
let confDiffIDs: string[];
let confLayerDigests: string[];

const nixreg = (...args: string[]) => runCli(args, { cacheHome: join(tmp, 'cache') });
type Pushed = {
  digest: string;
  mediaType: string;
  layers: Array<{ diffID: string; digest: string; status: string }>;
  stats: { uploaded: number; exists: number };
};
async function push(source: string, dest: string, ...extra: string[]): Promise<Pushed> {
  const r = await nixreg('push', source, `docker://${reg.host}/${dest}`, '--tls-verify=false', '--json', ...extra);
  expect(errorLines(r.stderr)).toEqual([]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Pushed;
}
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
/** skopeo reads the pushed image back, verifying every blob; returns the stored manifest's digest. */
function skopeoManifestDigest(ref: string, dir: string): string {
  const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/${ref}`, `dir:${join(tmp, dir)}`], { encoding: 'utf8' });
  expect(copy.status, copy.stderr).toBe(0);
  return sha256(readFileSync(join(tmp, dir, 'manifest.json')));
}

beforeAll(async () => {
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-sources-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  const r = await push(join(CASE, 'conf.json'), 'conf/app:1', '--store-root', storeRoot);
  confDigest = r.digest;
  confDiffIDs = r.layers.map((l) => l.diffID);
  confLayerDigests = r.layers.map((l) => l.digest);
  const s = await nixreg('stream', join(CASE, 'conf.json'), '--store-root', storeRoot, '-o', join(tmp, 'image.tar'));
  expect(s.status, s.stderr).toBe(0);
});
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('docker-archive sources (layers compressed on the way up)', () => {
  // (a zstd-compressed docker-archive is not covered: the archive reader behind openSource reads plain and gzip tars)
  it('plain and gzip archives push the same image as the conf did', async () => {
    execFileSync('sh', ['-c', `gzip -n -c image.tar > image.tar.gz`], { cwd: tmp });
    for (const [file, repo] of [
      ['image.tar', 'archive/plain:1'],
      ['image.tar.gz', 'archive/gzip:1'],
    ] as const) {
      const r = await push(join(tmp, file), repo);
      expect(r.layers.map((l) => l.diffID)).toEqual(confDiffIDs);
      // deterministic gzip of the same tars, config verbatim: the conf push's manifest
      expect(r.digest, file).toBe(confDigest);
    }
    // the docker-archive: transport spelling too; everything already there
    const again = await push(`docker-archive:${join(tmp, 'image.tar.gz')}`, 'archive/gzip:2');
    expect(again.digest).toBe(confDigest);
    expect(again.stats.uploaded).toBe(0);
  });
});

describe('OCI layout and OCI archive sources', () => {
  let layout: string;
  let layoutDigest: string;
  beforeAll(() => {
    layout = join(tmp, 'layout');
    const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/conf/app:1`, `oci:${layout}:v1`], { encoding: 'utf8' });
    expect(copy.status, copy.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    layoutDigest = index.manifests[0]!.digest;
  });

  it('oci:DIR:REF keeps the manifest digest (format and compression match)', async () => {
    const r = await push(`oci:${layout}:v1`, 'layout/app:1');
    expect(r.digest).toBe(layoutDigest);
    expect(r.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(skopeoManifestDigest('layout/app:1', 'pulled-layout')).toBe(layoutDigest);
    // asked for explicitly, the same
    const explicit = await push(`oci:${layout}:v1`, 'layout/app:2', '--format', 'oci', '--compression', 'gzip');
    expect(explicit.digest).toBe(layoutDigest);
    expect(explicit.stats.uploaded).toBe(0);
  });

  it('oci:DIR with --format docker is converted: layers recompressed to the conf push blobs, config kept', async () => {
    const r = await push(`oci:${layout}`, 'layout/docker:1', '--format', 'docker');
    expect(r.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(r.layers.map((l) => l.diffID)).toEqual(confDiffIDs);
    // deterministic gzip of the same tars; the config is skopeo's OCI re-encoding, so the manifest is new
    expect(r.layers.map((l) => l.digest)).toEqual(confLayerDigests);
    expect(r.stats.uploaded).toBe(0); // every layer blob was already there
    expect(r.digest).not.toBe(layoutDigest);
    expect(skopeoManifestDigest('layout/docker:1', 'pulled-docker')).toBe(r.digest);
  });

  it('oci-archive:FILE keeps the manifest digest', async () => {
    // member names as skopeo's oci-archive writes them: no "./" prefix
    execFileSync('tar', ['-cf', join(tmp, 'layout.tar'), '-C', layout, 'oci-layout', 'index.json', 'blobs'], { stdio: 'ignore' });
    const r = await push(`oci-archive:${join(tmp, 'layout.tar')}`, 'ociarchive/app:1');
    expect(r.digest).toBe(layoutDigest);
    expect(skopeoManifestDigest('ociarchive/app:1', 'pulled-archive')).toBe(layoutDigest);
  });
});
