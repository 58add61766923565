import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { makeImage, prng, pushTestImage, type Compression } from '../helpers/images.js';
import { layer } from '../helpers/export-layers.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';

/**
 * `nixreg export` end to end (needs a built dist/): the flattened tar, extracted with GNU tar, must give the same
 * tree as `umoci unpack` of the same image (types, modes, owners, mtimes, bytes, symlink targets, hard-link
 * identity), from a registry, a docker-archive and a streamLayeredImage conf; hostile layers must be refused.
 */

let reg: Distribution;
let work: string;
let storeRoot: string | undefined;

beforeAll(async () => {
  for (const t of ['skopeo', 'umoci', 'tar']) requireTool(t);
  work = mkdtempSync(join(tmpdir(), 'nixreg-export-'));
  reg = await startDistribution();
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (work) rmSync(work, { recursive: true, force: true });
});

function nixreg(...args: string[]) {
  const r = runCliSync(args, { cacheHome: join(work, 'cache') });
  return { status: r.status, stdout: r.stdoutBytes, stderr: r.stderr };
}
const skopeo = (...args: string[]) => execFileSync('skopeo', ['--insecure-policy', ...args], { stdio: 'pipe' });

/** umoci's view of an image reachable by skopeo: copy to an OCI layout, unpack, return the rootfs. */
function umociRootfs(skopeoSrc: string, name: string): string {
  const layout = join(work, `${name}-oci`);
  skopeo('copy', '-q', '--src-tls-verify=false', skopeoSrc, `oci:${layout}:x`);
  const bundle = join(work, `${name}-bundle`);
  execFileSync('umoci', ['unpack', '--image', `${layout}:x`, bundle], { stdio: 'pipe' });
  return join(bundle, 'rootfs');
}

function extract(tarFile: string, name: string): string {
  const dir = join(work, `${name}-tree`);
  mkdirSync(dir);
  // -P: GNU tar otherwise creates absolute symlinks as placeholders at the very end, which bumps their directory's
  // mtime after it was restored (nixreg's output has no absolute or ".." names, so -P changes nothing else).
  execFileSync('tar', ['-x', '--numeric-owner', '-p', '-P', '-f', tarFile, '-C', dir], { stdio: 'pipe' });
  return dir;
}

/** Everything observable about a tree, with hard-link identity as "which other paths share my inode". */
function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string[]>();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, p));
      const meta = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (st.isDirectory()) {
        out[p] = `dir ${meta} mtime=${Math.floor(st.mtimeMs / 1000)}`;
        walk(p);
      } else if (st.isSymbolicLink()) out[p] = `symlink -> ${readlinkSync(join(root, p))} uid=${st.uid} gid=${st.gid} mtime=${Math.floor(st.mtimeMs / 1000)}`;
      else if (st.isFile()) {
        const h = createHash('sha256')
          .update(readFileSync(join(root, p)))
          .digest('hex');
        out[p] = `file ${meta} mtime=${Math.floor(st.mtimeMs / 1000)} size=${st.size} sha256=${h}`;
        inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), p]);
      } else out[p] = `other ${meta}`;
    }
  };
  walk('');
  for (const group of inodes.values()) if (group.length > 1) for (const p of group) out[p] += ` links=${group.join(',')}`;
  return out;
}

/** Bottom to top: every rule export has to get right, in layers umoci can apply. */
function richLayers(): Buffer[] {
  const long = 'deep/' + 'd'.repeat(60) + '/' + 'n'.repeat(70) + '.txt'; // > 100 chars: PAX path
  return [
    layer(
      { d: 'etc', mode: 0o755, mtime: 11 },
      { f: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n', mtime: 12 },
      { f: 'etc/shadow', data: 'root:*:1::::::\n', mode: 0o600, mtime: 13 },
      { d: 'usr', mtime: 14 },
      { d: 'usr/bin', mtime: 15 },
      { f: 'usr/bin/tool', data: prng('tool', 200_000), mode: 0o755, uid: 1000, gid: 100, mtime: 16 },
      { h: 'usr/bin/tool-alias', to: 'usr/bin/tool' },
      { s: 'usr/bin/sh', to: 'tool' },
      { d: 'var', mtime: 17 },
      { d: 'var/cache', mode: 0o700, mtime: 18 },
      { f: 'var/cache/a', data: 'a' },
      { f: 'var/cache/b', data: 'b' },
      { d: 'opt', mode: 0o700, uid: 3, mtime: 19 },
      { f: 'opt/old', data: 'old' },
      { f: 'gone-file', data: 'gone' },
      { d: 'gone-dir' },
      { f: 'gone-dir/x', data: 'x' },
      { f: 'replaced-by-dir', data: 'was a file' },
      { d: 'replaced-by-file' },
      { f: 'replaced-by-file/inner', data: 'inner' },
      { f: 'shared', data: 'shared-old', mode: 0o640, mtime: 20 },
      { h: 'shared-link', to: 'shared' },
    ),
    layer(
      { f: '.wh.gone-file' },
      { f: '.wh.gone-dir' },
      { d: 'var/cache', mode: 0o755, mtime: 21 },
      { f: 'var/cache/.wh..wh..opq' },
      { f: 'var/cache/new', data: 'new' },
      { d: 'opt', mode: 0o751, uid: 5, gid: 6, mtime: 22 },
      { d: 'replaced-by-dir', mtime: 23 },
      { f: 'replaced-by-dir/child', data: 'child' },
      { f: 'replaced-by-file', data: 'now a file' },
      { h: 'late-link', to: 'etc/passwd' },
      { f: 'shared', data: 'shared-new' },
      { s: 'etc/localtime', to: '/usr/share/zoneinfo/UTC' },
      { d: 'deep', mtime: 24 },
      { d: 'deep/' + 'd'.repeat(60), mtime: 25 },
      { f: long, data: 'long name', mtime: 26 },
      { f: 'naïve résumé.txt', data: 'utf-8 name' },
    ),
    layer({ f: 'etc/passwd', data: 'root:x:0:0::/root:/bin/bash\nnix:x:1000:100::/:/bin/sh\n', mtime: 30 }, { f: 'etc/.wh.shadow' }),
  ];
}

async function push(repo: string, layers: Buffer[], c: Compression = 'gzip'): Promise<string> {
  await pushTestImage(
    reg.url,
    repo,
    makeImage(
      layers.map((tar) => ({ tar, c })),
      'oci',
    ),
    'v1',
  );
  return `${reg.host}/${repo}:v1`;
}

describe('nixreg export', () => {
  it('from a registry: same tree as umoci unpack, and byte-identical from a docker-archive of the same image', async () => {
    const ref = await push('export/rich', richLayers());
    const out = join(work, 'rich.tar');
    const r = nixreg('export', `docker://${ref}`, '--tls-verify=false', '-o', out);
    expect(r.stderr).toMatch(/^wrote /);
    expect(r.status).toBe(0);

    const ours = describeTree(extract(out, 'rich'));
    const theirs = describeTree(umociRootfs(`docker://${ref}`, 'rich'));
    expect(ours).toEqual(theirs);
    // spot checks that the comparison looked at what matters
    expect(ours['gone-file']).toBeUndefined();
    expect(ours['var/cache/a']).toBeUndefined();
    expect(ours.opt).toMatch(/^dir mode=751 uid=5 gid=6/);
    expect(ours['usr/bin/tool-alias']).toMatch(/links=usr\/bin\/tool,usr\/bin\/tool-alias/);
    expect(ours['late-link']).toMatch(/size=26 /); // the old passwd, not the replaced one
    expect(ours['shared-link']).toMatch(/^file mode=640 .* size=10 /);
    expect(Object.keys(ours).some((k) => k.includes('.wh.'))).toBe(false);

    // docker-archive of the same image (skopeo writes it): same layers, so the very same bytes
    const archive = join(work, 'rich-archive.tar');
    skopeo('copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `docker-archive:${archive}`);
    const out2 = join(work, 'rich-from-archive.tar');
    expect(nixreg('export', `docker-archive:${archive}`, '-o', out2).status).toBe(0);
    expect(readFileSync(out2).equals(readFileSync(out))).toBe(true);

    // the OCI layout skopeo wrote for umoci: same bytes again
    const out3 = join(work, 'rich-from-oci.tar');
    expect(nixreg('export', `oci:${join(work, 'rich-oci')}:x`, '-o', out3).status).toBe(0);
    expect(readFileSync(out3).equals(readFileSync(out))).toBe(true);

    // stdout gives the same bytes; an existing output is refused without --force
    const std = nixreg('export', `docker-archive:${archive}`, '-o', '-');
    expect(std.status).toBe(0);
    expect(Buffer.from(std.stdout).equals(readFileSync(out))).toBe(true);
    const again = nixreg('export', `docker-archive:${archive}`, '-o', out2);
    expect(again.stderr).toMatch(/already exists/);
    expect(again.status).toBe(2);
  }, 120_000);

  it('from a streamLayeredImage conf: same tree as umoci unpack of the streamed image, same bytes as its docker-archive', async () => {
    storeRoot = await buildStoreTree();
    const conf = join(FIXTURES, 'cases', 'a-defaults', 'conf.json');
    const out = join(work, 'conf.tar');
    const r = nixreg('export', `conf:${conf}`, '--store-root', storeRoot, '-o', out);
    expect(r.stderr).toMatch(/wrote /);
    expect(r.status).toBe(0);

    const image = join(work, 'conf-image.tar');
    expect(nixreg('stream', conf, '--store-root', storeRoot, '-o', image).status).toBe(0);
    const fromArchive = join(work, 'conf-from-archive.tar');
    expect(nixreg('export', image, '-o', fromArchive).status).toBe(0); // bare path: sniffed as docker-archive
    expect(readFileSync(fromArchive).equals(readFileSync(out))).toBe(true);

    const ours = describeTree(extract(out, 'conf'));
    const theirs = describeTree(umociRootfs(`docker-archive:${image}`, 'conf'));
    expect(ours).toEqual(theirs);
    // the comparison covered the awkward fixture closure: store paths, UTF-8 names, long names, symlinks
    expect(Object.keys(ours).filter((k) => k.startsWith('nix/store/')).length).toBeGreaterThan(100);
    expect(Object.keys(ours).some((k) => k.endsWith('naïve-résumé.txt'))).toBe(true);
    expect(Object.values(ours).filter((v) => v.startsWith('symlink')).length).toBeGreaterThan(10);
  }, 120_000);

  describe('hostile layers: non-zero exit, the entry named, no output file, nothing written outside', () => {
    const cases: Array<[string, Buffer[], RegExp]> = [
      ['dotdot', [layer({ f: '../../escaped-by-dotdot', data: 'x' })], /"\.\.\/\.\.\/escaped-by-dotdot" has a "\.\." component/],
      [
        'symlink-parent',
        [layer({ s: 'a', to: '/tmp' }), layer({ f: 'a/escaped-by-symlink', data: 'x' })],
        /entry "a" is a symlink, but "a\/escaped-by-symlink"/,
      ],
      [
        'symlink-parent-same-layer',
        [layer({ s: 'a', to: '..' }, { f: 'a/escaped-by-symlink', data: 'x' })],
        /"a\/escaped-by-symlink" lies under "a", which is a symlink/,
      ],
      [
        'hardlink-escape',
        [layer({ f: 'ok', data: 'x' }, { h: 'l', to: '../../../etc/passwd' })],
        /entry "l" is a hard link to "\.\.\/\.\.\/\.\.\/etc\/passwd"/,
      ],
    ];
    for (const [name, layers, message] of cases) {
      it(name, async () => {
        const ref = await push(`export/hostile-${name}`, layers);
        const dir = join(work, `hostile-${name}`);
        mkdirSync(dir);
        const out = join(dir, 'fs.tar');
        const r = nixreg('export', `docker://${ref}`, '--tls-verify=false', '-o', out);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).toMatch(/layer \d\/\d \(sha256:[0-9a-f]{64}\)/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(readdirSync(dir)).toEqual([]);
        expect(existsSync(join(work, 'escaped-by-dotdot'))).toBe(false);
        const std = nixreg('export', `docker://${ref}`, '--tls-verify=false', '-o', '-');
        expect(std.status).not.toBe(0);
        expect(std.stderr).toMatch(message);
        expect(existsSync('/tmp/escaped-by-symlink')).toBe(false);
      }, 60_000);
    }
  });
});
