import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// A cross-repository mount the registry refuses with 401/403 (no pull access to the source repository, as
// registries answer for a private `from`) is only a missed shortcut: the blob is uploaded instead.
const CASE = join(FIXTURES, 'cases/a-defaults');
const LAYERS = (JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { layers: unknown[] }).layers.length;

let storeRoot: string;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-mount-refused-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

const push = (reg: Registry, repoTag: string, cache: PushCache, mountFrom?: string[]) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination: `docker://${reg.host}/${repoTag}`,
    storeRoot,
    tlsVerify: false,
    cache,
    ...(mountFrom ? { mountFrom } : {}),
  });

describe('a refused cross-repository mount', () => {
  for (const status of [401, 403]) {
    it(`answered ${status} falls back to a plain upload`, async () => {
      const reg = await startRegistry({ anonymousMount: true, faults: [{ kind: 'status', route: 'upload', method: 'POST', mount: true, status }] });
      try {
        const cache = new PushCache(join(tmp, `cache-${status}`));
        const first = await push(reg, 'src/app:1', cache);
        reg.resetCounters();
        const second = await push(reg, 'dst/app:1', cache, ['elsewhere/app']);
        expect(second.digest).toBe(first.digest);
        expect(second.stats).toMatchObject({ mounted: 0, uploaded: LAYERS });
        expect(reg.counters.faultsInjected).toBeGreaterThanOrEqual(LAYERS); // every layer tried to mount first
        const res = await fetch(`${reg.url}/v2/dst/app/manifests/${second.digest}`, {
          headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        });
        expect(res.status).toBe(200);
      } finally {
        await reg.close();
      }
    });
  }
});
