import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultProxy, type ProxyRule } from '../helpers/fault-proxy.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { pushSource } from '../../src/sink/registry/source-push.js';

// The order in which the registry writer asks about a blob, read off the requests that reach Debian's
// distribution through a counting proxy: what answers first decides how much is sent.
const CASE = join(FIXTURES, 'cases/a-defaults');
const LAYERS = (JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { layers: unknown[] }).layers.length;

let storeRoot: string;
let tmp: string;
let reg: Distribution;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-chain-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

/** Rules that match but never fire: their `matched` counters are a request log by kind. */
const COUNT = (method: string, path: RegExp): ProxyRule => ({ kind: 'drop-answer', method, path, skip: Number.POSITIVE_INFINITY });
const COUNTERS = [COUNT('HEAD', /\/blobs\/sha256:/), COUNT('POST', /\/blobs\/uploads\/$/), COUNT('GET', /\/manifests\//), COUNT('PATCH', /\/blobs\/uploads\//)];
const push = (destination: string, cache: PushCache, extra: { registryCache?: boolean } = {}) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination,
    storeRoot,
    tlsVerify: false,
    cache,
    retry: { times: 2, baseDelayMs: 20, maxDelayMs: 100 },
    ...extra,
  });

describe('the writer asks in order and stops at the first that knows', () => {
  it('a layer the push cache knows costs one HEAD and no upload session, and no previous image is read', async () => {
    const cache = new PushCache(join(tmp, 'cache-known'));
    const first = await push(`docker://${reg.host}/chain/cached:1`, cache);
    expect(first.stats.uploaded).toBe(LAYERS);
    const proxy = await startFaultProxy(reg.url, COUNTERS);
    try {
      const r = await push(`docker://${proxy.host}/chain/cached:2`, cache);
      expect(r.digest).toBe(first.digest);
      expect(r.stats).toMatchObject({ exists: LAYERS, uploaded: 0, mounted: 0, layersGenerated: 0 });
      const [heads, posts, manifestGets, patches] = proxy.matched;
      expect(heads).toBe(LAYERS + 1); // every layer once, and the config
      expect(posts).toBe(0);
      expect(patches).toBe(0);
      expect(manifestGets).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('with an empty cache, a layer of the previous image costs one HEAD: nothing is compressed or sent', async () => {
    const first = await push(`docker://${reg.host}/chain/previous:1`, new PushCache(join(tmp, 'cache-prev-a')));
    const proxy = await startFaultProxy(reg.url, COUNTERS);
    try {
      const cache = new PushCache(join(tmp, 'cache-prev-b'));
      const r = await push(`docker://${proxy.host}/chain/previous:1`, cache);
      expect(r.digest).toBe(first.digest);
      expect(r.layers.every((l) => l.status === 'exists' && l.reused === 'registry')).toBe(true);
      const [heads, posts, manifestGets, patches] = proxy.matched;
      expect(heads).toBe(LAYERS + 1);
      expect(posts).toBe(0);
      expect(patches).toBe(0);
      expect(manifestGets).toBeGreaterThanOrEqual(1);
      // the reused blobs were written to the cache: the next push asks the cache first and reads no manifest
      const proxy2 = await startFaultProxy(reg.url, COUNTERS);
      try {
        await push(`docker://${proxy2.host}/chain/previous:2`, cache);
        expect(proxy2.matched).toEqual([LAYERS + 1, 0, 0, 0]);
      } finally {
        await proxy2.close();
      }
    } finally {
      await proxy.close();
    }
  });
});

describe('an OCI layout pushed as stored', () => {
  it('retries a blob whose PATCH was reset mid-body, and keeps the manifest digest', async () => {
    requireTool('skopeo');
    await push(`docker://${reg.host}/chain/oci-src:1`, new PushCache(join(tmp, 'cache-oci')));
    const layout = join(tmp, 'layout');
    const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', '--format', 'oci', `docker://${reg.host}/chain/oci-src:1`, `oci:${layout}:v1`], {
      encoding: 'utf8',
    });
    expect(copy.status, copy.stderr).toBe(0);
    const layoutDigest = (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest;
    const proxy = await startFaultProxy(reg.url, [{ kind: 'reset-mid-body', method: 'PATCH', path: /\/blobs\/uploads\//, times: 1 }]);
    try {
      const r = await pushSource({
        source: `oci:${layout}:v1`,
        sourceOptions: { platform: { os: 'linux', arch: 'amd64' } },
        destination: `docker://${proxy.host}/chain/oci-dst:1`,
        tlsVerify: false,
        jobs: 1,
        retry: { times: 2, baseDelayMs: 20, maxDelayMs: 100 },
      });
      expect(proxy.fired[0]).toBe(1);
      expect(r.digest).toBe(layoutDigest);
      expect(r.stats.uploaded).toBe(LAYERS + 1); // the layers and the config, each verified by distribution
    } finally {
      await proxy.close();
    }
    const res = await fetch(`${reg.url}/v2/chain/oci-dst/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.headers.get('docker-content-digest')).toBe(layoutDigest);
  });
});
