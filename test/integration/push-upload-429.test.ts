import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type LogEntry } from '../../mock-registry/index.js';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// 429 on the streamed layer PATCH (a body the transport cannot replay): the push waits the registry's
// Retry-After before regenerating the layer, and a quota 429 (RateLimit-Remaining: 0) or a Retry-After longer
// than --retry-max-time ends the push at once with one line, without trying again.
const CASE = join(FIXTURES, 'cases/a-defaults');

let storeRoot: string;
let tmp: string;
let n = 0;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-429-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

const push = (host: string, totalMs = 60_000) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination: `docker://${host}/limited/app:1`,
    storeRoot,
    tlsVerify: false,
    cache: new PushCache(join(tmp, `cache-${n++}`)),
    jobs: 1,
    retry: { times: 3, baseDelayMs: 20, totalMs },
  });
const patches = (log: LogEntry[]) => log.filter((e) => e.route === 'upload' && e.method === 'PATCH');

describe('429 on a streamed upload PATCH', () => {
  it('waits Retry-After, then the push succeeds', async () => {
    const reg = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 429, retryAfter: 2, times: 1 }] });
    try {
      const r = await push(reg.host);
      expect(r.digest).toMatch(/^sha256:/);
      const list = patches(reg.log);
      const i = list.findIndex((e) => e.status === 429);
      expect(i).toBeGreaterThanOrEqual(0);
      // the next PATCH came no sooner than the 2 s asked for (a lower bound: a slow machine only adds to it)
      expect(Date.parse(list[i + 1]!.time) - Date.parse(list[i]!.time)).toBeGreaterThanOrEqual(1900);
    } finally {
      await reg.close();
    }
  }, 120_000);

  it('a used-up quota fails at once with one line naming the limit', async () => {
    const reg = await startRegistry({
      faults: [
        {
          kind: 'status',
          route: 'upload',
          method: 'PATCH',
          status: 429,
          retryAfter: 1,
          headers: { 'RateLimit-Limit': '100;w=21600', 'RateLimit-Remaining': '0;w=21600' },
        },
      ],
    });
    try {
      const err = await push(reg.host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      const msg = (err as Error).message;
      expect(msg).toContain('429');
      expect(msg).toContain('100 requests per 6 h');
      expect(msg.includes('\n')).toBe(false);
      expect(patches(reg.log)).toHaveLength(1);
    } finally {
      await reg.close();
    }
  }, 120_000);

  it('a Retry-After beyond --retry-max-time fails at once', async () => {
    const reg = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 429, retryAfter: 600 }] });
    try {
      const err = await push(reg.host, 10_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      expect((err as Error).message).toContain('--retry-max-time');
      expect(patches(reg.log)).toHaveLength(1);
    } finally {
      await reg.close();
    }
  }, 120_000);
});
