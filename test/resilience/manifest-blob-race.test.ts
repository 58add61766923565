import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import type { FaultRule } from '../../mock-registry/faults.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { FAST_NET, tempDir } from './faults-helper.js';

// distribution 2.8 rewrites a repository's blob link in place whenever another client commits the same blob, so a
// manifest PUT racing a concurrent push of the same image can be answered 400 DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN
// for blobs that are there (it failed CI once: test/resilience/concurrency.test.ts). The mock answers exactly that
// body here, a set number of times: the push must try the PUT again a few times, and only for those codes.
const CONF = join(FIXTURES, 'cases/b-max-layers-3/conf.json');
const RACE: FaultRule = { kind: 'status', status: 400, codes: ['DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN'], route: 'manifest', method: 'PUT' };

let reg: Registry;
let tmp: ReturnType<typeof tempDir>;
let storeRoot: string;

beforeAll(async () => {
  tmp = tempDir('manifest-race');
  storeRoot = await buildStoreTree(join(tmp.dir, 'store'));
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.close();
  if (storeRoot) await removeStoreTree(storeRoot);
  tmp?.remove();
});

async function push(repo: string, rules: FaultRule[], retryTimes = FAST_NET.retry.times) {
  reg.setFaults({ rules });
  const lines: string[] = [];
  try {
    const r = await pushConf({
      confFile: CONF,
      destination: `docker://${reg.host}/${repo}:v1`,
      storeRoot,
      tlsVerify: false,
      cache: null,
      ...FAST_NET,
      retry: { ...FAST_NET.retry, times: retryTimes },
      log: (l) => lines.push(l),
    })
      .then((v) => ({ ok: v, err: undefined }))
      .catch((e: Error) => ({ ok: undefined, err: e }));
    return { ...r, tries: lines.filter((l) => /manifest upload .*trying again in \d+ ms/.test(l)) };
  } finally {
    reg.setFaults([]);
  }
}

describe('a manifest PUT answered "blob unknown" for blobs just uploaded', () => {
  it('is tried again and the push succeeds when the registry catches up', async () => {
    const r = await push('race/ok', [{ ...RACE, times: 2 }]);
    expect(r.err).toBeUndefined();
    expect(r.tries).toHaveLength(2);
    expect(r.tries[0]).toContain('MANIFEST_BLOB_UNKNOWN');
    expect(reg.storage.manifests('race/ok').map((m) => m.info.digest)).toEqual([r.ok!.digest]);
    expect(reg.storage.tags('race/ok')).toEqual(['v1']);
  });

  it("gives up after 3 more tries with the registry's own error in one line", async () => {
    const r = await push('race/never', [RACE]);
    expect(r.tries).toHaveLength(3);
    expect(r.err?.message).toMatch(/^manifest upload to .*race\/never:v1: HTTP 400 from .*DIGEST_INVALID.*MANIFEST_BLOB_UNKNOWN/);
    expect(r.err?.message).not.toContain('\n');
    expect(reg.storage.tags('race/never')).toEqual([]);
  });

  it('is not tried again with --retry-times 0', async () => {
    const r = await push('race/no-retry', [{ ...RACE, times: 1 }], 0);
    expect(r.tries).toHaveLength(0);
    expect(r.err?.message).toContain('MANIFEST_BLOB_UNKNOWN');
  });

  it('other 400 answers (MANIFEST_INVALID) fail at once', async () => {
    const r = await push('race/invalid', [{ kind: 'status', status: 400, codes: ['MANIFEST_INVALID'], route: 'manifest', method: 'PUT', times: 1 }]);
    expect(r.tries).toHaveLength(0);
    expect(r.err?.message).toContain('MANIFEST_INVALID');
  });
});
