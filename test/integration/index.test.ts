import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { runCli, errorLines } from '../helpers/cli.js';
import { LAYERS, manifestOf, pushTestImage } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { requireTool } from '../helpers/tools.js';

/**
 * `nixreg index create|append` against Debian's registry: two single-platform pushes (as two CI runners make them,
 * each in its own repository) stitched into one index that skopeo and `nixreg prefetch --platform all` read;
 * --require-platform refuses an index that lacks one. Needs a built bin/.
 */
const amd64 = simpleImage([LAYERS.L1()], {}, 'amd64');
const arm64 = simpleImage([LAYERS.L2()], { Cmd: ['/bin/arm'] }, 'arm64');
const arm64b = simpleImage([LAYERS.L3()], { Cmd: ['/bin/arm2'] }, 'arm64');
const amdDigest = manifestOf(amd64).digest;
const armDigest = manifestOf(arm64).digest;

let reg: Distribution;
const logFrom = () => readFileSync(reg.logFile, 'utf8').length;
const requestsSince = (from: number) =>
  [
    ...readFileSync(reg.logFile, 'utf8')
      .slice(from)
      .matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\/v2\/[^ "]*)/g),
  ].map((m) => `${m[1]} ${m[2]}`);
const raw = (ref: string) => spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' });

beforeAll(async () => {
  requireTool('skopeo');
  reg = await startDistribution();
  await pushTestImage(reg.url, 'ci/amd64', amd64, '1');
  await pushTestImage(reg.url, 'ci/arm64', arm64, '1');
  await pushTestImage(reg.url, 'ci/arm64', arm64b, '2');
}, 60_000);
afterAll(async () => reg?.stop());

describe('nixreg index', () => {
  it('create: two single-platform images from other repositories, mounted, read by skopeo and prefetch --platform all', async () => {
    const from = logFrom();
    const r = await runCli([
      'index',
      'create',
      `${reg.host}/app:1.0`,
      `${reg.host}/ci/amd64:1`,
      `${reg.host}/ci/arm64:1`,
      '--require-platform',
      'linux/amd64',
      '--require-platform',
      'linux/arm64/v8',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.blobs).toEqual({ exists: 0, mounted: 4, copied: 0 });
    const reqs = requestsSince(from);
    expect(reqs.filter((l) => l.startsWith('PATCH '))).toEqual([]);
    expect(reqs.filter((l) => l.startsWith('POST ')).every((l) => /mount=sha256/.test(l))).toBe(true);
    const sk = raw(`${reg.host}/app:1.0`);
    expect(sk.status, sk.stderr).toBe(0);
    const idx = JSON.parse(sk.stdout);
    expect(idx.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(idx.manifests).toEqual([
      {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        digest: amdDigest,
        size: manifestOf(amd64).bytes.length,
        platform: { architecture: 'amd64', os: 'linux' },
      },
      {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        digest: armDigest,
        size: manifestOf(arm64).bytes.length,
        platform: { architecture: 'arm64', os: 'linux' },
      },
    ]);
    expect(j.digest).toMatch(/^sha256:/);
    const p = await runCli(['prefetch', `${reg.host}/app`, '1.0', '--tls-verify=false', '--platform', 'all', '--quiet']);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(new RegExp(`"linux/amd64" = \\{\\s*imageName = "${reg.host}/app";\\s*imageDigest = "${amdDigest}";`));
    expect(p.stdout).toMatch(new RegExp(`"linux/arm64" = \\{\\s*imageName = "${reg.host}/app";\\s*imageDigest = "${armDigest}";`));
  }, 120_000);

  it('--require-platform refuses an index that lacks one, naming it, and tags nothing', async () => {
    const r = await runCli([
      'index',
      'create',
      `${reg.host}/app:2.0`,
      `${reg.host}/ci/amd64:1`,
      '--require-platform',
      'linux/amd64',
      '--require-platform',
      'linux/arm64/v8',
    ]);
    expect(r.status).toBe(4);
    expect(errorLines(r.stderr)).toEqual([
      `nixreg: index ${reg.host}/app:2.0 would lack the required platform linux/arm64/v8 (it has linux/amd64); nothing was tagged`,
    ]);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect((await fetch(`${reg.url}/v2/app/manifests/2.0`, { method: 'HEAD' })).status).toBe(404);
  }, 60_000);

  it('append adds a platform, and replaces one that is there; --format docker makes a manifest list', async () => {
    expect((await runCli(['index', 'create', `${reg.host}/app:3.0`, `${reg.host}/ci/amd64:1`, '--format', 'docker', '--quiet'])).status).toBe(0);
    const a = await runCli(['index', 'append', `${reg.host}/app:3.0`, `${reg.host}/ci/arm64:1`, '--require-platform', 'linux/arm64']);
    expect(a.status, a.stderr).toBe(0);
    let idx = JSON.parse(raw(`${reg.host}/app:3.0`).stdout);
    expect(idx.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(idx.manifests.map((m: { digest: string }) => m.digest)).toEqual([amdDigest, armDigest]);
    const b = await runCli(['index', 'append', `${reg.host}/app:3.0`, `${reg.host}/ci/arm64:2`]);
    expect(b.status, b.stderr).toBe(0);
    idx = JSON.parse(raw(`${reg.host}/app:3.0`).stdout);
    expect(idx.manifests.map((m: { digest: string }) => m.digest)).toEqual([amdDigest, manifestOf(arm64b).digest]);
    // an index as a source gives all its entries
    const c = await runCli(['index', 'create', `${reg.host}/other:1`, `${reg.host}/app:1.0`, '--json']);
    expect(c.status, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).manifests.map((m: { platform: string }) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
  }, 120_000);

  it('one-line errors: no such destination to append to, two images for one platform, another registry', async () => {
    const none = await runCli(['index', 'append', `${reg.host}/app:nope`, `${reg.host}/ci/amd64:1`]);
    expect(none.status).toBe(4);
    expect(errorLines(none.stderr)).toEqual([`nixreg: index ${reg.host}/app:nope does not exist; make it with nixreg index create`]);
    const twice = await runCli(['index', 'create', `${reg.host}/app:4.0`, `${reg.host}/ci/arm64:1`, `${reg.host}/ci/arm64:2`]);
    expect(twice.status).toBe(2);
    expect(errorLines(twice.stderr)).toEqual([expect.stringMatching(/^nixreg: two sources give linux\/arm64: /)]);
    const elsewhere = await runCli(['index', 'create', `${reg.host}/app:4.0`, 'quay.io/x/y:1']);
    expect(elsewhere.status).toBe(2);
    expect(errorLines(elsewhere.stderr)).toEqual([expect.stringMatching(/^nixreg: quay\.io\/x\/y:1 is on quay\.io, not /)]);
    const bad = await runCli(['index', 'create', `${reg.host}/app:4.0`, `${reg.host}/ci/amd64:1`, '--require-platform', 'amd64']);
    expect(bad.status).toBe(2);
    expect(errorLines(bad.stderr)).toEqual([expect.stringMatching(/^nixreg: --require-platform takes os\/arch/)]);
  }, 60_000);
});
