import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../../mock-registry/index.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// `push --output FIFO`: a pipe cannot be patched or rewound, so the archive must still come out in order and
// byte-identical to `nixreg stream` (the fixture's expected sha256), also when an upload is retried.
const CASE = join(FIXTURES, 'cases/a-defaults');
const expected = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { output: { sha256: string } };

let storeRoot: string;
let tmp: string;
let reg: Distribution;
let n = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-fifo-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

/** A FIFO with a reader hashing whatever comes through it. */
function fifoReader(): { path: string; digest: Promise<string> } {
  const dir = mkdtempSync(join(tmp, 'fifo-'));
  const path = join(dir, 'out.tar');
  execFileSync('mkfifo', [path]);
  const digest = new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
  return { path, digest };
}

const push = (host: string, repoTag: string, output: string) =>
  pushConf({
    confFile: join(CASE, 'conf.json'),
    destination: `docker://${host}/${repoTag}`,
    storeRoot,
    tlsVerify: false,
    cache: new PushCache(join(tmp, `cache-${n++}`)),
    output,
  });

describe('push --output into a FIFO', () => {
  it('writes the exact stream archive in order (distribution)', async () => {
    const fifo = fifoReader();
    await push(reg.host, 'fifo/app:1', fifo.path);
    expect(await fifo.digest).toBe(expected.output.sha256);
    expect(readdirSync(join(fifo.path, '..'))).toEqual(['out.tar']); // no temp file beside it
  }, 120_000);

  it('stays exact when an upload is retried (a 500 the mock registry injects once)', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 500, skip: 2, times: 1 }] });
    try {
      const fifo = fifoReader();
      await push(faulty.host, 'fifo/retry:1', fifo.path);
      expect(faulty.counters.faultsInjected).toBe(1);
      expect(await fifo.digest).toBe(expected.output.sha256);
    } finally {
      await faulty.close();
    }
  }, 120_000);

  it('a reader that goes away mid-archive: one line, non-zero exit, no spool file left (CLI)', async () => {
    const dir = mkdtempSync(join(tmp, 'fifo-'));
    const fifo = join(dir, 'out.tar');
    execFileSync('mkfifo', [fifo]);
    const spools = join(tmp, 'tmpdir');
    mkdirSync(spools);
    const reader = spawn('head', ['-c', '1000', fifo], { stdio: ['ignore', 'ignore', 'inherit'] });
    const gone = new Promise((r) => reader.once('exit', r));
    const r = await runCli(
      ['push', join(CASE, 'conf.json'), `docker://${reg.host}/fifo/gone:1`, '--store-root', storeRoot, '--tls-verify=false', '--output', fifo],
      {
        cacheHome: join(tmp, 'cli-cache'),
        env: { TMPDIR: spools },
      },
    );
    await gone;
    expect(r.status).not.toBe(0);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/^nixreg: cannot write output .*out\.tar: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(spools)).toEqual([]);
    expect(readdirSync(dir)).toEqual(['out.tar']);
  }, 120_000);
});
