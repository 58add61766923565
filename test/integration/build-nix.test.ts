import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closureGraph } from '../../src/nix/closure.js';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';

// Real Nix (Debian nix-bin, single-user as root, no sandbox) builds a 3-path closure with only builtins and /bin/sh;
// the built CLI (dist/) turns it into an image that skopeo and umoci must read back to the same files.
const root = join(import.meta.dirname, '../..');
const nixreg = (...args: string[]) => runCliSync(args);

// lib <- data <- app (app has bin/hello)
const closure = `
  lib = mk "nixreg-test-lib-1.0" "mkdir -p $out/lib && echo libdata > $out/lib/libtest.so.1 && ln -s libtest.so.1 $out/lib/libtest.so";
  data = mk "nixreg-test-data" "mkdir -p $out/share && echo \${lib}/lib/libtest.so > $out/share/ref";
  app = mk "nixreg-test-app-1.0" "mkdir -p $out/bin $out/etc && printf '#!/bin/sh\\\\necho hello from \${data}\\\\n' > $out/bin/hello && chmod 555 $out/bin/hello && echo conf > $out/etc/app.conf";
`;

let tmp: string;
let app: string;

beforeAll(() => {
  for (const t of ['nix-build', 'nix-store', 'skopeo', 'umoci']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-build-nix-'));
  app = buildTestClosure(tmp, closure);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const q = (...args: string[]) => execFileSync('nix-store', ['--query', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

describe('closure graph from real Nix', () => {
  it('matches nix-store queries, sorted like exportReferencesGraph', async () => {
    const graph = await closureGraph([app]);
    const requisites = q('--requisites', app).split('\n').sort();
    expect(graph.map((n) => n.path)).toEqual(requisites);
    expect(graph).toHaveLength(3);
    for (const n of graph) {
      expect(n.narSize).toBe(Number(q('--size', n.path)));
      expect(n.narHash).toBe(q('--hash', n.path));
      expect(n.references).toEqual(q('--references', n.path).split('\n').filter(Boolean).sort());
    }
    const total = graph.reduce((s, n) => s + n.narSize, 0);
    expect(graph.find((n) => n.path === app)!.closureSize).toBe(total);
  });
});

describe('nixreg build with real Nix', () => {
  it('builds an image skopeo and umoci read back to the store files', () => {
    const image = join(tmp, 'image.tar');
    const conf = join(tmp, 'conf.json');
    const r = nixreg(
      'build',
      '--name',
      'NixReg/Test:v1',
      '--path',
      app,
      '--cmd',
      `${app}/bin/hello`,
      '--env',
      'GREETING=hi',
      '-o',
      image,
      '--write-conf',
      conf,
    );
    expect(r.stderr).toContain('Done.');
    expect(r.status).toBe(0);

    const c = JSON.parse(readFileSync(conf, 'utf8'));
    expect(c.repo_tag).toBe('nixreg/test:v1');
    expect(c.store_layers.flat().sort()).toEqual(q('--requisites', app).split('\n').sort());
    expect(c.customisation_layer).toMatch(/^\/nix\/store\/[0-9a-z]{32}-test-customisation-layer$/);

    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${image}`], { encoding: 'utf8' }));
    expect(info.Layers).toHaveLength(c.store_layers.length + 1);
    expect(info.Env).toEqual(['GREETING=hi']);
    const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${image}`], { encoding: 'utf8' }));
    expect(cfg.config.Cmd).toEqual([`${app}/bin/hello`]);

    const oci = join(tmp, 'oci');
    execFileSync('skopeo', ['copy', '-q', `docker-archive:${image}`, `oci:${oci}:v1`]);
    const bundle = join(tmp, 'bundle');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${oci}:v1`, bundle], { stdio: 'ignore' });
    const rootfs = join(bundle, 'rootfs');

    // every store path of the closure, file by file: type, executable bit, bytes, link targets
    for (const p of q('--requisites', app).split('\n')) expect(tree(join(rootfs, p))).toEqual(tree(p));
    // the customisation layer links the app's top-level dirs into /
    expect(readlinkSync(join(rootfs, 'bin'))).toBe(`${app}/bin`);
    expect(readlinkSync(join(rootfs, 'etc'))).toBe(`${app}/etc`);
    expect(readFileSync(join(rootfs, 'bin/hello')).equals(readFileSync(`${app}/bin/hello`))).toBe(true);
    expect(readdirSync(rootfs).sort()).toEqual(['bin', 'etc', 'nix']);
  });

  it('--from-image: base layers first, and they count against --max-layers', () => {
    const base = join(tmp, 'image.tar'); // from the previous test: 3 store layers + 1 customisation layer
    const image = join(tmp, 'on-base.tar');
    const conf = join(tmp, 'conf-on-base.json');
    const r = nixreg('build', '--name', 'on-base:1', '--path', app, '--from-image', base, '--max-layers', '6', '-o', image, '--write-conf', conf);
    expect(r.stderr).toContain('Adding base layer 4');
    expect(r.status).toBe(0);
    const c = JSON.parse(readFileSync(conf, 'utf8'));
    expect(c.from_image).toBe(base);
    expect(c.store_layers).toHaveLength(1); // 6 - 4 base - 1 customisation
    const baseInfo = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${base}`], { encoding: 'utf8' }));
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${image}`], { encoding: 'utf8' }));
    expect(info.Layers.slice(0, 4)).toEqual(baseInfo.Layers);
    expect(info.Layers).toHaveLength(6);
    const tooMany = nixreg('build', '--name', 'x:1', '--path', app, '--from-image', base, '--max-layers', '5', '-o', join(tmp, 'never.tar'));
    expect(tooMany.status).toBe(2);
    expect(tooMany.stderr).toMatch(/^nixreg: max layers 5 leaves no store layer.*\n$/);
    expect(() => lstatSync(join(tmp, 'never.tar'))).toThrow();
  });

  it('--from-image takes a zstd-compressed base like every other archive reader', () => {
    const base = join(tmp, 'image.tar'); // from the earlier test: 3 store layers + 1 customisation layer
    const zst = join(tmp, 'base.tar.zst');
    execFileSync('zstd', ['-q', '-f', base, '-o', zst]);
    const image = join(tmp, 'on-zst-base.tar');
    const r = nixreg('build', '--name', 'on-zst:1', '--path', app, '--from-image', zst, '--max-layers', '6', '-o', image);
    expect(r.stderr).toContain('Adding base layer 4');
    expect(r.status).toBe(0);
    const baseInfo = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${base}`], { encoding: 'utf8' }));
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${image}`], { encoding: 'utf8' }));
    expect(info.Layers.slice(0, 4)).toEqual(baseInfo.Layers);
    expect(info.Layers).toHaveLength(6);
  });

  it('--graph gives the same conf without asking Nix, and the conf is deterministic', () => {
    const graphFile = join(tmp, 'graph.json');
    const fromNix = join(tmp, 'conf-nix.json');
    const fromGraph = join(tmp, 'conf-graph.json');
    let r = nixreg('build', '--name', 'x:1', '--path', app, '--write-conf', fromNix);
    expect(r.status).toBe(0);
    // the graph as exportReferencesGraph writes it (.attrs.json shape)
    const nodes = execFileSync(
      'node',
      [
        '-e',
        `import('${join(root, 'dist/src/nix/closure.js')}').then(async m => process.stdout.write(JSON.stringify({graph: await m.closureGraph([process.argv[1]])})))`,
        app,
      ],
      { encoding: 'utf8' },
    );
    writeFileSync(graphFile, nodes);
    r = nixreg('build', '--name', 'x:1', '--path', app, '--graph', graphFile, '--write-conf', fromGraph);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const a = JSON.parse(readFileSync(fromNix, 'utf8'));
    const b = JSON.parse(readFileSync(fromGraph, 'utf8'));
    expect(b.store_layers).toEqual(a.store_layers);
    // same layer bytes in both places (store copy vs cache copy)
    expect(readFileSync(join(a.customisation_layer, 'layer.tar')).equals(readFileSync(join(b.customisation_layer, 'layer.tar')))).toBe(true);
  });

  it('fails in one line, without output, for a path that is not in the store', () => {
    const out = join(tmp, 'missing.tar');
    const r = nixreg('build', '--name', 'x', '--path', '/nix/store/00000000000000000000000000000000-nope', '-o', out);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nixreg: /);
    expect(() => lstatSync(out)).toThrow();
  });
});

type Tree = Record<string, string>;
/** A comparable description of a file tree: per relative path, its kind + exec bit + content or link target. */
function tree(dir: string): Tree {
  const out: Tree = {};
  const walk = (abs: string, rel: string) => {
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) out[rel] = `link:${readlinkSync(abs)}`;
    else if (st.isDirectory()) {
      out[rel] = 'dir';
      for (const n of readdirSync(abs).sort()) walk(join(abs, n), rel ? `${rel}/${n}` : n);
    } else out[rel] = `file:${st.mode & 0o111 ? 'x' : '-'}:${readFileSync(abs).toString('base64')}`;
  };
  walk(dir, '');
  return out;
}
