import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startFaultProxy, type ProxyRule } from '../helpers/fault-proxy.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// Chunked uploads (--chunk-size) against Debian's distribution behind a fault proxy: a chunk PATCH that the
// registry applied but whose answer never arrived, or whose connection was reset mid-body. The push must ask the
// registry how much of the upload it holds (GET the upload's status) and go on from there, or start over.
const CASE = join(FIXTURES, 'cases/a-defaults');
const CHUNK = 1024;

let storeRoot: string;
let tmp: string;
let reg: Distribution;
let clean: { digest: string; layers: string[]; patches: number };
const push = (host: string, repo: string, cacheName: string) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination: `docker://${host}/${repo}:1`,
    storeRoot,
    tlsVerify: false,
    cache: new PushCache(join(tmp, cacheName)),
    chunkSize: CHUNK,
    retry: { times: 3, baseDelayMs: 20, maxDelayMs: 100 },
  });
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-chunk-resume-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  // a clean push through a proxy that only counts: the digests to expect and how many chunk PATCHes there are
  const counter = await startFaultProxy(reg.url, [{ kind: 'drop-answer', method: 'PATCH', path: /\/blobs\/uploads\//, times: 0 }]);
  try {
    const r = await push(counter.host, 'clean/chunked', 'cache-clean');
    clean = { digest: r.digest, layers: r.layers.map((l) => l.digest), patches: counter.matched[0]! };
  } finally {
    await counter.close();
  }
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Upload sessions distribution still holds on disk that it has not itself declared invalid. distribution 2.8
 * answers a request with a stale `_state` BLOB_UPLOAD_INVALID and leaves that session's files for its purge job
 * (no client request can remove it then); every other session a push opened must be committed or cancelled.
 */
async function openUploads(): Promise<string[]> {
  const log = readFileSync(reg.logFile, 'utf8').split('\n');
  const refused = (id: string) => log.some((l) => l.includes(id) && l.includes('err.code="blob upload invalid"'));
  return (await uploadDirs()).filter((d) => !refused(d.split('/').pop()!));
}

async function uploadDirs(): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!e.isDirectory()) continue;
      if (e.name === '_uploads') for (const u of await readdir(join(dir, e.name))) found.push(join(dir, e.name, u));
      else await walk(join(dir, e.name));
    }
  };
  await walk(join(reg.dir, 'data'));
  return found;
}

async function checkImage(repo: string, digest: string, layers: string[]): Promise<void> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  expect(res.status).toBe(200);
  expect(res.headers.get('docker-content-digest')).toBe(digest);
  const manifest = (await res.json()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
  expect(manifest.layers.map((l) => l.digest)).toEqual(layers);
  for (const d of [manifest.config, ...manifest.layers]) {
    const head = await fetch(`${reg.url}/v2/${repo}/blobs/${d.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(d.size);
  }
}

const SEEDS = Array.from({ length: 12 }, (_, i) => i);
const KINDS: Array<{ name: string; kind: ProxyRule['kind'] }> = [
  { name: 'answer dropped', kind: 'drop-answer' },
  { name: 'reset mid-body', kind: 'reset-mid-body' },
];

describe.each(KINDS)('chunk PATCH $name, seeded', ({ kind }) => {
  it.each(SEEDS)(
    'seed %i: the push resumes and the image is whole',
    async (seed) => {
      const repo = `chunk-${kind}/s${seed}`;
      const proxy = await startFaultProxy(reg.url, [{ kind, method: 'PATCH', path: /\/blobs\/uploads\//, skip: seed % clean.patches, times: 1 + (seed % 2) }]);
      try {
        const r = await push(proxy.host, repo, `cache-${kind}-${seed}`);
        expect(proxy.fired[0]).toBeGreaterThanOrEqual(1);
        expect(r.digest).toBe(clean.digest);
        await checkImage(repo, r.digest, clean.layers);
        expect(await openUploads()).toEqual([]);
      } finally {
        await proxy.close();
      }
    },
    120_000,
  );
});
