import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';

// `nixreg build --single-layer` (buildImage's shape) over a real Nix closure: skopeo must see one layer, umoci must
// unpack the store paths, the root links and the overlay files, and a second build must give the same bytes.
const nixreg = (...args: string[]) => runCliSync(args);

const closure = `
  lib = mk "nixreg-sl-lib-1.0" "mkdir -p $out/lib && echo libdata > $out/lib/libtest.so.1 && ln -s libtest.so.1 $out/lib/libtest.so";
  app = mk "nixreg-sl-app-1.0" "mkdir -p $out/bin $out/etc/ssl && printf '#!/bin/sh\\\\necho \${lib}\\\\n' > $out/bin/hello && chmod 555 $out/bin/hello && echo store > $out/etc/app.conf && echo pem > $out/etc/ssl/cert.pem";
`;

let tmp: string;
let app: string;
let overlay: string;
const requisites = () => execFileSync('nix-store', ['--query', '--requisites', app], { encoding: 'utf8' }).trim().split('\n').sort();

beforeAll(() => {
  for (const t of ['nix-build', 'nix-store', 'skopeo', 'umoci', 'tar']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-single-layer-'));
  app = buildTestClosure(tmp, closure);
  // extraCommands-style tree: a new file beside a store-linked dir, a file overriding a root's file, a symlink, an empty dir
  overlay = join(tmp, 'overlay');
  mkdirSync(join(overlay, 'etc'), { recursive: true });
  mkdirSync(join(overlay, 'tmp'), { mode: 0o1777 });
  writeFileSync(join(overlay, 'etc/motd'), 'welcome\n');
  writeFileSync(join(overlay, 'etc/app.conf'), 'from overlay\n');
  symlinkSync('/bin/hello', join(overlay, 'entrypoint'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const build = (out: string, ...extra: string[]) =>
  nixreg(
    'build',
    '--single-layer',
    '--name',
    'nixreg/single:v1',
    '--path',
    app,
    '--overlay',
    overlay,
    '--cmd',
    `${app}/bin/hello`,
    '--uid',
    '1000',
    '--gid',
    '100',
    '-o',
    out,
    ...extra,
  );

describe('nixreg build --single-layer with real Nix', () => {
  it('puts roots, overlay and the whole closure in one layer that skopeo and umoci read back', () => {
    const image = join(tmp, 'image.tar');
    const r = build(image);
    expect(r.stderr).toContain('Done.');
    expect(r.status).toBe(0);

    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${image}`], { encoding: 'utf8' }));
    expect(info.Layers).toHaveLength(1);
    const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${image}`], { encoding: 'utf8' }));
    expect(cfg.config.Cmd).toEqual([`${app}/bin/hello`]);
    expect(cfg.rootfs.diff_ids).toEqual(info.Layers);

    const oci = join(tmp, 'oci');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${image}`, `oci:${oci}:v1`]);
    const bundle = join(tmp, 'bundle');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${oci}:v1`, bundle], { stdio: 'ignore' });
    const rootfs = join(bundle, 'rootfs');

    // every store path of the closure, byte for byte
    for (const p of requisites()) expect(existsSync(join(rootfs, p)), p).toBe(true);
    expect(readFileSync(join(rootfs, app, 'bin/hello')).equals(readFileSync(join(app, 'bin/hello')))).toBe(true);
    const lib = requisites().find((p) => p.endsWith('-nixreg-sl-lib-1.0'))!;
    expect(readlinkSync(join(rootfs, lib, 'lib/libtest.so'))).toBe('libtest.so.1');
    // roots linked into / like `contents`; /etc became a real dir because the overlay writes into it
    expect(readlinkSync(join(rootfs, 'bin'))).toBe(`${app}/bin`);
    expect(lstatSync(join(rootfs, 'etc')).isDirectory()).toBe(true);
    expect(readlinkSync(join(rootfs, 'etc/ssl'))).toBe(`${app}/etc/ssl`);
    // overlay on top
    expect(readFileSync(join(rootfs, 'etc/motd')).equals(Buffer.from('welcome\n'))).toBe(true);
    expect(readFileSync(join(rootfs, 'etc/app.conf')).equals(Buffer.from('from overlay\n'))).toBe(true);
    expect(readlinkSync(join(rootfs, 'entrypoint'))).toBe('/bin/hello');
    expect(lstatSync(join(rootfs, 'tmp')).isDirectory()).toBe(true);

    // ownership as buildImage: root entries --uid/--gid, store 0:0 and /nix, /nix/store 0555
    const layer = join(tmp, 'layer.tar');
    writeFileSync(layer, execFileSync('tar', ['-xOf', image, `${info.Layers[0].slice(7)}/layer.tar`], { maxBuffer: 1 << 26 }));
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', layer], { encoding: 'utf8' }).split('\n');
    const line = (name: string) => listing.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `))!;
    expect(line('/etc/motd')).toMatch(/^-rw-r--r-- 1000\/100 /);
    expect(line('/bin')).toMatch(/^l\S+ 1000\/100 /);
    expect(line('/nix/')).toMatch(/^dr-xr-xr-x 0\/0 /);
    expect(line('/nix/store/')).toMatch(/^dr-xr-xr-x 0\/0 /);
    expect(line(`${app}/bin/hello`)).toMatch(/^-r-xr-xr-x 0\/0 /);
  });

  it('is deterministic: a second build (cache on or off) gives the same bytes', () => {
    const a = join(tmp, 'a.tar');
    const b = join(tmp, 'b.tar');
    const c = join(tmp, 'c.tar');
    expect(build(a).status).toBe(0);
    expect(build(b).status).toBe(0);
    expect(build(c, '--no-cache').status).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(readFileSync(a).equals(readFileSync(c))).toBe(true);
  });

  it('writes into a FIFO with a reader, the same bytes as a file, and leaves no temp file', async () => {
    const dir = mkdtempSync(join(tmp, 'fifo-'));
    const plain = join(dir, 'plain.tar');
    const r0 = build(plain);
    expect(r0.status, r0.stderr).toBe(0);
    const fifo = join(dir, 'fifo');
    const copy = join(dir, 'copy.tar');
    execFileSync('mkfifo', [fifo]);
    const copyFd = openSync(copy, 'w');
    const reader = spawn('cat', [fifo], { stdio: ['ignore', copyFd, 'ignore'] });
    closeSync(copyFd);
    const done = new Promise((res) => reader.on('close', res));
    try {
      const r = build(fifo);
      expect(r.status, r.stderr).toBe(0);
      await done;
    } finally {
      reader.kill();
    }
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(readFileSync(copy).equals(readFileSync(plain))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['copy.tar', 'fifo', 'plain.tar']);
  }, 180_000);

  it('changes the default tag when an overlay file changes', () => {
    const tagOf = (file: string) => JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' }))[0].RepoTags[0] as string;
    const run = (out: string) => nixreg('build', '--single-layer', '--name', 'untagged', '--path', app, '--overlay', overlay, '-o', out);
    expect(run(join(tmp, 't1.tar')).status).toBe(0);
    writeFileSync(join(overlay, 'etc/motd'), 'welcome!\n');
    try {
      expect(run(join(tmp, 't2.tar')).status).toBe(0);
    } finally {
      writeFileSync(join(overlay, 'etc/motd'), 'welcome\n');
    }
    expect(tagOf(join(tmp, 't1.tar'))).toMatch(/^untagged:[0-9a-z]{32}$/);
    expect(tagOf(join(tmp, 't1.tar'))).not.toBe(tagOf(join(tmp, 't2.tar')));
  });

  it('fails with one line and no output for bad input', () => {
    const out = join(tmp, 'bad.tar');
    const missing = nixreg('build', '--single-layer', '--name', 'x', '--path', app, '--overlay', join(tmp, 'nope'), '-o', out);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^nixreg: --overlay .*nope/);
    const nixDir = join(tmp, 'nix-overlay');
    mkdirSync(join(nixDir, 'nix/var'), { recursive: true });
    const shadow = nixreg('build', '--single-layer', '--name', 'x', '--path', app, '--overlay', nixDir, '-o', out);
    expect(shadow.status).toBe(2);
    expect(shadow.stderr).toContain('top-level "nix" entry');
    const conf = nixreg('build', '--single-layer', '--name', 'x', '--path', app, '--write-conf', join(tmp, 'c.json'), '-o', out);
    expect(conf.status).toBe(2);
    const noSingle = nixreg('build', '--name', 'x', '--path', app, '--overlay', overlay, '-o', out);
    expect(noSingle.status).toBe(2);
    expect(noSingle.stderr).toContain('--single-layer');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(tmp, 'c.json'))).toBe(false);
  });
});

describe('nixreg build --single-layer from a --graph and a --store-root (no Nix)', () => {
  it('takes exactly the closure of the roots from the graph, read under the store root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nixreg-single-root-'));
    try {
      const p = (n: string, name: string) => `/nix/store/${n.repeat(32)}-${name}`;
      const [lib, app, other] = [p('1', 'lib'), p('2', 'app'), p('3', 'unrelated')];
      const fs = (sp: string, rel: string) => join(dir, 'root', sp, rel);
      mkdirSync(fs(lib, 'lib'), { recursive: true });
      writeFileSync(fs(lib, 'lib/libx.so'), 'lib bytes\n');
      mkdirSync(fs(app, 'bin'), { recursive: true });
      writeFileSync(fs(app, 'bin/app'), `#!/bin/sh\n${lib}\n`, { mode: 0o555 });
      mkdirSync(fs(other, 'share'), { recursive: true });
      writeFileSync(fs(other, 'share/x'), 'x');
      const graph = [
        { path: lib, narSize: 100, references: [lib] },
        { path: app, narSize: 200, references: [app, lib] },
        { path: other, narSize: 50, references: [] },
      ];
      writeFileSync(join(dir, 'graph.json'), JSON.stringify(graph));
      const out = join(dir, 'image.tar');
      const r = nixreg(
        'build',
        '--single-layer',
        '--name',
        'rooted:1',
        '--path',
        app,
        '--graph',
        join(dir, 'graph.json'),
        '--store-root',
        join(dir, 'root'),
        '--created',
        '2024-01-02T03:04:05Z',
        '-o',
        out,
      );
      expect(r.status, r.stderr).toBe(0);
      const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }));
      expect(manifest[0].Layers).toHaveLength(1);
      expect(manifest[0].RepoTags).toEqual(['rooted:1']);
      const config = JSON.parse(execFileSync('tar', ['-xOf', out, manifest[0].Config], { encoding: 'utf8' }));
      expect(config.created).toBe('2024-01-02T03:04:05+00:00');
      const layer = join(dir, 'layer.tar');
      writeFileSync(layer, execFileSync('tar', ['-xOf', out, manifest[0].Layers[0]]));
      const names = execFileSync('tar', ['-tf', layer], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n');
      expect(names).toEqual(['/bin', '/nix/', '/nix/store/', `${lib}/`, `${lib}/lib/`, `${lib}/lib/libx.so`, `${app}/`, `${app}/bin/`, `${app}/bin/app`]);
      const bytes = execFileSync('tar', ['-xOf', layer, `${app}/bin/app`], { stdio: ['ignore', 'pipe', 'ignore'] });
      expect(bytes.equals(readFileSync(fs(app, 'bin/app')))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
