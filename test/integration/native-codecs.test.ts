import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { layerTar, makeImage, prng, pushTestImage } from '../helpers/images.js';
import { requireTool } from '../helpers/tools.js';

/**
 * The CLI with and without the native layer decoders (NIXREG_NO_NATIVE=1): a pull of gzip and zstd layers from a
 * real registry gives the same archive, and NIXREG_DEBUG names the decoder that ran. Where this machine can
 * build the addon (compiler + libzstd-dev + libisal-dev), the bundled CLI must be using it. Assumes npm run build.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/nixreg.js');
// (a run with NIXREG_NO_NATIVE=1 in its environment told scripts/build-native.mjs not to build it)
const canBuild =
  process.env.NIXREG_NO_NATIVE !== '1' &&
  spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0 &&
  existsSync('/usr/include/zstd.h') &&
  existsSync('/usr/include/isa-l/igzip_lib.h');
let reg: Distribution;
let work: string;
let digest: string;

beforeAll(async () => {
  requireTool('zstd');
  work = mkdtempSync(join(tmpdir(), 'nixreg-native-'));
  reg = await startDistribution();
  // > 1 MiB layers, so each decodes in several native steps
  const big = (seed: string) => layerTar({ [`opt/${seed}/a.bin`]: prng(seed, 1_500_000), [`opt/${seed}/b.txt`]: 'text\n'.repeat(300_000) });
  digest = await pushTestImage(
    reg.url,
    'test/native',
    makeImage(
      [
        { tar: big('g'), c: 'gzip' },
        { tar: big('z'), c: 'zstd' },
        { tar: big('g1'), c: 'gzip-1' },
      ],
      'oci',
    ),
  );
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function pull(out: string, env: Record<string, string>) {
  const r = spawnSync('node', [BIN, 'pull', `${reg.host}/test/native`, '--digest', digest, '-o', out, '--tls-verify=false', '--quiet', '--arch', 'amd64'], {
    encoding: 'utf8',
    env: { ...process.env, NIXREG_DEBUG: '1', NIXREG_NO_NATIVE: '', ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  return { bytes: readFileSync(out), debug: r.stderr.split('\n').filter((l) => / (gzip|zstd) /.test(l) && /decod/.test(l)) };
}

describe('native layer decoders in the CLI', () => {
  test('pull: the same archive with and without them; the debug line names the decoder', () => {
    const withNative = pull(join(work, 'native.tar'), {});
    const without = pull(join(work, 'fallback.tar'), { NIXREG_NO_NATIVE: '1' });
    expect(withNative.bytes.equals(without.bytes)).toBe(true);
    expect(without.debug.sort()).toEqual([
      'nixreg: debug: no native gzip decoder (NIXREG_NO_NATIVE=1): using node:zlib',
      'nixreg: debug: no native zstd decoder (NIXREG_NO_NATIVE=1): using fzstd',
    ]);
    if (canBuild)
      expect(withNative.debug.sort()).toEqual([
        'nixreg: debug: gzip layers decode with the native decoder',
        'nixreg: debug: zstd layers decode with the native decoder',
      ]);
    else expect(withNative.debug.every((l) => l.includes('no native'))).toBe(true);
  });
});
