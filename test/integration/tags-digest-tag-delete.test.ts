import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry } from '../../mock-registry/index.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { runCli, errorLines } from '../helpers/cli.js';
import { LAYERS, manifestOf, pushTestImage, pushTestIndex, sha } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';

const amd64 = simpleImage([LAYERS.L1()], {}, 'amd64');
const arm64 = simpleImage([LAYERS.L3()], {}, 'arm64');

/** Requests the registry's access log has seen since `from` (a byte offset), as "METHOD path" lines. */
function requestsSince(reg: Distribution, from: number): string[] {
  const log = readFileSync(reg.logFile, 'utf8').slice(from);
  return [...log.matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\/v2\/[^ ?"]*)/g)].map((m) => `${m[1]} ${m[2]}`);
}

describe('tags, digest, tag, delete against distribution', () => {
  let reg: Distribution;
  let indexDigest: string;
  beforeAll(async () => {
    reg = await startDistribution();
    await pushTestImage(reg.url, 'app', amd64, 'amd');
    await pushTestImage(reg.url, 'app', arm64, 'arm');
    indexDigest = await pushTestIndex(
      reg.url,
      'app',
      [
        { img: amd64, platform: { os: 'linux', architecture: 'amd64' } },
        { img: arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
      'multi',
    );
    for (const t of ['t1', 't2', 't3']) await pushTestImage(reg.url, 'app', amd64, t);
  }, 60_000);
  afterAll(async () => reg?.stop());

  it('tags lists every tag; --json and --quiet', async () => {
    const r = await runCli(['tags', `${reg.host}/app`]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['amd', 'arm', 'multi', 't1', 't2', 't3']);
    const j = await runCli(['tags', `docker://${reg.host}/app`, '--json']);
    expect(JSON.parse(j.stdout)).toEqual({ Repository: `${reg.host}/app`, Tags: expect.arrayContaining(['amd', 'arm', 'multi', 't1', 't2', 't3']) });
    expect((await runCli(['tags', `${reg.host}/app`, '--quiet'])).stdout).toBe('');
    const none = await runCli(['tags', `${reg.host}/nothing-here`]);
    expect(none.status).toBe(4);
    expect(errorLines(none.stderr)).toEqual([expect.stringMatching(/^nixreg: tag list of .*nothing-here not found on /)]);
    const withTag = await runCli(['tags', `${reg.host}/app:amd`]);
    expect(withTag.status).toBe(2);
  }, 60_000);

  it('tags follows every Link page (the mock: distribution 2.8 sends all tags at once)', async () => {
    const mock = await startRegistry({ pageSize: 2 });
    try {
      for (const t of ['a', 'b', 'c', 'd', 'e']) await pushTestImage(mock.url, 'paged', amd64, t);
      const before = mock.log.filter((e) => e.method === 'GET' && e.url.includes('/tags/list')).length;
      const r = await runCli(['tags', `${mock.host}/paged`]);
      expect(r.stdout).toBe('a\nb\nc\nd\ne\n');
      expect(mock.log.filter((e) => e.method === 'GET' && e.url.includes('/tags/list')).length - before).toBe(3);
    } finally {
      await mock.close();
    }
  }, 60_000);

  it('digest gives the manifest digest, and a platform picks from the index', async () => {
    expect((await runCli(['digest', `${reg.host}/app:amd`])).stdout).toBe(manifestOf(amd64).digest + '\n');
    expect((await runCli(['digest', `${reg.host}/app:multi`])).stdout).toBe(indexDigest + '\n');
    expect((await runCli(['digest', `${reg.host}/app:multi`, '--platform', 'linux/arm64/v8'])).stdout).toBe(manifestOf(arm64).digest + '\n');
    expect((await runCli(['digest', `${reg.host}/app:multi`, '--platform', 'linux/amd64'])).stdout).toBe(manifestOf(amd64).digest + '\n');
    const single = await runCli(['digest', `${reg.host}/app:arm`, '--platform', 'linux/arm64', '--json']);
    expect(JSON.parse(single.stdout)).toMatchObject({ digest: manifestOf(arm64).digest, platform: { os: 'linux', architecture: 'arm64' } });
    const missing = await runCli(['digest', `${reg.host}/app:multi`, '--platform', 'linux/s390x']);
    expect(missing.status).toBe(4);
    expect(errorLines(missing.stderr)).toEqual([
      expect.stringMatching(/^nixreg: no image for platform linux\/s390x in the index; available: linux\/amd64, linux\/arm64\/v8/),
    ]);
    const wrong = await runCli(['digest', `${reg.host}/app:amd`, '--platform', 'linux/arm64']);
    expect(wrong.status).toBe(4);
    expect(wrong.stderr).toBe(`nixreg: ${reg.host}/app:amd is a single image for linux/amd64, not linux/arm64\n`);
    const bad = await runCli(['digest', `${reg.host}/app:amd`, '--platform', 'linux']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^nixreg: --platform takes os\/arch\[\/variant\]/);
  }, 60_000);

  it('tag puts the same manifest bytes under new tags without touching a blob', async () => {
    const from = readFileSync(reg.logFile, 'utf8').length;
    const r = await runCli(['tag', `${reg.host}/app:multi`, 'v1', 'stable']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${reg.host}/app:v1 ${indexDigest}\n${reg.host}/app:stable ${indexDigest}\n`);
    const reqs = requestsSince(reg, from);
    expect(reqs.filter((l) => l.includes('/blobs/'))).toEqual([]);
    expect(reqs.filter((l) => l.startsWith('PUT '))).toEqual(['PUT /v2/app/manifests/v1', 'PUT /v2/app/manifests/stable']);
    const got = await fetch(`${reg.url}/v2/app/manifests/stable`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    expect(sha(Buffer.from(await got.arrayBuffer()))).toBe(indexDigest);
    const bad = await runCli(['tag', `${reg.host}/app:multi`, 'no/slash']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^nixreg: invalid tag "no\/slash"/);
  }, 60_000);

  it('delete removes a manifest by tag or by digest', async () => {
    const other = simpleImage([LAYERS.L2()], {}, 'amd64');
    const digest = await pushTestImage(reg.url, 'gone', other, 'x');
    const byTag = await runCli(['delete', `${reg.host}/gone:x`, '--json']);
    expect(byTag.stderr).toBe('');
    expect(JSON.parse(byTag.stdout)).toEqual({ Reference: `${reg.host}/gone:x`, Digest: digest, Deleted: true });
    expect((await fetch(`${reg.url}/v2/gone/manifests/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const again = await runCli(['delete', `${reg.host}/gone@${digest}`]);
    expect(again.status).toBe(4);
    expect(errorLines(again.stderr)).toHaveLength(1);
    const d2 = await pushTestImage(reg.url, 'gone', other, 'y');
    const byDigest = await runCli(['delete', `${reg.host}/gone@${d2}`]);
    expect(byDigest.stdout).toBe(`deleted ${reg.host}/gone@${d2}\n`);
    const missingTag = await runCli(['delete', `${reg.host}/gone:nope`]);
    expect(missingTag.status).toBe(4);
    expect(missingTag.stderr).toBe(`nixreg: manifest ${reg.host}/gone:nope not found on ${reg.host}; nothing was deleted\n`);
  }, 60_000);

  it('delete says clearly when the registry does not allow deletes', async () => {
    const ro = await startDistribution({ deleteEnabled: false });
    try {
      const digest = await pushTestImage(ro.url, 'keep', amd64, 'x');
      const r = await runCli(['delete', `${ro.host}/keep:x`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^nixreg: ${ro.host.replace(/\./g, '\\.')} does not allow deleting manifests \\(HTTP 405: .*\\); nothing was deleted\\. For distribution, start it with REGISTRY_STORAGE_DELETE_ENABLED=true \\(storage\\.delete\\.enabled\\)\\n$`,
        ),
      );
      expect((await fetch(`${ro.url}/v2/keep/manifests/${digest}`, { method: 'HEAD' })).status).toBe(200);
    } finally {
      await ro.stop();
    }
  }, 60_000);
});
