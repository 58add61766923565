import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../../mock-registry/index.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// A registry front that answers every upload PATCH and PUT first with 307 (or 308) to the same URL on the same
// origin (some load balancers move upload sessions this way): the chunked push follows it with the same body.
const CASE = join(FIXTURES, 'cases/a-defaults');

let storeRoot: string;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-redirect-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

async function redirectingFront(upstream: string, status: number): Promise<{ host: string; redirected: number; close(): Promise<void> }> {
  const up = new URL(upstream);
  const state = { redirected: 0 };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if ((req.method === 'PATCH' || req.method === 'PUT') && u.pathname.includes('/blobs/uploads/') && !u.searchParams.has('moved')) {
      state.redirected++;
      u.searchParams.set('moved', '1');
      req.resume();
      res.writeHead(status, { location: u.pathname + u.search, 'content-length': '0' });
      return res.end();
    }
    const fwd = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    fwd.on('error', () => req.socket.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get redirected() {
      return state.redirected;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.each([307, 308])('HTTP %i on upload PATCH/PUT', (status) => {
  it('a chunked push follows it and the registry holds the image', async () => {
    const reg = await startRegistry({ chunkMinLength: 0 });
    const front = await redirectingFront(reg.url, status);
    try {
      const r = await pushConf({
        confFile: join(CASE, 'conf.json'),
        destination: `docker://${front.host}/moved/app:${status}`,
        storeRoot,
        tlsVerify: false,
        cache: new PushCache(join(tmp, `cache-${status}`)),
        chunkSize: 64 * 1024,
        retry: { times: 1, baseDelayMs: 20, maxDelayMs: 100 },
      });
      expect(front.redirected).toBeGreaterThan(0);
      const res = await fetch(`${reg.url}/v2/moved/app/manifests/${status}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(r.digest);
      for (const l of r.layers) {
        const head = await fetch(`${reg.url}/v2/moved/app/blobs/${l.digest}`, { method: 'HEAD' });
        expect(Number(head.headers.get('content-length'))).toBe(l.blobSize);
      }
    } finally {
      await front.close();
      await reg.close();
    }
  }, 120_000);
});
