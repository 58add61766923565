import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type LogEntry } from '../../mock-registry/index.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// Chunked uploads against registries that bend the OCI chunk rules, as the mock's quirk profiles emulate them:
// ECR refuses chunks under 5 MiB (but the last) without advertising OCI-Chunk-Min-Length, and only says so on the
// chunk after the short one (416); GAR has no chunked uploads at all (400 on a PATCH with Content-Range).
const CASE = join(FIXTURES, 'cases/a-defaults');
const CHUNK = 256 * 1024; // under ECR's 5 MiB, and under the fixture's 2 MiB layer: it takes several chunks
const USERS = { ci: 'ci-password' };

let storeRoot: string;
let tmp: string;
let cacheN = 0;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-chunk-quirks-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
}, 120_000);
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

const push = (host: string, repo: string, lines: string[]) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination: `docker://${host}/${repo}:1`,
    storeRoot,
    tlsVerify: false,
    cache: new PushCache(join(tmp, `cache-${cacheN++}`)),
    creds: { username: 'ci', password: 'ci-password' },
    chunkSize: CHUNK,
    jobs: 1,
    retry: { times: 2, baseDelayMs: 20, maxDelayMs: 100 },
    log: (l) => lines.push(l),
  });

/** The reference: the same push into the plain mock (same manifest digest expected everywhere). */
async function plainDigest(): Promise<string> {
  const plain = await startRegistry();
  try {
    return (await push(plain.host, 'ref/app', [])).digest;
  } finally {
    await plain.close();
  }
}

const rangePatches = (log: LogEntry[]) => log.filter((e) => e.method === 'PATCH' && e.headers['content-range'] !== undefined);

describe('chunk rules the registry does not advertise', () => {
  it('ECR: a 416 after a chunk under 5 MiB raises the chunk size to 5 MiB, and the push succeeds', async () => {
    const want = await plainDigest();
    const reg = await startRegistry({ quirks: 'ecr', auth: { mode: 'basic', users: USERS } });
    try {
      const lines: string[] = [];
      const r = await push(reg.host, 'ecr/app', lines);
      expect(r.digest).toBe(want);
      expect(reg.log.some((e) => e.method === 'PATCH' && e.status === 416)).toBe(true); // the quirk was met
      expect(lines.some((l) => /5242880/.test(l) && /chunk/.test(l))).toBe(true);
      // one refusal, then chunks of 5 MiB: every blob here is smaller, so each later upload is one chunk from 0
      const refusals = reg.log.filter((e) => e.method === 'PATCH' && e.status === 416);
      expect(refusals.length).toBe(1);
      const later = rangePatches(reg.log).filter((e) => e.seq > refusals[0]!.seq);
      expect(later.length).toBeGreaterThan(0);
      for (const e of later) {
        expect(e.status).toBeLessThan(300);
        expect(e.headers['content-range']).toMatch(/^0-/);
      }
    } finally {
      await reg.close();
    }
  });

  it('GAR: chunks refused (400) → one streamed PATCH per blob, and the push succeeds', async () => {
    const want = await plainDigest();
    const reg = await startRegistry({ quirks: 'gar', auth: { mode: 'bearer', users: USERS } });
    try {
      const lines: string[] = [];
      const r = await push(reg.host, 'gar/app', lines);
      expect(r.digest).toBe(want);
      expect(rangePatches(reg.log).some((e) => e.status === 400)).toBe(true); // the quirk was met
      expect(lines.some((l) => /refused a chunked upload/.test(l))).toBe(true);
      // after the refusal no chunk is tried again: one PATCH per upload session
      const firstRefusal = Math.min(
        ...rangePatches(reg.log)
          .filter((e) => e.status === 400)
          .map((e) => e.seq),
      );
      expect(rangePatches(reg.log).filter((e) => e.seq > firstRefusal)).toEqual([]);
    } finally {
      await reg.close();
    }
  });
});
