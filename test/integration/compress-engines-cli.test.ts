import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { buildStoreTree, FIXTURES, removeStoreTree } from '../helpers/store-tree.js';

// The CLI writes the same layer blobs whichever gzip engine this install picks (node:zlib, the native encoder over
// a static zlib, pako on worker threads) and the same zstd frames; NIXREG_DEBUG names the engine it picked.
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');

let tmp: string;
let storeRoot: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-engines-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
}, 60_000);
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** blob digest → sha256 of its bytes (a corrupt blob would show as a mismatch). */
function blobs(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, 'blobs/sha256')).sort()) {
    out[name] = createHash('sha256')
      .update(readFileSync(join(dir, 'blobs/sha256', name)))
      .digest('hex');
  }
  return out;
}

async function layout(name: string, compression: string, env: NodeJS.ProcessEnv) {
  const dir = join(tmp, name);
  const r = await runCli(['stream', CONF, '--store-root', storeRoot, '--format', 'oci', '--compression', compression, '--compression-level', '1', '-o', dir], {
    env,
    cacheHome: join(tmp, `cache-${name}`),
  });
  expect(r.status, r.stderr).toBe(0);
  return { dir, stderr: r.stderr };
}

describe('compressor engines through the CLI', () => {
  it('gzip: default engine, pako on workers with and without the native addon: the same blobs', async () => {
    const auto = await layout('gz-auto', 'gzip', { NIXREG_DEBUG: '1' });
    expect(auto.stderr).toMatch(/debug: gzip level 1: (node:zlib|native|pako)/);
    const pako = await layout('gz-pako', 'gzip', { NIXREG_DEFLATE: 'pako' });
    const noNative = await layout('gz-no-native', 'gzip', { NIXREG_NO_NATIVE: '1', NIXREG_DEBUG: '1' });
    expect(noNative.stderr).toMatch(/debug: gzip level 1: (node:zlib|pako)/);
    expect(blobs(pako.dir)).toEqual(blobs(auto.dir));
    expect(blobs(noNative.dir)).toEqual(blobs(auto.dir));
  }, 120_000);

  it('zstd: the same frames on every run', async () => {
    const a = await layout('zst-a', 'zstd', {});
    const b = await layout('zst-b', 'zstd', { NIXREG_NO_NATIVE: '1' });
    expect(blobs(b.dir)).toEqual(blobs(a.dir));
  }, 120_000);
});
