import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { cliWithCache } from '../helpers/cli.js';
import { zstdFrames } from '../helpers/zstd-frames.js';

// Whole-archive compression (`--compress gz|zstd`, buildLayeredImage's `compressor`) on stream, build and pull, and
// compressed docker-archives (gzip, zstd) as inputs: conf.from_image and push sources.
// Runs the built CLI (dist/ must be built: `npx tsc -p tsconfig.json`; npm test does it).
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');

let storeRoot: string;
let tmp: string;
let reg: Distribution;
let plain: Buffer;

const { nixreg, ok } = cliWithCache(() => join(tmp, 'cache'));

function zstd(args: string[], input: Buffer): Buffer {
  const r = spawnSync('zstd', args, { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`zstd ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  requireTool('zstd');
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-compressed-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  await ok(['stream', CONF, '--store-root', storeRoot, '-o', join(tmp, 'image.tar')]);
  plain = readFileSync(join(tmp, 'image.tar'));
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('--compress on docker-archive outputs', () => {
  it('stream --compress gz: deterministic gzip of the plain archive (fixed header: no name, MTIME 0, OS 255), file = pipe', async () => {
    const file = join(tmp, 'image.tar.gz');
    await ok(['stream', CONF, '--store-root', storeRoot, '--compress', 'gz', '-o', file]);
    const bytes = readFileSync(file);
    expect(gunzipSync(bytes).equals(plain)).toBe(true);
    expect(bytes.subarray(0, 10).equals(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]) /* XFL 4: level 1 */)).toBe(true);
    const piped = await ok(['stream', CONF, '--store-root', storeRoot, '--compress', 'gz', '--no-cache']);
    expect(piped.stdout.equals(bytes)).toBe(true);
  }, 60_000);

  it('stream --compress zstd: 4 MiB frames of the pinned WebAssembly zstd over the plain archive, file = pipe', async () => {
    const file = join(tmp, 'image.tar.zst');
    await ok(['stream', CONF, '--store-root', storeRoot, '--compress', 'zstd', '-o', file]);
    const bytes = readFileSync(file);
    expect(zstd(['-dc'], bytes).equals(plain)).toBe(true);
    expect(bytes.equals((await zstdFrames(plain)).bytes)).toBe(true);
    const piped = await ok(['stream', CONF, '--store-root', storeRoot, '--compress', 'zstd']);
    expect(piped.stdout.equals(bytes)).toBe(true);
  }, 60_000);

  it('rejects an unknown --compress value with a usage error and no file', async () => {
    const file = join(tmp, 'bad.tar.xz');
    const r = await nixreg(['stream', CONF, '--store-root', storeRoot, '--compress', 'xz', '-o', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--compress must be none, gz or zstd/);
    expect(existsSync(file)).toBe(false);
  });
});

describe('compressed docker-archives as inputs', () => {
  const FROM = '/nix/store/0s4i1bq60i9fcsxs47m68xcblfvb40jg-docker-image-nixreg-fixture-base-1.0.tar';

  it('conf.from_image may be plain, gzip or zstd: the same image comes out', async () => {
    const conf = JSON.parse(readFileSync(join(FIXTURES, 'cases/f-from-image/conf.json'), 'utf8'));
    expect(conf.from_image).toBe(FROM);
    const base = readFileSync(join(storeRoot, FROM));
    writeFileSync(join(storeRoot, `${FROM}.gz`), gzipSync(base));
    writeFileSync(join(storeRoot, `${FROM}.zst`), zstd(['-q', '-c'], base));
    const outputs: Buffer[] = [];
    for (const suffix of ['', '.gz', '.zst']) {
      const c = join(tmp, `from${suffix || '.tar'}.json`);
      writeFileSync(c, JSON.stringify({ ...conf, from_image: FROM + suffix }));
      outputs.push((await ok(['stream', c, '--store-root', storeRoot])).stdout);
    }
    const exp = JSON.parse(readFileSync(join(FIXTURES, 'cases/f-from-image/expected.json'), 'utf8'));
    expect(sha(outputs[0]!)).toBe(exp.output.sha256);
    expect(outputs[1]!.equals(outputs[0]!)).toBe(true);
    expect(outputs[2]!.equals(outputs[0]!)).toBe(true);
  }, 60_000);

  it('a corrupt zstd from_image is one clear error', async () => {
    const bad = zstd(['-q', '-c'], plain).subarray(0, 200);
    writeFileSync(join(storeRoot, '/nix/store/bad-zstd.tar.zst'), bad);
    const conf = JSON.parse(readFileSync(join(FIXTURES, 'cases/f-from-image/conf.json'), 'utf8'));
    const c = join(tmp, 'bad-from.json');
    writeFileSync(c, JSON.stringify({ ...conf, from_image: '/nix/store/bad-zstd.tar.zst' }));
    const r = await nixreg(['stream', c, '--store-root', storeRoot, '-o', join(tmp, 'bad-from.tar')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/from_image \/nix\/store\/bad-zstd\.tar\.zst/);
    expect(existsSync(join(tmp, 'bad-from.tar'))).toBe(false);
  });

  it('push accepts plain, gzip and zstd docker-archives: same manifest digest', async () => {
    const digests: string[] = [];
    for (const f of ['image.tar', 'image.tar.gz', 'image.tar.zst']) {
      const r = await ok(['push', join(tmp, f), `docker://${reg.host}/compressed/in:${f.replace(/\./g, '-')}`, '--tls-verify=false', '--json']);
      digests.push(JSON.parse(r.stdout.toString()).digest);
    }
    expect(digests[0]).toMatch(/^sha256:/);
    expect(new Set(digests).size).toBe(1);
  }, 60_000);
});

describe('export of compressed docker-archives', () => {
  it('gzip and zstd archives export the same root filesystem tar as the plain one', async () => {
    const out = (f: string) => join(tmp, `export-${f}.tar`);
    for (const f of ['image.tar', 'image.tar.gz', 'image.tar.zst']) await ok(['export', join(tmp, f), '-o', out(f)]);
    const plainFs = readFileSync(out('image.tar'));
    expect(plainFs.length).toBeGreaterThan(10240);
    expect(readFileSync(out('image.tar.gz')).equals(plainFs)).toBe(true);
    expect(readFileSync(out('image.tar.zst')).equals(plainFs)).toBe(true);
  }, 60_000);
});

describe('nixreg pull --compress', () => {
  it('writes the compressed archive; --sha256 pins the uncompressed archive', async () => {
    const r = await ok(['push', join(tmp, 'image.tar'), `docker://${reg.host}/compressed/pull:v1`, '--tls-verify=false', '--json']);
    const digest = JSON.parse(r.stdout.toString()).digest as string;
    const pull = (out: string, ...extra: string[]) =>
      nixreg(['pull', `${reg.host}/compressed/pull`, '--digest', digest, '-o', out, '--tls-verify=false', '--quiet', ...extra]);
    const plainOut = join(tmp, 'pulled.tar');
    expect((await pull(plainOut)).status).toBe(0);
    const pulled = readFileSync(plainOut);
    const hash = `sha256-${createHash('sha256').update(pulled).digest('base64')}`;
    const gz = join(tmp, 'pulled.tar.gz');
    const g = await pull(gz, '--compress', 'gz', '--hash', hash);
    expect(g.status, g.stderr).toBe(0);
    expect(gunzipSync(readFileSync(gz)).equals(pulled)).toBe(true);
    const zst = join(tmp, 'pulled.tar.zst');
    expect((await pull(zst, '--compress', 'zstd', '--hash', hash)).status).toBe(0);
    expect(zstd(['-dc'], readFileSync(zst)).equals(pulled)).toBe(true);
    expect(readFileSync(zst).equals((await zstdFrames(pulled)).bytes)).toBe(true);
    // a wrong pin: integrity error, no file (and no temp file) left
    const wrong = join(tmp, 'wrong.tar.gz');
    const w = await pull(wrong, '--compress', 'gz', '--hash', `sha256-${Buffer.alloc(32).toString('base64')}`);
    expect(w.status).toBe(5);
    expect(existsSync(wrong)).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.includes('.nixreg-'))).toEqual([]);
    // to stdout
    const s = await nixreg(['pull', `${reg.host}/compressed/pull`, '--digest', digest, '-o', '-', '--tls-verify=false', '--quiet', '--compress', 'gz']);
    expect(s.status).toBe(0);
    expect(s.stdout.equals(readFileSync(gz))).toBe(true);
  }, 60_000);
});
