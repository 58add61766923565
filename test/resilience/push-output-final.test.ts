import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, FIXTURES, removeStoreTree } from '../helpers/store-tree.js';

/**
 * A failing `push --output` is a local failure, not the registry's: generating and uploading the layer again cannot
 * cure it, so the push stops at the first attempt with the output's one line instead of retrying like an upload.
 * The output here is a FIFO whose reader (`head -c 1000`) goes away early, so the next write fails with EPIPE.
 * Attempts are counted as upload sessions opened (POST …/blobs/uploads/ in distribution's log) and retry lines logged.
 */
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');

let tmp: string;
let storeRoot: string;
let reg: Distribution;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-output-final-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Requests distribution's access log shows on `repository`'s uploads: POST opens a session, PUT completes one. */
function requests(method: 'POST' | 'PUT', repository: string): number {
  const log = readFileSync(reg.logFile, 'utf8');
  return log.split('\n').filter((l) => l.includes(`"${method} /v2/${repository}/blobs/uploads/`)).length;
}

describe('push --output whose FIFO reader goes away', () => {
  it('fails at once (no retry, one upload attempt) with one line naming the output', async () => {
    const dir = mkdtempSync(join(tmp, 'fifo-'));
    const fifo = join(dir, 'out.tar');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('head', ['-c', '1000', fifo], { stdio: ['ignore', 'ignore', 'inherit'] });
    const gone = new Promise((r) => reader.once('exit', r));
    const log: string[] = [];
    let caught: unknown;
    await pushConf({
      confFile: CONF,
      destination: `docker://${reg.host}/fifo/final:1`,
      storeRoot,
      tlsVerify: false,
      cache: new PushCache(join(tmp, 'cache')),
      output: fifo,
      jobs: 1,
      log: (l) => log.push(l),
    }).catch((err) => (caught = err));
    await gone;
    expect(caught).toBeInstanceOf(NixregError);
    expect((caught as Error).message).toMatch(/^cannot write output .*out\.tar: /);
    expect(log.filter((l) => /retry|attempt/i.test(l))).toEqual([]);
    // the layers before the failure completed their upload, the failing one opened one session: none opened again
    expect(requests('POST', 'fifo/final')).toBe(requests('PUT', 'fifo/final') + 1);
    // a local pipe, not the network: not worth trying again
    expect([(caught as NixregError).code, (caught as NixregError).retryable]).toEqual(['E_FAILURE', false]);
    expect(readdirSync(dir)).toEqual(['out.tar']);
  }, 120_000);
});
