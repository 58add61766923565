import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { gnuTar, type GnuTarEntry } from '../../src/nix/from-paths/gnu-tar.js';
import { planCustomisationEntries } from '../../src/nix/from-paths/customisation-layer.js';
import { narSizeOfDir, narSizeOfFile } from '../../src/nix/from-paths/image-nodes.js';
import { configFromFlags, normalizeTime, storePathsIn } from '../../src/nix/from-paths/conf.js';
import { prepareBuild, splitName } from '../../src/nix/from-paths/prepare.js';
import { requireTool } from '../helpers/tools.js';

const fixtures = join(import.meta.dirname, '../fixtures/layering');
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-build-unit-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function members(tar: Buffer): Promise<{ name: string; data: Buffer }[]> {
  const out: { name: string; data: Buffer }[] = [];
  const ex = extract();
  ex.on('entry', (h, s, next) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => (out.push({ name: h.name, data: Buffer.concat(chunks) }), next()));
  });
  await new Promise((res, rej) => Readable.from([tar]).pipe(ex).on('finish', res).on('error', rej));
  return out;
}

describe('customisation layer tar (GNU format, like nixpkgs)', () => {
  it("reproduces the fixture's nixpkgs-built layer.tar byte for byte", async () => {
    const blob = readFileSync(join(fixtures, 'customisation-layer-fixture.tar'));
    const motd = (await members(blob)).find((m) => m.name === './etc/motd')!.data;
    const entries: GnuTarEntry[] = [
      { path: '', type: 'dir', mode: 0o755 },
      { path: 'bin', type: 'symlink', mode: 0o777, target: '/nix/store/d94304fm706b2mkza86j45vp228azj68-fx-app-3.0/bin' },
      { path: 'etc', type: 'dir', mode: 0o755 },
      { path: 'etc/motd', type: 'file', mode: 0o644, content: motd },
      { path: 'etc/tools', type: 'symlink', mode: 0o777, target: '/nix/store/m6br005hfawqlwlax5m9i5pshkpa8n6h-fx-tools-1.0/share/tools' },
      { path: 'tmp', type: 'dir', mode: 0o1777 },
    ];
    expect(gnuTar(entries).equals(blob)).toBe(true);
  });

  it('equals real GNU tar for a merged symlink tree with long names and targets', async () => {
    requireTool('tar');
    const store = join(tmp, 'store');
    const a = join(store, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a');
    const b = join(store, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b');
    mkdirSync(join(a, 'bin'), { recursive: true });
    mkdirSync(join(a, 'share', 'x'.repeat(120)), { recursive: true });
    mkdirSync(join(b, 'bin'), { recursive: true });
    mkdirSync(join(b, 'etc'), { recursive: true });
    writeFileSync(join(a, 'bin', 'one'), '1');
    writeFileSync(join(b, 'bin', 'two'), '2');
    writeFileSync(join(b, 'bin', 'one'), 'shadowed');
    writeFileSync(join(a, 'top-file'), 't');
    const entries = await planCustomisationEntries([a, b]);
    expect(entries.map((e) => `${e.path}:${e.type}:${e.target ?? ''}`)).toEqual([
      ':dir:',
      `bin:dir:`,
      `bin/one:symlink:${a}/bin/one`,
      `bin/two:symlink:${b}/bin/two`,
      `etc:symlink:${b}/etc`,
      `share:symlink:${a}/share`,
      `top-file:symlink:${a}/top-file`,
    ]);
    // materialise the same tree and let GNU tar archive it the nixpkgs way
    const t = join(tmp, 'tree');
    mkdirSync(join(t, 'bin'), { recursive: true });
    for (const e of entries.filter((x) => x.type === 'symlink')) symlinkSync(e.target!, join(t, e.path));
    const long = join(t, 'n'.repeat(110));
    symlinkSync('/nix/store/' + 'z'.repeat(120), long);
    entries.push({ path: 'n'.repeat(110), type: 'symlink', mode: 0o777, target: '/nix/store/' + 'z'.repeat(120) });
    execFileSync('chmod', ['755', t, join(t, 'bin')]);
    const real = execFileSync('tar', [
      '--sort',
      'name',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--mtime',
      '@315532800',
      '--hard-dereference',
      '-C',
      t,
      '-cf',
      '-',
      '.',
    ]);
    entries.sort((x, y) => (x.path === '' ? -1 : y.path === '' ? 1 : x.path < y.path ? -1 : 1));
    expect(gnuTar(entries).equals(real)).toBe(true);
  });
});

describe('NAR sizes of the helper nodes', () => {
  it('match nix-store --dump', () => {
    requireTool('nix-store');
    const f = join(tmp, 'base.json');
    writeFileSync(f, '{"architecture":"amd64","config":{},"os":"linux","variant":""}');
    expect(narSizeOfFile(61)).toBe(execFileSync('nix-store', ['--dump', f]).length);
    const d = join(tmp, 'cust');
    mkdirSync(d);
    writeFileSync(join(d, 'checksum'), 'x'.repeat(65));
    writeFileSync(join(d, 'layer.tar'), Buffer.alloc(10240));
    expect(narSizeOfDir({ checksum: 65, 'layer.tar': 10240 })).toBe(execFileSync('nix-store', ['--dump', d]).length);
  });
});

describe('conf pieces', () => {
  it('normalises times like date -Iseconds in a UTC build', () => {
    expect(normalizeTime('1970-01-01T00:00:01Z', 'x')).toBe('1970-01-01T00:00:01+00:00');
    expect(normalizeTime('2024-02-29T18:04:56+05:30', 'x')).toBe('2024-02-29T12:34:56+00:00');
    expect(normalizeTime('2024-01-02', 'x')).toBe('2024-01-02T00:00:00+00:00');
    expect(normalizeTime('now', 'x')).toBe('now');
    expect(() => normalizeTime('yesterday-ish', 'x')).toThrow(/cannot read/);
  });
  it('config from flags, keys sorted like builtins.toJSON', () => {
    const c = configFromFlags({ env: ['A=1'], cmd: ['["/bin/sh","-c","echo"]'], workdir: '/w', expose: ['80', '53/udp'], label: ['b=2', 'a=1'] });
    expect(JSON.stringify(c)).toBe(
      '{"Cmd":["/bin/sh","-c","echo"],"Env":["A=1"],"ExposedPorts":{"53/udp":{},"80/tcp":{}},"Labels":{"a":"1","b":"2"},"WorkingDir":"/w"}',
    );
  });
  it('finds store paths referenced by the config', () => {
    expect(
      storePathsIn({
        Cmd: ['/nix/store/0d9k60sz5jvqmps7h8a28pzkgwz248yi-fx-liba-2.1/bin/x'],
        Env: ['P=/nix/store/b6vj4h8157vb9vmbfvx8846j7lynn860-fx-libbase-1.0/lib:/x'],
      }),
    ).toEqual(['/nix/store/0d9k60sz5jvqmps7h8a28pzkgwz248yi-fx-liba-2.1', '/nix/store/b6vj4h8157vb9vmbfvx8846j7lynn860-fx-libbase-1.0']);
  });
  it('splits NAME:TAG, keeping registry ports', () => {
    expect(splitName('Foo/Bar:1.0')).toEqual({ imageName: 'foo/bar', tag: '1.0' });
    expect(splitName('localhost:5000/app')).toEqual({ imageName: 'localhost:5000/app', tag: undefined });
  });
});

describe('prepareBuild from a graph under a store root', () => {
  it('writes a conf whose layers follow the fixture layering', async () => {
    const fx = JSON.parse(readFileSync(join(fixtures, 'a-auto-default-100.json'), 'utf8'));
    const storeRoot = join(tmp, 'root');
    const graph = fx.graph.filter((n: { path: string }) => !fx.exclude.includes(n.path));
    // only the app's top level is read (for the customisation layer); the rest is layering
    const app = graph.find((n: { path: string }) => n.path.endsWith('-fx-app-3.0')).path as string;
    const tools = graph.find((n: { path: string }) => n.path.endsWith('-fx-tools-1.0')).path as string;
    mkdirSync(join(storeRoot, app, 'bin'), { recursive: true });
    mkdirSync(join(storeRoot, tools, 'share'), { recursive: true });
    writeFileSync(join(tmp, 'graph.json'), JSON.stringify(graph));
    const p = await prepareBuild({ name: 'fixture:a', paths: [app, tools], graphFile: join(tmp, 'graph.json'), storeRoot, architecture: 'amd64' });
    expect(p.conf.store_layers).toEqual(fx.store_layers);
    expect(p.conf.customisation_layer).toMatch(/^\/nix\/store\/[0-9a-z]{32}-fixture-customisation-layer$/);
    expect(readFileSync(join(storeRoot, p.conf.customisation_layer, 'checksum'), 'utf8')).toBe(p.customisation.checksum + '\n');
    expect(Object.keys(p.conf)).toEqual([
      'architecture',
      'config',
      'os',
      'variant',
      'store_dir',
      'from_image',
      'store_layers',
      'customisation_layer',
      'repo_tag',
      'created',
      'mtime',
      'uid',
      'gid',
      'uname',
      'gname',
    ]);
    expect(p.confText.endsWith('}\n')).toBe(true);
  });

  it('popularity with helper nodes matches the 2020-2024 split (fixture c, maxLayers 4)', async () => {
    const fx = JSON.parse(readFileSync(join(fixtures, 'c-popularity-default-4.json'), 'utf8'));
    const storeRoot = join(tmp, 'root');
    const graph = fx.graph.filter((n: { path: string }) => !fx.exclude.includes(n.path));
    const pick = (suffix: string) => graph.find((n: { path: string }) => n.path.endsWith(suffix)).path as string;
    writeFileSync(join(tmp, 'graph-c.json'), JSON.stringify({ graph }));
    const p = await prepareBuild({
      name: 'fixture:c',
      paths: [pick('-fx-app-3.0'), pick('-fx-tools-1.0')],
      graphFile: join(tmp, 'graph-c.json'),
      storeRoot,
      maxLayers: 4,
      algorithm: 'popularity',
    });
    expect(p.conf.store_layers).toEqual(fx.store_layers);
  });
});
