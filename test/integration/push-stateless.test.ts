import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// A fresh CI runner (empty XDG_CACHE_HOME) pushing an image the registry already holds: the destination's previous
// image maps each diffID to its blob, so only changed layers are compressed and uploaded. Against Debian's
// distribution 2.8; uploads are counted from the registry's own access log. Runs the built CLI (bin/nixreg.js).
const repoRoot = join(import.meta.dirname, '../..');
const CASE = join(FIXTURES, 'cases/a-defaults');
const expected = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { layers: Array<{ diffID: string; paths: string[] }> };
const LAYERS = expected.layers.length;

let storeRoot: string;
let tmp: string;
let reg: Distribution;
let caches = 0;

interface Pushed {
  digest: string;
  layers: Array<{ diffID: string; digest: string; status: string; from?: string }>;
  stats: { exists: number; mounted: number; uploaded: number; layersGenerated: number };
}

/** The CLI with a new, empty cache directory every time (a fresh CI runner). */
function nixreg(args: string[]) {
  const cache = join(tmp, `cache-${++caches}`);
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn('node', [join(repoRoot, 'bin/nixreg.js'), ...args], { env: { ...process.env, XDG_CACHE_HOME: cache } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function push(dest: string, ...extra: string[]): Promise<{ result: Pushed; stderr: string }> {
  const r = await nixreg([
    'push',
    join(CASE, 'conf.json'),
    `docker://${reg.host}/${dest}`,
    '--store-root',
    storeRoot,
    '--tls-verify=false',
    '--json',
    ...extra,
  ]);
  expect(r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
  expect(r.status).toBe(0);
  return { result: JSON.parse(r.stdout) as Pushed, stderr: r.stderr };
}

const logEnd = () => readFileSync(reg.logFile, 'utf8').length;
/** Access-log lines of blob-upload requests since `from`. */
function uploadLines(from: number): string[] {
  return readFileSync(reg.logFile, 'utf8')
    .slice(from)
    .split('\n')
    .filter((l) => /"(POST|PATCH|PUT) \/v2\/[^ ]*\/blobs\/uploads\//.test(l));
}
const patches = (lines: string[]) => lines.filter((l) => l.includes('"PATCH ')).length;
const mounts = (lines: string[]) => lines.filter((l) => /"POST [^"]*mount=[^"]*" 201 /.test(l)).length;

let first: Pushed;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-stateless-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  first = (await push('fixture/app:1')).result;
  expect(first.stats.uploaded).toBe(LAYERS);
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('push with an empty cache to a registry that has the image', () => {
  it('uploads nothing and gives the same manifest digest', async () => {
    const before = logEnd();
    const { result } = await push('fixture/app:1');
    expect(patches(uploadLines(before))).toBe(0);
    expect(result.digest).toBe(first.digest);
    expect(result.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest));
    expect(result.stats).toMatchObject({ uploaded: 0, exists: LAYERS });
  }, 120_000);

  it('--no-registry-cache uploads every layer again, as without the map', async () => {
    const before = logEnd();
    const { result } = await push('fixture/app:1', '--no-registry-cache');
    expect(result.stats.uploaded).toBe(LAYERS);
    expect(patches(uploadLines(before))).toBe(LAYERS);
    expect(result.digest).toBe(first.digest);
  }, 120_000);

  it('--cache-from another repository mounts its blobs instead of uploading them', async () => {
    const before = logEnd();
    const { result } = await push('elsewhere/app:1', '--cache-from', `docker://${reg.host}/fixture/app:1`);
    const lines = uploadLines(before);
    expect(result.digest).toBe(first.digest);
    expect(result.stats).toMatchObject({ uploaded: 0, mounted: LAYERS });
    expect(result.layers.every((l) => l.from === 'fixture/app')).toBe(true);
    expect(mounts(lines)).toBe(LAYERS);
    expect(patches(lines)).toBe(1); // the config: mounts are for layers only
  }, 120_000);

  it('a tag that does not exist yet: one debug line, and the push goes on as without the map', async () => {
    const before = logEnd();
    const { result, stderr } = await push('fresh/app:1', '--debug');
    expect(result.stats.uploaded).toBe(LAYERS);
    expect(patches(uploadLines(before))).toBe(LAYERS + 1);
    expect(stderr.split('\n').filter((l) => /previous image fresh\/app:1 not read/.test(l))).toHaveLength(1);
  }, 120_000);

  it('an image compressed with zstd is not reused for a gzip push', async () => {
    await push('zst/app:1', '--format', 'oci', '--compression', 'zstd');
    const before = logEnd();
    const { result } = await push('zst/app:1', '--format', 'oci');
    expect(result.stats).toMatchObject({ uploaded: LAYERS, layersGenerated: LAYERS }); // no diffID pass for a map with no gzip blob
    expect(patches(uploadLines(before))).toBe(LAYERS); // the config (diff_ids only) is the zstd image's
    expect(result.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest)); // the same gzip bytes
    // and now that the tag names the OCI gzip image, a fresh runner reuses all of it
    const again = logEnd();
    expect((await push('zst/app:1', '--format', 'oci')).result.stats.uploaded).toBe(0);
    expect(patches(uploadLines(again))).toBe(0);
  }, 120_000);

  it('a blob the registry lost is uploaded again', async () => {
    await push('lost/app:1', '--cache-from', `docker://${reg.host}/fixture/app:1`);
    const gone = first.layers[3]!.digest;
    const del = await fetch(`${reg.url}/v2/lost/app/blobs/${gone}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const before = logEnd();
    const { result } = await push('lost/app:1');
    const lines = uploadLines(before);
    expect(result.digest).toBe(first.digest);
    expect(result.layers.map((l) => l.status)).toEqual(first.layers.map((l) => (l.digest === gone ? 'uploaded' : 'exists')));
    expect(patches(lines)).toBe(1);
    expect((await fetch(`${reg.url}/v2/lost/app/blobs/${gone}`, { method: 'HEAD' })).status).toBe(200);
  }, 120_000);

  it('--platform-conf: a fresh runner reads every platform of the index and uploads nothing', async () => {
    const conf = JSON.parse(readFileSync(join(CASE, 'conf.json'), 'utf8'));
    const armConf = join(tmp, 'conf-arm64.json');
    // its first two store paths in one layer: a layer the amd64 image does not have
    const [a, b, ...rest] = conf.store_layers as string[][];
    writeFileSync(armConf, JSON.stringify({ ...conf, architecture: 'arm64', store_layers: [[...a!, ...b!], ...rest] }));
    const args = [
      'push',
      `docker://${reg.host}/multi/app:1`,
      '--platform-conf',
      `linux/amd64=${join(CASE, 'conf.json')}`,
      '--platform-conf',
      `linux/arm64=${armConf}`,
    ];
    const run = async () => {
      const r = await nixreg([...args, '--store-root', storeRoot, '--tls-verify=false', '--json']);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout) as { digest: string; stats: { uploaded: number } };
    };
    const index = await run();
    const before = logEnd();
    const again = await run();
    expect(again.digest).toBe(index.digest);
    expect(again.stats.uploaded).toBe(0);
    expect(patches(uploadLines(before))).toBe(0);
    // the index is read once for both platforms (the arm64 image's first layer is not in the cache the amd64 push filled)
    const indexReads = readFileSync(reg.logFile, 'utf8')
      .slice(before)
      .split('\n')
      .filter((l) => l.includes('"GET /v2/multi/app/manifests/1 '));
    expect(indexReads).toHaveLength(1);
  }, 120_000);

  it('a docker-archive source: a fresh runner uploads nothing', async () => {
    const archive = join(tmp, 'image.tar');
    const s = await nixreg(['stream', join(CASE, 'conf.json'), '--store-root', storeRoot, '-o', archive]);
    expect(s.status, s.stderr).toBe(0);
    const run = async () => {
      const r = await nixreg(['push', `docker-archive:${archive}`, `docker://${reg.host}/archive/app:1`, '--tls-verify=false', '--json']);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Pushed;
    };
    const one = await run();
    const before = logEnd();
    const two = await run();
    expect(two.digest).toBe(one.digest);
    expect(two.stats).toMatchObject({ uploaded: 0, exists: LAYERS });
    expect(patches(uploadLines(before))).toBe(0);
  }, 120_000);

  it('concurrent fresh runners pushing to the same tag and to a --cache-from repository agree', async () => {
    const before = logEnd();
    const [a, b, c] = await Promise.all([
      push('fixture/app:1'),
      push('fixture/app:1', '--additional-tag', 'two'),
      push('parallel/app:1', '--cache-from', `docker://${reg.host}/fixture/app:1`),
    ]);
    for (const r of [a, b, c]) {
      expect(r.result.digest).toBe(first.digest);
      expect(r.result.stats.uploaded).toBe(0);
    }
    expect(patches(uploadLines(before))).toBe(1); // parallel/app's config
    const got = await fetch(`${reg.url}/v2/parallel/app/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(got.headers.get('docker-content-digest')).toBe(first.digest);
  }, 120_000);

  it('after one store path changes, exactly that layer is uploaded', async () => {
    const settings = expected.layers.findIndex((l) => l.paths.length === 1 && l.paths[0]!.endsWith('-fx-settings.conf'));
    const file = join(storeRoot, expected.layers[settings]!.paths[0]!);
    const mode = statSync(file).mode & 0o7777;
    chmodSync(file, 0o644);
    writeFileSync(file, 'changed = true\n');
    chmodSync(file, mode);
    const before = logEnd();
    const { result } = await push('fixture/app:1');
    const lines = uploadLines(before);
    expect(result.layers.map((l) => l.status)).toEqual(first.layers.map((_, i) => (i === settings ? 'uploaded' : 'exists')));
    expect(result.layers[settings]!.diffID).not.toBe(expected.layers[settings]!.diffID);
    expect(patches(lines)).toBe(2); // that layer and the new config
  }, 120_000);
});
