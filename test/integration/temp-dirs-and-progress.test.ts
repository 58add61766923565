import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, pushAmdArmIndex } from '../helpers/images.js';
import { runCliSync } from '../helpers/cli.js';

// Whole runs against distribution: nothing (not even an empty nixreg-* directory) is left in $TMPDIR, and the
// plain progress a CI log gets counts layers without the config and ends with one summary line.
let reg: Distribution;
let work: string;
let tmp: string;
let n = 0;

/** A run with its own empty TMPDIR; returns the run and what it left there. */
function inFreshTmp(args: string[]) {
  tmp = join(work, `tmp-${n++}`);
  mkdirSync(tmp);
  const r = runCliSync(args, { env: { TMPDIR: tmp }, cacheHome: join(work, 'cache') });
  return { ...r, left: readdirSync(tmp) };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nixreg-tmpdirs-'));
  reg = await startDistribution();
  const amd = makeImage(
    [LAYERS.L1(), LAYERS.L2(), LAYERS.L3()].map((tar) => ({ tar, c: 'gzip' as const })),
    'docker',
  );
  const arm = makeImage(
    [
      { tar: LAYERS.L2(), c: 'gzip' },
      { tar: LAYERS.L4(), c: 'gzip' },
    ],
    'oci',
    { arch: 'arm64', variant: 'v8' },
  );
  await pushAmdArmIndex(reg.url, 't/app', amd, arm, { amd: '1', index: 'multi' });
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('temp directories', () => {
  test('pull, prefetch (one platform and all) and push leave $TMPDIR empty', () => {
    const runs = [
      ['pull', `${reg.host}/t/app:1`, '-o', join(work, 'a.tar'), '--tls-verify=false', '-q'],
      ['prefetch', `${reg.host}/t/app`, '1', '--tls-verify=false', '--quiet'],
      ['prefetch', `${reg.host}/t/app`, 'multi', '--platform', 'all', '--tls-verify=false', '--quiet'],
      ['push', join(work, 'a.tar'), `docker://${reg.host}/t/copy:1`, '--tls-verify=false', '-q'],
    ];
    for (const args of runs) {
      const r = inFreshTmp(args);
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(r.left, args.join(' ')).toEqual([]);
    }
  }, 120_000);

  test('failed runs leave $TMPDIR empty too', () => {
    const runs = [
      ['pull', `${reg.host}/t/app:nope`, '-o', join(work, 'x.tar'), '--tls-verify=false', '-q'],
      ['pull', `${reg.host}/t/app:multi`, '--arch', 's390x', '-o', join(work, 'x.tar'), '--tls-verify=false', '-q'],
      ['prefetch', `${reg.host}/t/app`, 'nope', '--tls-verify=false', '--quiet'],
      ['prefetch', `${reg.host}/t/app`, 'multi', '--arch', 's390x', '--tls-verify=false', '--quiet'],
      ['prefetch', `${reg.host}/t/app`, '1', '--tls-verify=false', '--quiet', '--add-to-store', '-o', join(work, 'no-dir', 'x.tar')],
      ['pull', `${reg.host}/t/app:1`, '-o', join(work, 'no-dir', 'x.tar'), '--tls-verify=false', '-q'],
    ];
    for (const args of runs) {
      const r = inFreshTmp(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.left, args.join(' ')).toEqual([]);
    }
  }, 120_000);
});

describe('progress of whole runs (not a terminal)', () => {
  test('registry → registry copy: "3 layer(s)" for three layers and a config, one summary line', () => {
    const r = inFreshTmp(['push', `docker://${reg.host}/t/app:1`, `docker://${reg.host}/t/copied:1`, '--tls-verify=false']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.filter((l) => /^layer \d\/3 [0-9a-f]{12} /.test(l))).toHaveLength(3);
    expect(lines.filter((l) => /^config [0-9a-f]{12} /.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^\d+ layer\(s\): /.test(l))).toEqual([
      expect.stringMatching(/^3 layer\(s\): \d pushed \([^)]*\), \d already present, \d mounted, in [\d.]+ s, [\d.]+ (B|KiB|MiB|GiB)\/s$/),
    ]);
  }, 120_000);

  test('pull: the plan (layers, total bytes) first, the summary with the rate at the end', () => {
    const r = inFreshTmp(['pull', `${reg.host}/t/app:1`, '-o', join(work, 'b.tar'), '--tls-verify=false']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^fetching 3 layer\(s\), [\d.]+ (B|KiB|MiB)$/m);
    expect(r.stderr).toMatch(/^fetched 3 layer\(s\), [\d.]+ (B|KiB|MiB) in [\d.]+ s, [\d.]+ (B|KiB|MiB|GiB)\/s$/m);
  }, 120_000);
});
