import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry } from '../../mock-registry/index.js';
import { pushConf, type PushResult } from '../../src/sink/registry/push-conf.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { pullTo, runCli, tempDir } from './faults-helper.js';

// Concurrency: 4 `nixreg push` processes sending the same image to the same repository of a real
// registry (distribution 2.8.2) at once all succeed with the same digest and leave the repository consistent
// (every blob of the manifest present with its size; pulled back it is the image pushed); 4 concurrent pulls into
// different files write identical, correct archives. The 4 pushes share one push cache directory, as parallel CI
// jobs on one runner would.
const CONF = join(FIXTURES, 'cases/b-max-layers-3/conf.json');
const N = 4;

let dist: Distribution;
let tmp: ReturnType<typeof tempDir>;
let storeRoot: string;
let reference: PushResult;
let referencePull: Buffer;

beforeAll(async () => {
  tmp = tempDir('concurrency');
  storeRoot = await buildStoreTree(join(tmp.dir, 'store'));
  dist = await startDistribution();
  // what the pushes must produce, from an in-process push of the same conf to the mock registry
  const mock = await startRegistry();
  try {
    reference = await pushConf({ confFile: CONF, destination: `docker://${mock.host}/ref/app:v1`, storeRoot, tlsVerify: false, cache: null });
    referencePull = await pullTo(mock, 'ref/app:v1', join(tmp.dir, 'reference.tar'));
  } finally {
    await mock.close();
  }
});
afterAll(async () => {
  await dist?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  tmp?.remove();
});

describe(`${N} processes at once against one distribution repository`, () => {
  it(`${N} pushes of the same image all succeed and the repository ends consistent`, async () => {
    const env = { XDG_CACHE_HOME: join(tmp.dir, 'shared-cache') };
    const dest = `docker://${dist.host}/conc/app:v1`;
    const runs = await Promise.all(
      Array.from({ length: N }, () =>
        runCli(['push', CONF, dest, '--store-root', storeRoot, '--json', '--quiet', '--retry-times', '2'], { env, timeoutMs: 120_000 }),
      ),
    );
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect((JSON.parse(r.stdout) as PushResult).digest).toBe(reference.digest);
    }
    const res = await fetch(`${dist.url}/v2/conc/app/manifests/v1`, { headers: { accept: reference.mediaType } });
    expect(res.headers.get('docker-content-digest')).toBe(reference.digest);
    await res.arrayBuffer();
    for (const b of [reference.config, ...reference.layers.map((l) => ({ digest: l.digest, size: l.blobSize }))]) {
      const head = await fetch(`${dist.url}/v2/conc/app/blobs/${b.digest}`, { method: 'HEAD' });
      expect(head.status, b.digest).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(b.size);
    }
    const back = await pullTo(dist, 'conc/app:v1', join(tmp.dir, 'back.tar'));
    expect(back.equals(referencePull)).toBe(true);
  });

  it(`${N} pulls into different files at once are all byte-identical to the reference`, async () => {
    const outs = Array.from({ length: N }, (_, i) => join(tmp.dir, `pull-${i}.tar`));
    const runs = await Promise.all(
      outs.map((o) =>
        runCli(['pull', `${dist.host}/conc/app:v1`, '-o', o, '--final-image-name', 'res/app', '--final-image-tag', 'latest', '--quiet'], {
          timeoutMs: 120_000,
        }),
      ),
    );
    for (const [i, r] of runs.entries()) {
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(outs[i]!).equals(referencePull), `pull ${i}`).toBe(true);
    }
  });
});
