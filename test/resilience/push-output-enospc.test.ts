import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf } from '../../src/sink/registry/push-conf.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, FIXTURES, removeStoreTree } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { mountTinyTmpfs } from '../helpers/tmpfs.js';

/**
 * `push --output FILE` on a full disk: a 1 MiB tmpfs (mounted here; needs root with CAP_SYS_ADMIN, as the test
 * machine runs) receives the 2.3 MB archive of the a-defaults fixture. Like `stream -o`, the push must end with the
 * one line "cannot write output PATH: no space left on device" (code E_NO_SPACE), exit non-zero, leave the tmpfs
 * empty, and not report the image as pushed.
 */
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');
const NO_SPACE = 'no space left on device';

let tmp: string;
let full: string;
let storeRoot: string;
let reg: Distribution;
let unmount: (() => void) | undefined;
let n = 0;

beforeAll(async () => {
  for (const t of ['docker-registry', 'mount', 'umount']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-enospc-'));
  full = join(tmp, 'full');
  mkdirSync(full);
  unmount = mountTinyTmpfs(full);
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  unmount?.();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Upload sessions distribution saw opened for `repository` (one per attempt). */
function uploadsStarted(repository: string): number {
  return readFileSync(reg.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"POST /v2/${repository}/blobs/uploads/`)).length;
}

/** The library push of CONF to `repository`:1 with `--output` at `output`, one layer at a time, a fresh cache. */
const pushWithOutput = (repository: string, output: string, log: string[]) =>
  pushConf({
    confFile: CONF,
    destination: `docker://${reg.host}/${repository}:1`,
    storeRoot,
    tlsVerify: false,
    cache: new PushCache(join(tmp, `cache-${n++}`)),
    output,
    jobs: 1,
    log: (l) => log.push(l),
  });

describe('push --output on a full disk', () => {
  it('the library call rejects with one E_NO_SPACE line naming the output; nothing left on the disk', async () => {
    const output = join(full, 'out.tar');
    let caught: unknown;
    const log: string[] = [];
    await pushWithOutput('full/lib', output, log).catch((err) => (caught = err));
    expect(caught).toBeInstanceOf(NixregError);
    const e = caught as NixregError;
    expect(e.message.startsWith(`cannot write output ${output}: ${NO_SPACE}`), e.message).toBe(true);
    expect(e.code).toBe('E_NO_SPACE');
    expect(e.retryable).toBe(false);
    expect(log.filter((l) => /retry|attempt/i.test(l))).toEqual([]); // a full disk stays full: no second attempt
    expect(readdirSync(full)).toEqual([]);
  }, 120_000);

  it('a disk full before the first byte (the first layer header fails): final at once, no retried upload', async () => {
    // the filler takes every block of the tmpfs; the output's temp file (an inode, no block) can still be created
    const filler = join(full, 'filler');
    mkdirSync(filler);
    await writeFile(join(filler, 'blocks'), Buffer.alloc(2 << 20)).catch(() => {});
    const outDir = join(full, 'out');
    mkdirSync(outDir);
    const output = join(outDir, 'out.tar');
    const log: string[] = [];
    let caught: unknown;
    try {
      await pushWithOutput('full/first', output, log).catch((err) => (caught = err));
      expect(caught).toBeInstanceOf(NixregError);
      const e = caught as NixregError;
      expect(e.message.startsWith(`cannot write output ${output}: ${NO_SPACE}`), e.message).toBe(true);
      expect(e.code).toBe('E_NO_SPACE');
      expect(log.filter((l) => /retry|attempt/i.test(l))).toEqual([]);
      expect(uploadsStarted('full/first')).toBeLessThanOrEqual(1);
      expect(readdirSync(outDir)).toEqual([]);
    } finally {
      rmSync(filler, { recursive: true, force: true });
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('the CLI: one line, non-zero exit, no "pushed" report, nothing left on the disk (4 runs)', async () => {
    // several runs: where the disk fills relative to the pending writes varies
    for (let i = 0; i < 4; i++) {
      const output = join(full, 'out.tar');
      const r = await runCli(['push', CONF, `docker://${reg.host}/full/cli:${i}`, '--store-root', storeRoot, '--tls-verify=false', '--output', output], {
        cacheHome: join(tmp, `cli-cache-${i}`),
        env: { TMPDIR: tmp },
      });
      const lines = errorLines(r.stderr);
      expect(lines, `run ${i + 1}: ${r.stderr}`).toHaveLength(1);
      expect(lines[0]!.startsWith(`nixreg: cannot write output ${output}: ${NO_SPACE}`), lines[0]).toBe(true);
      expect(r.stderr).not.toMatch(/^\s+at |Node\.js v/m);
      expect(r.status).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(readdirSync(full)).toEqual([]);
    }
  }, 300_000);
});
