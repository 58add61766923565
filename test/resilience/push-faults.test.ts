import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { pushConf, type PushResult } from '../../src/sink/registry/push-conf.js';
import { copyRegistryImage } from '../../src/sink/registry/registry-copy.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { FAST_NET, PUSH_FAULTS, countingLog, pullTo, tempDir } from './faults-helper.js';

// Push under faults: for each fault kind at a 20% per-request rate (POST/PATCH/PUT uploads, HEAD blob,
// PUT manifest), RUNS pushes of a 3-layer conf into fresh repositories all succeed; afterwards each repository
// holds exactly the manifest and blobs of the fault-free push (checked in storage and by pulling it back), and no
// upload session is left open: every failed attempt was cancelled with DELETE.
const RUNS = 3;
const RATE = 0.2;
const CONF = join(FIXTURES, 'cases/b-max-layers-3/conf.json');

let reg: Registry;
let tmp: ReturnType<typeof tempDir>;
let storeRoot: string;
let reference: PushResult;
let referencePull: Buffer;

const push = (repo: string, log?: (l: string) => void) =>
  pushConf({
    confFile: CONF,
    destination: `docker://${reg.host}/${repo}:v1`,
    storeRoot,
    tlsVerify: false,
    cache: null,
    compressionLevel: 1,
    jobs: 2,
    ...FAST_NET,
    ...(log ? { log } : {}),
  });

beforeAll(async () => {
  tmp = tempDir('push-faults');
  storeRoot = await buildStoreTree(join(tmp.dir, 'store'));
  reg = await startRegistry();
  reference = await push('res/reference');
  referencePull = await pullTo(reg, 'res/reference:v1', join(tmp.dir, 'reference.tar'));
});
afterAll(async () => {
  await reg?.close();
  if (storeRoot) await removeStoreTree(storeRoot);
  tmp?.remove();
});

const expectedBlobs = () => [reference.config.digest, ...reference.layers.map((l) => l.digest)].sort();

describe.each(PUSH_FAULTS)('push with $name at 20%', (kind) => {
  it(`${RUNS} pushes: all succeed, the registry holds exactly the image, no upload session left open`, async () => {
    let faults = 0;
    let retries = 0;
    for (let run = 0; run < RUNS; run++) {
      const repo = `res/${kind.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${run}`;
      reg.setFaults({ seed: 2000 + run, rules: kind.rules(RATE, run) });
      reg.resetCounters();
      const { log, counts } = countingLog();
      const r = await push(repo, log).catch((e: Error) => {
        throw new Error(`run ${run} (${kind.name}) failed: ${e.message}\n${counts.lines.join('\n')}`);
      });
      faults += reg.counters.faultsInjected;
      retries += counts.retries;
      reg.setFaults([]);
      expect(r.digest).toBe(reference.digest);
      expect(reg.storage.openUploads, `run ${run}: upload sessions left open`).toBe(0);
      expect(reg.storage.repoBlobs(repo)).toEqual(expectedBlobs());
      expect(reg.storage.manifests(repo).map((m) => m.info.digest)).toEqual([reference.digest]);
      expect(reg.storage.tags(repo)).toEqual(['v1']);
      const back = await pullTo(reg, `${repo}:v1`, join(tmp.dir, `back-${run}.tar`));
      expect(back.equals(referencePull), `run ${run}: pulled-back image differs`).toBe(true);
    }
    expect(faults, 'the fault rule never fired: the test proves nothing').toBeGreaterThan(RUNS / 2);
    expect(retries).toBeGreaterThan(0);
    if (process.env.SHOW_FIGURES) console.log(kind.name, { faults, retries });
  });
});

describe('registry-to-registry copy (push docker:// docker://) with the destination failing at 20%', () => {
  it.each(PUSH_FAULTS.filter((k) => !k.name.startsWith('stall')))('$name: copies complete, nothing left open', async (kind) => {
    const dest = await startRegistry();
    let copyRetries = 0;
    try {
      for (let run = 0; run < RUNS; run++) {
        // the 20% rules, plus this kind's fault on the first PATCH for certain: the whole-blob retry must run
        const rules = kind.rules(RATE, run);
        dest.setFaults({ seed: 3000 + run, rules: [{ ...rules[0]!, route: 'upload', method: 'PATCH', probability: 1, times: 1 }, ...rules] });
        const { log, counts } = countingLog();
        const r = await copyRegistryImage({
          source: `docker://${reg.host}/res/reference:v1`,
          destination: `docker://${dest.host}/copy/app-${run}:v1`,
          tlsVerify: false,
          ...FAST_NET,
          log,
        }).catch((e: Error) => {
          throw new Error(`run ${run} (${kind.name}) failed: ${e.message}\n${counts.lines.join('\n')}`);
        });
        dest.setFaults([]);
        copyRetries += counts.copyRetries;
        expect(r.digest).toBe(reference.digest);
        expect(dest.storage.openUploads).toBe(0);
        expect(dest.storage.repoBlobs(`copy/app-${run}`)).toEqual(expectedBlobs());
        const back = await pullTo(dest, `copy/app-${run}:v1`, join(tmp.dir, `copy-${run}.tar`));
        expect(back.equals(referencePull)).toBe(true);
      }
      expect(copyRetries, 'no streamed PATCH failed: the whole-blob retry was not exercised').toBeGreaterThan(0);
    } finally {
      await dest.close();
    }
  });
});
