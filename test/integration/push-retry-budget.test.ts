import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry } from '../../mock-registry/index.js';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, FIXTURES, removeStoreTree } from '../helpers/store-tree.js';

/**
 * --retry-max-time is one budget for the whole push, not one per blob. The mock registry answers the first two
 * PATCHes of each of the first two layers with 429 + Retry-After: 1 (two fault rules, the second skipping the
 * first layer's three PATCHes). Each layer alone retries within a 3.5 s budget (2 s of waits), both together need
 * 4 s: the push must give up, naming --retry-max-time, after waits that sum to no more than the budget, and must
 * not put its manifest. The waits are the Retry-After values the push announced, not measured times.
 */
const CASE = join(FIXTURES, 'cases/a-defaults');
const BUDGET_MS = 3500;

let storeRoot: string;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-budget-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
}, 120_000);
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('--retry-max-time over a push of several failing blobs', () => {
  it('stops when the retries of all blobs together reach the budget', async () => {
    const reg = await startRegistry({
      faults: [
        { kind: 'status', route: 'upload', method: 'PATCH', status: 429, retryAfter: 1, times: 2 },
        { kind: 'status', route: 'upload', method: 'PATCH', status: 429, retryAfter: 1, skip: 3, times: 2 },
      ],
    });
    try {
      const log: string[] = [];
      const err = await pushConf({
        confFile: join(CASE, 'conf.json'),
        destination: `docker://${reg.host}/budget/app:1`,
        storeRoot,
        tlsVerify: false,
        cache: new PushCache(join(tmp, 'cache')),
        jobs: 1,
        retry: { times: 4, totalMs: BUDGET_MS },
        log: (l) => log.push(l),
      }).catch((e: unknown) => e);
      const waits = log
        .map((l) => /retrying in (\d+) ms/.exec(l)?.[1])
        .filter((w) => w !== undefined)
        .map(Number);
      expect(err, `waits: ${waits.join(', ')}`).toBeInstanceOf(NixregError);
      expect((err as Error).message).toContain('--retry-max-time');
      expect((err as Error).message.includes('\n')).toBe(false);
      // the first layer waited twice, the second once before the next wait would pass the budget
      expect(waits.length).toBeGreaterThanOrEqual(2);
      expect(waits.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(BUDGET_MS);
      expect(reg.log.filter((e) => e.route === 'manifest' && e.method === 'PUT')).toEqual([]);
    } finally {
      await reg.close();
    }
  }, 120_000);
});
