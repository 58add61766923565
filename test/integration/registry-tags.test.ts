import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { RegistryClient } from '../../src/registry/client.js';
import { LAYERS, pushTestImage } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { runCli } from '../helpers/cli.js';
import { requireTool } from '../helpers/tools.js';

/**
 * RegistryClient.listTags and `nixreg inspect docker://…` RepoTags against a registry that pages its tag list
 * (the mock: Debian's distribution 2.8 sends every tag at once, so it cannot show paging). skopeo follows the
 * same `Link: <…>; rel="next"` pages: both must list every tag, in the registry's order. Needs a built dist/.
 */
const TAGS = ['1.0', '1.1', '2.0', 'latest', 'zeta'];
let reg: Registry;
const tagListGets = () => reg.log.filter((e) => e.method === 'GET' && /\/v2\/paged\/app\/tags\/list/.test(e.url));

beforeAll(async () => {
  requireTool('skopeo');
  reg = await startRegistry({ pageSize: 2 });
  const img = simpleImage([LAYERS.L3()], {});
  for (const t of TAGS) await pushTestImage(reg.url, 'paged/app', img, t);
});
afterAll(async () => {
  await reg?.close();
});

describe('tag list paging', () => {
  it('listTags follows rel="next" pages: the registry default (2 a page) and n=1', async () => {
    const client = new RegistryClient({ registry: reg.host, repository: 'paged/app', tlsVerify: false });
    try {
      const before = tagListGets().length;
      expect(await client.listTags()).toEqual(TAGS);
      expect(tagListGets().length - before).toBe(3); // 2 + 2 + 1
      expect(await client.listTags({ pageSize: 1 })).toEqual(TAGS);
      expect(tagListGets().length - before).toBe(3 + 5);
      expect(
        tagListGets()
          .slice(-5)
          .every((e) => /[?&]n=1(&|$)/.test(e.url)),
      ).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('nixreg inspect lists every tag as RepoTags, as skopeo inspect does over the same pages', async () => {
    const ref = `docker://${reg.host}/paged/app:1.1`;
    const r = await runCli(['inspect', ref, '--tls-verify=false', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const mine = JSON.parse(r.stdout);
    // async: the mock registry answers from this process, so a blocking spawn would deadlock
    const theirs = JSON.parse((await promisify(execFile)('skopeo', ['inspect', '--tls-verify=false', ref], { encoding: 'utf8' })).stdout);
    expect(mine.RepoTags).toEqual(TAGS);
    expect(mine.RepoTags).toEqual(theirs.RepoTags);
    expect(mine.Digest).toBe(theirs.Digest);
  });
});
