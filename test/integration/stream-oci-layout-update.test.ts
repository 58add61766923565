import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { cliWithCache } from '../helpers/cli.js';

// `nixreg stream --format oci -o DIR` into an existing layout behaves like skopeo's `oci:DIR:TAG`: the tag is
// added (or its entry replaced), the other tags and files stay; a directory that is not a layout is refused.
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');
const TAG = 'case-a';
let storeRoot: string;
let tmp: string;
const { nixreg, ok } = cliWithCache(() => join(tmp, 'cache'));
const stream = (dir: string, ...extra: string[]) => ['stream', CONF, '--store-root', storeRoot, '--format', 'oci', '-o', dir, ...extra];
type Index = { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
const indexOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Index;
const tagsOf = (dir: string) => indexOf(dir).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
const digestOf = (dir: string, tag: string) => indexOf(dir).manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!.digest;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
function skopeoInspect(ref: string): { Digest: string } {
  const r = spawnSync('skopeo', ['inspect', ref], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skopeo inspect ${ref}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { Digest: string };
}
const temps = (dir: string) =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((n) => n.includes('.nixreg-'));
/** The PID of a process that has exited (so no live nixreg owns a temp name carrying it). */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

beforeAll(async () => {
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-oci-update-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
}, 60_000);
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('stream --format oci into an existing layout', () => {
  it('adds a second tag, keeps the first tag and unrelated files; the same tag again replaces only its entry', async () => {
    const dir = join(tmp, 'layout');
    await ok(stream(dir));
    const first = digestOf(dir, TAG);
    writeFileSync(join(dir, 'NOTES'), 'mine');
    await ok(stream(dir, '--tag', 'other:v2', '--compression', 'none'));
    expect(tagsOf(dir)).toEqual([TAG, 'v2']);
    expect(digestOf(dir, TAG)).toBe(first);
    expect(readFileSync(join(dir, 'NOTES'), 'utf8')).toBe('mine');
    expect(skopeoInspect(`oci:${dir}:${TAG}`).Digest).toBe(first);
    expect(skopeoInspect(`oci:${dir}:v2`).Digest).toBe(digestOf(dir, 'v2'));

    // the first tag again, now zstd: its entry points at the new manifest, v2 is untouched
    const v2 = digestOf(dir, 'v2');
    await ok(stream(dir, '--compression', 'zstd'));
    expect(tagsOf(dir).sort()).toEqual([TAG, 'v2'].sort());
    expect(digestOf(dir, 'v2')).toBe(v2);
    expect(digestOf(dir, TAG)).not.toBe(first);
    expect(skopeoInspect(`oci:${dir}:${TAG}`).Digest).toBe(digestOf(dir, TAG));
    const copy = spawnSync('skopeo', ['copy', '-q', `oci:${dir}:v2`, `docker-archive:${join(tmp, 'v2.tar')}`], { encoding: 'utf8' });
    expect(copy.status, copy.stderr).toBe(0);
    expect(temps(dir)).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.includes('.nixreg-'))).toEqual([]);
  }, 120_000);

  it('writes into an empty directory', async () => {
    const dir = join(tmp, 'empty');
    mkdirSync(dir);
    await ok(stream(dir));
    expect(tagsOf(dir)).toEqual([TAG]);
    expect(readFileSync(join(dir, 'oci-layout'), 'utf8')).toBe('{"imageLayoutVersion": "1.0.0"}');
  }, 60_000);

  it('refuses a non-empty directory that is not a layout, with or without --force, and leaves it alone', async () => {
    const dir = join(tmp, 'notalayout');
    mkdirSync(dir);
    writeFileSync(join(dir, 'precious'), 'keep');
    for (const force of [[], ['--force']]) {
      const r = await nixreg(stream(dir, ...force));
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^nixreg: output .*notalayout is a non-empty directory that is not an OCI layout/);
      expect(readdirSync(dir)).toEqual(['precious']);
    }
  }, 60_000);

  it('reclaims temp directories and temp blobs of killed runs (dead PID), not those of live ones', async () => {
    const dir = join(tmp, 'reclaim');
    const dead = join(tmp, `.reclaim.nixreg-${deadPid()}-0123456789ab.tmp`);
    const live = join(tmp, `.reclaim.nixreg-${process.pid}-0123456789ab.tmp`);
    for (const d of [dead, live]) {
      mkdirSync(join(d, 'blobs', 'sha256'), { recursive: true });
      writeFileSync(join(d, 'blobs', 'sha256', 'x'), Buffer.alloc(4096));
    }
    await ok(stream(dir));
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    rmSync(live, { recursive: true });

    const staleBlob = join(dir, 'blobs', `.sha256.nixreg-${deadPid()}-0123456789ab.tmp`);
    writeFileSync(staleBlob, Buffer.alloc(4096));
    const before = sha(join(dir, 'index.json'));
    await ok(stream(dir));
    expect(existsSync(staleBlob)).toBe(false);
    expect(sha(join(dir, 'index.json'))).toBe(before); // the same image under the same tag: the same index
    expect(temps(dir)).toEqual([]);
  }, 120_000);
});
