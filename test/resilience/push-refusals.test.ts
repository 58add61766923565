import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { runCli } from './faults-helper.js';

// 429s and 5xx answered by a proxy in front of Debian's distribution 2.8 before the request reaches it (a load
// balancer shedding load): every push must still end with the manifest of a clean push, every blob in place, one
// tag and no upload session left open.
const CASE = join(FIXTURES, 'cases/a-defaults');
const LAYERS = (JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { layers: unknown[] }).layers.length;

let storeRoot: string;
let tmp: string;
let reg: Distribution;
let cleanDigest: string;

const push = (host: string, repo: string, cacheName: string) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination: `docker://${host}/${repo}:1`,
    storeRoot,
    tlsVerify: false,
    cache: new PushCache(join(tmp, cacheName)),
    retry: { times: 4, baseDelayMs: 20, maxDelayMs: 100 },
  });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-refusals-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  cleanDigest = (await push(reg.host, 'clean/app', 'cache-clean')).digest;
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Upload sessions distribution still holds for `repo` that the client never cancelled. distribution 2.8 leaves the
 * directory of a session cancelled before any byte reached it (its DELETE answers 204 after logging "error closing
 * blobwriter ... file already closed"), so a session whose DELETE was answered 204 in the registry's log is closed.
 */
async function openUploads(repo: string): Promise<string[]> {
  const dir = join(reg.dir, 'data/docker/registry/v2/repositories', repo, '_uploads');
  const log = readFileSync(reg.logFile, 'utf8').split('\n');
  const cancelled = (id: string) => log.some((l) => l.includes(id) && l.includes('http.request.method=DELETE') && l.includes('http.response.status=204'));
  return (await readdir(dir).catch(() => [])).filter((id) => !cancelled(id));
}

const REQUESTS = [
  { name: 'session POST', method: 'POST', path: /\/blobs\/uploads\/$/, matches: LAYERS + 1 },
  { name: 'PATCH', method: 'PATCH', path: /\/blobs\/uploads\//, matches: LAYERS + 1 },
  { name: 'commit PUT', method: 'PUT', path: /\/blobs\/uploads\//, matches: LAYERS + 1 },
  { name: 'manifest PUT', method: 'PUT', path: /\/manifests\//, matches: 1 },
] as const;

const KINDS = [
  { name: '429 with Retry-After', status: 429, retryAfter: '1' },
  { name: '429 without Retry-After', status: 429 },
  { name: '500', status: 500 },
  { name: '503', status: 503 },
] as const;

// Seed s refuses request kind s mod 4 at its (s mod n)+1-th match, and on odd seeds the next match too.
const SEEDS = Array.from({ length: 12 }, (_, i) => i);

describe.each(KINDS)('$name on upload requests and the manifest PUT, seeded', (kind) => {
  it.each(SEEDS)(
    "seed %i: the push succeeds with a clean push's manifest",
    async (seed) => {
      const target = REQUESTS[seed % REQUESTS.length]!;
      const repo = `refused-${kind.status}${'retryAfter' in kind ? 'ra' : ''}/s${seed}`;
      const proxy = await startFaultProxy(reg.url, [
        {
          kind: 'refuse',
          status: kind.status,
          ...('retryAfter' in kind ? { retryAfter: kind.retryAfter } : {}),
          method: target.method,
          path: target.path,
          skip: seed % target.matches,
          times: 1 + (seed % 2),
        },
      ]);
      try {
        const r = await push(proxy.host, repo, `cache-${repo.replace('/', '-')}`);
        expect(proxy.fired[0]).toBeGreaterThanOrEqual(1);
        expect(r.digest).toBe(cleanDigest);
        const res = await fetch(`${reg.url}/v2/${repo}/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
        expect(res.status).toBe(200);
        expect(res.headers.get('docker-content-digest')).toBe(cleanDigest);
        const manifest = (await res.json()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
        for (const d of [manifest.config, ...manifest.layers]) {
          const head = await fetch(`${reg.url}/v2/${repo}/blobs/${d.digest}`, { method: 'HEAD' });
          expect(head.status).toBe(200);
          expect(Number(head.headers.get('content-length'))).toBe(d.size);
        }
        const tags = (await (await fetch(`${reg.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
        expect(tags.tags).toEqual(['1']);
        expect(await openUploads(repo)).toEqual([]);
      } finally {
        await proxy.close();
      }
    },
    120_000,
  );
});

describe('a registry refusing every attempt', () => {
  it("the push fails with one line naming the layer, each attempt's answer and what to do, and leaves no session open", async () => {
    const proxy = await startFaultProxy(reg.url, [{ kind: 'refuse', status: 503, method: 'PATCH', path: /\/blobs\/uploads\// }]);
    try {
      const run = await runCli(
        [
          'push',
          join(CASE, 'conf.json'),
          `docker://${proxy.host}/refused-all/app:1`,
          '--store-root',
          storeRoot,
          '--tls-verify=false',
          '--quiet',
          '--retry-times',
          '2',
          '--jobs',
          '1',
        ],
        { env: { XDG_CACHE_HOME: join(tmp, 'cache-refused-all') }, timeoutMs: 120_000 },
      );
      expect(run.code).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^nixreg: layer sha256:[0-9a-f]{64} upload to ${proxy.host.replace(/\./g, '\\.')}/refused-all/app failed after 3 attempts \\(503, 503, 503\\): .*HTTP 503.*; check the registry or raise --retry-times$`,
        ),
      );
      expect(await openUploads('refused-all/app')).toEqual([]);
      const tags = await fetch(`${reg.url}/v2/refused-all/app/tags/list`);
      expect(tags.status).toBe(404);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
