import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../../mock-registry/index.js';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// A registry that stores only OCI media types (zot without docker compatibility) answers a Docker manifest PUT
// with 415: the one line says to push with --format oci.
const CASE = join(FIXTURES, 'cases/a-defaults');

let storeRoot: string;
let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-format-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('a registry refusing Docker media types', () => {
  it("zot's 400 MANIFEST_INVALID 'unsupported media type' also names --format oci, and --format oci then works", async () => {
    const reg = await startRegistry({ quirks: 'zot' });
    try {
      const opts = { confFile: join(CASE, 'conf.json'), destination: `docker://${reg.host}/oci/app:1`, storeRoot, tlsVerify: false, cache: new PushCache(join(tmp, 'z')) };
      const err = await pushConf(opts).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      const msg = (err as Error).message;
      expect(msg).toContain('HTTP 400');
      expect(msg).toContain('--format oci');
      expect(msg.includes('\n')).toBe(false);
      await expect(pushConf({ ...opts, format: 'oci' })).resolves.toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
    } finally {
      await reg.close();
    }
  });

  it('fails with one line naming --format oci', async () => {
    const reg = await startRegistry({ faults: [{ kind: 'status', route: 'manifest', method: 'PUT', status: 415 }] });
    try {
      const err = await pushConf({ confFile: join(CASE, 'conf.json'), destination: `docker://${reg.host}/oci/app:1`, storeRoot, tlsVerify: false, cache: new PushCache(join(tmp, 'c')) }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NixregError);
      const msg = (err as Error).message;
      expect(msg).toContain('--format oci');
      expect(msg).toContain('415');
      expect(msg.includes('\n')).toBe(false);
    } finally {
      await reg.close();
    }
  });
});
