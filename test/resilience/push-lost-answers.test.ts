import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// Lost answers: distribution stores what was sent, the proxy drops its answer. The push must decide from the
// registry's state (the manifest is there), never from the missing answer.
const CASE = join(FIXTURES, 'cases/a-defaults');

let storeRoot: string;
let tmp: string;
let reg: Distribution;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-lost-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
});
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('manifest PUT answers lost', () => {
  for (const [name, repo] of [
    ['every answer', 'lost/always'],
    ['the first answer', 'lost/once'],
  ] as const) {
    it(`${name}: the push succeeds when the registry holds the manifest`, async () => {
      const proxy = await startFaultProxy(reg.url, [
        { kind: 'drop-answer', method: 'PUT', path: /\/manifests\//, ...(name === 'the first answer' ? { times: 1 } : {}) },
      ]);
      try {
        const r = await pushConf({
          confFile: join(CASE, 'conf.json'),
          destination: `docker://${proxy.host}/${repo}:1`,
          storeRoot,
          tlsVerify: false,
          cache: new PushCache(join(tmp, `cache-${repo.replace('/', '-')}`)),
          retry: { times: 2, baseDelayMs: 20, maxDelayMs: 100 },
        });
        expect(proxy.fired[0]).toBeGreaterThanOrEqual(1);
        const res = await fetch(`${reg.url}/v2/${repo}/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(r.digest);
      } finally {
        await proxy.close();
      }
    });
  }
});

// Seeded: run `seed` drops the answers of the (seed mod n)+1-th matching request and, on odd seeds, of the next
// one too, so the loss lands on different layers, the config and the manifest across runs.
const LAYERS = (JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { layers: unknown[] }).layers.length;
const SEEDS = Array.from({ length: 12 }, (_, i) => i);
const KINDS = [
  { name: 'session POST', method: 'POST', path: /\/blobs\/uploads\/$/, matches: LAYERS + 1 },
  { name: 'chunk PATCH', method: 'PATCH', path: /\/blobs\/uploads\//, matches: LAYERS + 1 },
  { name: 'commit PUT', method: 'PUT', path: /\/blobs\/uploads\//, matches: LAYERS + 1 },
  // a warm push (the cache knows every digest) asks HEAD for each blob
  { name: 'blob HEAD', method: 'HEAD', path: /\/blobs\/sha256:/, matches: LAYERS + 1, warm: true },
  { name: 'manifest PUT', method: 'PUT', path: /\/manifests\//, matches: 1 },
] as const;

describe.each(KINDS)('lost answers on $name, seeded', (kind) => {
  it.each(SEEDS)(
    'seed %i: the push succeeds and the image is whole',
    async (seed) => {
      const repo = `lost-${kind.method.toLowerCase()}-${kind.path.source.includes('manifests') ? 'm' : 'b'}/s${seed}`;
      const cache = new PushCache(join(tmp, `cache-${repo.replace('/', '-')}`));
      const push = (host: string) =>
        pushConf({
          confFile: join(CASE, 'conf.json'),
          destination: `docker://${host}/${repo}:1`,
          storeRoot,
          tlsVerify: false,
          cache,
          retry: { times: 3, baseDelayMs: 20, maxDelayMs: 100 },
        });
      if ('warm' in kind) await push(reg.host);
      const proxy = await startFaultProxy(reg.url, [
        { kind: 'drop-answer', method: kind.method, path: kind.path, skip: seed % kind.matches, times: 1 + (seed % 2) },
      ]);
      try {
        const r = await push(proxy.host);
        expect(proxy.fired[0]).toBeGreaterThanOrEqual(1);
        const res = await fetch(`${reg.url}/v2/${repo}/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(r.digest);
        const manifest = (await res.json()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
        expect(manifest.layers.map((l) => l.digest)).toEqual(r.layers.map((l) => l.digest));
        for (const d of [manifest.config, ...manifest.layers]) {
          const head = await fetch(`${reg.url}/v2/${repo}/blobs/${d.digest}`, { method: 'HEAD' });
          expect(head.status).toBe(200);
          expect(Number(head.headers.get('content-length'))).toBe(d.size);
        }
      } finally {
        await proxy.close();
      }
    },
    120_000,
  );
});
