import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { NIXREG_BIN, cliWithCache } from '../helpers/cli.js';

// `nixreg stream --format oci|oci-archive` (and `nixreg build --format oci`): deterministic layouts whose blobs and
// manifest are exactly what `nixreg push --format oci` uploads, readable by Debian's skopeo and umoci.
// Runs the built CLI (dist/ must be built: `npx tsc -p tsconfig.json`; npm test does it).
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');
const TAG = 'case-a';

let storeRoot: string;
let tmp: string;
let reg: Distribution;

const { nixreg, ok } = cliWithCache(() => join(tmp, 'cache'));

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const stream = (...extra: string[]) => ['stream', CONF, '--store-root', storeRoot, ...extra];
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const blob = (dir: string, digest: string) => readFileSync(join(dir, 'blobs/sha256', digest.slice(7)));

/** All files of a tree: relative path → type, mode bits and content hash (symlink target). */
function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(root, r))}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        walk(r);
      } else
        out[r] = `file ${mode} ${createHash('sha256')
          .update(readFileSync(join(root, r)))
          .digest('hex')}`;
    }
  };
  walk('');
  return out;
}

beforeAll(async () => {
  requireTool('skopeo');
  requireTool('umoci');
  requireTool('zstd');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-formats-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  await ok(stream('-o', join(tmp, 'image.tar')));
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('nixreg stream --format oci', () => {
  it('writes a layout skopeo reads, with index.json exactly as skopeo writes it', async () => {
    const dir = join(tmp, 'oci-gzip');
    await ok(stream('--format', 'oci', '-o', dir));
    expect(readFileSync(join(dir, 'oci-layout'), 'utf8')).toBe('{"imageLayoutVersion": "1.0.0"}');
    const index = readJson(join(dir, 'index.json'));
    // compare with skopeo's own layout of the same image (copied from our docker-archive)
    run('skopeo', ['copy', '-q', `docker-archive:${join(tmp, 'image.tar')}`, `oci:${join(tmp, 'skopeo-oci')}:${TAG}`]);
    const theirs = readJson(join(tmp, 'skopeo-oci', 'index.json'));
    expect(Object.keys(index)).toEqual(Object.keys(theirs));
    expect(Object.keys(index.manifests[0])).toEqual(Object.keys(theirs.manifests[0]));
    expect(index.manifests[0].annotations).toEqual(theirs.manifests[0].annotations);
    const inspect = JSON.parse(run('skopeo', ['inspect', `oci:${dir}:${TAG}`]));
    expect(inspect.Digest).toBe(index.manifests[0].digest);
    // the uncompressed layers are the docker-archive's: skopeo back to docker-archive gives the same diffIDs
    run('skopeo', ['copy', '-q', `oci:${dir}:${TAG}`, `docker-archive:${join(tmp, 'back.tar')}`]);
    const diffIDs = (p: string) => JSON.parse(run('skopeo', ['inspect', '--config', `docker-archive:${p}`])).rootfs.diff_ids;
    expect(diffIDs(join(tmp, 'back.tar'))).toEqual(diffIDs(join(tmp, 'image.tar')));
    // and the config blob is byte-identical to the docker-archive's config member
    const manifest = JSON.parse(blob(dir, index.manifests[0].digest).toString());
    const configHex = manifest.config.digest.slice(7);
    const member = run('tar', ['-xOf', join(tmp, 'image.tar'), `${configHex}.json`]);
    expect(Buffer.from(member).equals(blob(dir, manifest.config.digest))).toBe(true);
  }, 60_000);

  it('is deterministic (same bytes with and without the layer cache) for gzip, zstd and none', async () => {
    for (const c of ['gzip', 'zstd', 'none']) {
      const a = join(tmp, `det-${c}-a`);
      const b = join(tmp, `det-${c}-b`);
      await ok(stream('--format', 'oci', '--compression', c, '-o', a));
      await ok(stream('--format', 'oci', '--compression', c, '-o', b, '--no-cache'));
      expect(treeOf(b)).toEqual(treeOf(a));
      const m = JSON.parse(blob(a, readJson(join(a, 'index.json')).manifests[0].digest).toString());
      const want = {
        gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
        zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
        none: 'application/vnd.oci.image.layer.v1.tar',
      }[c];
      expect(new Set(m.layers.map((l: { mediaType: string }) => l.mediaType))).toEqual(new Set([want]));
      for (const l of m.layers) {
        const bytes = blob(a, l.digest);
        expect(bytes.length).toBe(l.size);
        expect('sha256:' + createHash('sha256').update(bytes).digest('hex')).toBe(l.digest);
      }
    }
  }, 60_000);

  it('umoci unpacks it to the same tree as skopeo’s layout of the docker-archive', async () => {
    const dir = join(tmp, 'oci-gzip');
    const mine = join(tmp, 'umoci-mine');
    const theirs = join(tmp, 'umoci-theirs');
    run('umoci', ['unpack', '--rootless', '--image', `${dir}:${TAG}`, mine]);
    run('umoci', ['unpack', '--rootless', '--image', `${join(tmp, 'skopeo-oci')}:${TAG}`, theirs]);
    const t = treeOf(join(mine, 'rootfs'));
    expect(Object.keys(t).length).toBeGreaterThan(10);
    expect(Object.keys(t).some((p) => p.startsWith('nix/store/'))).toBe(true);
    expect(t).toEqual(treeOf(join(theirs, 'rootfs')));
  }, 60_000);

  for (const c of ['gzip', 'zstd']) {
    it(`has exactly the manifest and blobs nixreg push --format oci --compression ${c} uploads`, async () => {
      const dir = join(tmp, `det-${c}-a`);
      const index = readJson(join(dir, 'index.json'));
      const r = await ok([
        'push',
        CONF,
        `docker://${reg.host}/formats/${c}:v1`,
        '--store-root',
        storeRoot,
        '--tls-verify=false',
        '--json',
        '--format',
        'oci',
        '--compression',
        c,
      ]);
      const pushed = JSON.parse(r.stdout.toString());
      expect(pushed.digest).toBe(index.manifests[0].digest);
      const manifest = JSON.parse(blob(dir, index.manifests[0].digest).toString());
      expect(pushed.layers.map((l: { digest: string }) => l.digest)).toEqual(manifest.layers.map((l: { digest: string }) => l.digest));
      expect(pushed.config.digest).toBe(manifest.config.digest);
    }, 60_000);
  }

  it('into an existing layout, the same tag again replaces only its index entry (as skopeo oci:DIR:TAG)', async () => {
    const dir = join(tmp, 'oci-gzip');
    await ok(stream('--format', 'oci', '--compression', 'zstd', '-o', dir));
    expect(readJson(join(dir, 'index.json'))).toEqual(readJson(join(tmp, 'det-zstd-a', 'index.json')));
    for (const [name, entry] of Object.entries(treeOf(join(tmp, 'det-zstd-a')))) expect(treeOf(dir)[name]).toBe(entry);
    expect(readdirSync(tmp).filter((n) => n.includes('.nixreg-'))).toEqual([]);
  }, 60_000);

  it('fails with one line and leaves nothing when a store path is missing', async () => {
    const dir = join(tmp, 'oci-missing');
    const r = await nixreg(['stream', CONF, '--store-root', join(tmp, 'nowhere'), '--format', 'oci', '-o', dir]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(dir)).toBe(false);
  });

  it('rejects flag combinations that do not apply', async () => {
    for (const args of [
      ['--format', 'oci'],
      ['--format', 'oci', '-o', '-'],
      ['--compression', 'zstd', '-o', join(tmp, 'x.tar')],
      ['--format', 'oci-archive', '--compress', 'gz', '-o', join(tmp, 'x.tar')],
      ['--format', 'oci', '--compression', 'gzip', '--compression-level', '12', '-o', join(tmp, 'x')],
    ]) {
      const r = await nixreg(stream(...args));
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^nixreg: /);
    }
    expect(existsSync(join(tmp, 'x.tar')) || existsSync(join(tmp, 'x'))).toBe(false);
  });
});

describe('nixreg stream --format oci-archive', () => {
  it('is the layout as a tar: same blobs, readable by skopeo, same bytes to a file, a pipe and a redirected stdout', async () => {
    const file = join(tmp, 'oci.tar');
    await ok(stream('--format', 'oci-archive', '-o', file));
    const bytes = readFileSync(file);
    const piped = await ok(stream('--format', 'oci-archive'));
    expect(piped.stdout.equals(bytes)).toBe(true);
    const redirected = join(tmp, 'redirected.tar');
    const r = spawnSync(
      'sh',
      [
        '-c',
        `node "${NIXREG_BIN}" ${stream('--format', 'oci-archive')
          .map((a) => `'${a}'`)
          .join(' ')} > '${redirected}'`,
      ],
      {
        env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') },
      },
    );
    expect(r.status).toBe(0);
    expect(readFileSync(redirected).equals(bytes)).toBe(true);
    const x = join(tmp, 'oci-tar-x');
    run('mkdir', ['-p', x]);
    run('tar', ['-xf', file, '-C', x]);
    // same names and bytes (modes differ: a tar entry carries its own, 0444 here)
    const contents = (root: string) => Object.fromEntries(Object.entries(treeOf(root)).map(([k, v]) => [k, v.split(' ').pop()]));
    expect(contents(join(x, 'blobs'))).toEqual(contents(join(tmp, 'oci-gzip-again', 'blobs')));
    expect(readFileSync(join(x, 'index.json')).equals(readFileSync(join(tmp, 'oci-gzip-again', 'index.json')))).toBe(true);
    const inspect = JSON.parse(run('skopeo', ['inspect', `oci-archive:${file}:${TAG}`]));
    expect(inspect.Digest).toBe(readJson(join(x, 'index.json')).manifests[0].digest);
  }, 60_000);
});

describe('nixreg build --format', () => {
  const APP = '/nix/store/d94304fm706b2mkza86j45vp228azj68-fx-app-3.0';
  const build = (...extra: string[]) => [
    'build',
    '--name',
    'fx/app:1',
    '--path',
    APP,
    '--graph',
    join(FIXTURES, 'layering/a-auto-default-100.json'),
    '--store-root',
    storeRoot,
    ...extra,
  ];

  it('writes the same layout as stream for the conf it builds (one pipeline)', async () => {
    const dir = join(tmp, 'build-oci');
    const conf = join(tmp, 'build-conf.json');
    await ok(build('--format', 'oci', '--compression', 'zstd', '-o', dir, '--write-conf', conf));
    const viaStream = join(tmp, 'build-oci-stream');
    await ok(['stream', conf, '--store-root', storeRoot, '--format', 'oci', '--compression', 'zstd', '-o', viaStream]);
    expect(treeOf(dir)).toEqual(treeOf(viaStream));
    expect(JSON.parse(run('skopeo', ['inspect', `oci:${dir}:1`])).Layers.length).toBeGreaterThan(2);
  }, 60_000);

  it('to a redirected stdout writes the same bytes as -o FILE (seekable-stdout path); --compress gz gzips exactly those bytes', async () => {
    const file = join(tmp, 'build.tar');
    await ok(build('-o', file, '--no-cache'));
    const redirected = join(tmp, 'build-redirected.tar');
    const r = spawnSync('sh', [
      '-c',
      `node "${NIXREG_BIN}" ${build('-o', '-', '--no-cache')
        .map((a) => `'${a}'`)
        .join(' ')} > '${redirected}'`,
    ]);
    expect(r.status, r.stderr?.toString()).toBe(0);
    expect(readFileSync(redirected).equals(readFileSync(file))).toBe(true);
    const gz = join(tmp, 'build.tar.gz');
    await ok(build('-o', gz, '--compress', 'gz'));
    expect(gunzipSync(readFileSync(gz)).equals(readFileSync(file))).toBe(true);
  }, 60_000);
});

// runs before the oci-archive test uses it (vitest runs describe blocks in order)
beforeAll(async () => {
  await ok(stream('--format', 'oci', '-o', join(tmp, 'oci-gzip-again')));
}, 60_000);
