import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorLines, runCli } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';
import { requireTool } from '../helpers/tools.js';
import { cycloneDx16Validator, spdx23Problems } from '../helpers/sbom-schemas.js';

// `nixreg sbom` of an image built from a closure real Nix builds here: every store path of the closure is a
// component with the diffID of the layer that really holds it (read back from the image nixreg build writes),
// its NAR hash and references as nix-store reports them; the bytes are the same on every run.
// zlib <- lib <- app, and app -> data (a path with no version)
const closure = `
  zlib = mk "sbomtest-zlib-1.3.1" "mkdir -p $out/lib && echo z > $out/lib/libz.so";
  lib = mk "sbomtest-lib-1.0" "mkdir -p $out/lib && echo \${zlib} > $out/lib/libtest.so.1";
  data = mk "sbomtest-data" "mkdir -p $out/share && echo d > $out/share/d";
  app = mk "sbomtest-app-2.3.1" "mkdir -p $out/bin && echo \${lib} \${data} > $out/bin/hello";
`;

let tmp: string;
let app: string;
const nixreg = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { cacheHome: join(tmp, 'cache'), env });
const q = (flag: string, p: string) => execFileSync('nix-store', ['--query', flag, p], { encoding: 'utf8' }).split('\n').filter(Boolean);

/** store path → diffID of the layer of the docker-archive that holds its directory. */
function layersOfArchive(archive: string): Map<string, string> {
  const dir = join(tmp, `x-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('tar', ['-xf', archive, '-C', dir], { stdio: ['ignore', 'ignore', 'ignore'] });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))[0] as { Layers: string[] };
  const out = new Map<string, string>();
  for (const layer of manifest.Layers) {
    const file = join(dir, layer);
    const diffID = 'sha256:' + createHash('sha256').update(readFileSync(file)).digest('hex');
    for (const e of execFileSync('tar', ['-tf', file], { encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n')) {
      const m = /^\.?\/?(nix\/store\/[^/]+)\/?$/.exec(e);
      if (m) out.set('/' + m[1], diffID);
    }
  }
  return out;
}

beforeAll(() => {
  for (const t of ['nix-build', 'nix-store']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-sbom-'));
  app = buildTestClosure(tmp, closure);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('nixreg sbom (real Nix closure)', () => {
  let build: string[];
  beforeAll(() => {
    build = ['--name', 'hello:1', '--path', app];
  });

  it('names every store path of the closure with the layer that holds it, its NAR hash and references (CycloneDX 1.6)', async () => {
    const out = join(tmp, 'bom.json');
    const r = await nixreg(['sbom', ...build, '-o', out]);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(cycloneDx16Validator()(doc)).toEqual([]);

    const img = join(tmp, 'img.tar');
    const b = await nixreg(['build', ...build, '-o', img]);
    expect(b.status).toBe(0);
    const holder = layersOfArchive(img);
    const requisites = q('--requisites', app).sort();
    const byPath = new Map<string, any>(doc.components.map((c: any) => [c['bom-ref'], c]));
    expect([...byPath.keys()].sort()).toEqual(requisites);
    for (const p of requisites) {
      const c = byPath.get(p);
      const prop = (n: string) => c.properties.find((x: any) => x.name === n)?.value;
      expect(holder.get(p), p).toBeDefined();
      expect(prop('nixreg:layer_diff_id'), p).toBe(holder.get(p));
      expect(prop('nix:nar_hash'), p).toBe(q('--hash', p)[0]);
      const refs = q('--references', p)
        .filter((x) => x !== p)
        .sort();
      expect(doc.dependencies.find((d: any) => d.ref === p).dependsOn).toEqual(refs);
    }
    const appC = byPath.get(app);
    expect([appC.name, appC.version, appC.purl]).toEqual(['sbomtest-app', '2.3.1', 'pkg:nix/sbomtest-app@2.3.1']);
    const data = [...byPath.values()].find((c) => c.name === 'sbomtest-data');
    expect(data.version).toBeUndefined();
    expect(doc.dependencies.find((d: any) => d.ref === 'image').dependsOn).toEqual([app]);
    // the image's layers in manifest order, as their diffIDs
    const config = doc.metadata.component.properties.map((x: any) => x.value);
    expect(new Set(holder.values()).size).toBeGreaterThan(0);
    for (const d of holder.values()) expect(config).toContain(d);
  });

  it('gives the same bytes for the same input: again, without the layer cache, and from the written conf', async () => {
    const conf = join(tmp, 'conf.json');
    expect((await nixreg(['build', ...build, '--write-conf', conf])).status).toBe(0);
    for (const format of ['cyclonedx', 'spdx']) {
      const first = await nixreg(['sbom', ...build, '--format', format]);
      const again = await nixreg(['sbom', ...build, '--format', format, '--no-cache']);
      const viaConf = await nixreg(['sbom', conf, '--format', format]);
      for (const r of [first, again, viaConf]) expect(errorLines(r.stderr)).toEqual([]);
      expect(first.stdoutBytes.length).toBeGreaterThan(100);
      expect(again.stdoutBytes.equals(first.stdoutBytes)).toBe(true);
      expect(viaConf.stdoutBytes.equals(first.stdoutBytes)).toBe(true);
    }
  });

  it('SPDX 2.3: required fields, a package per store path with its layer, DEPENDS_ON per reference', async () => {
    const r = await nixreg(['sbom', ...build, '--format', 'spdx']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(spdx23Problems(doc)).toEqual([]);
    const requisites = q('--requisites', app);
    const pkgs = doc.packages.filter((p: any) => p.SPDXID !== 'SPDXRef-Image');
    expect(pkgs).toHaveLength(requisites.length);
    for (const p of requisites) {
      const pkg = pkgs.find((x: any) => x.annotations.some((a: any) => a.comment === `nix:store_path=${p}`));
      expect(pkg, p).toBeDefined();
      expect(pkg.annotations.some((a: any) => /^nixreg:layer_diff_id=sha256:[0-9a-f]{64}$/.test(a.comment))).toBe(true);
    }
    const edges = doc.relationships.filter((x: any) => x.relationshipType === 'DEPENDS_ON').length;
    const expected = requisites.reduce((n, p) => n + q('--references', p).filter((x) => x !== p).length, 0);
    expect(edges).toBe(expected);
  });

  it('dates the document from SOURCE_DATE_EPOCH, else from the conf', async () => {
    const r = await nixreg(['sbom', ...build], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(JSON.parse(r.stdout).metadata.timestamp).toBe('2023-11-14T22:13:20Z');
    const d = await nixreg(['sbom', ...build, '--created', '2024-01-02T03:04:05Z']);
    expect(JSON.parse(d.stdout).metadata.timestamp).toBe('2024-01-02T03:04:05Z');
    const bad = await nixreg(['sbom', ...build], { SOURCE_DATE_EPOCH: 'yesterday' });
    expect(bad.status).not.toBe(0);
    expect(errorLines(bad.stderr)).toEqual(['nixreg: SOURCE_DATE_EPOCH=yesterday is not a number of seconds']);
  });

  it('fails with one line and leaves no file for bad input or an existing output', async () => {
    const out = join(tmp, 'exists.json');
    writeFileSync(out, 'keep');
    const r = await nixreg(['sbom', ...build, '-o', out]);
    expect(r.status).not.toBe(0);
    expect(errorLines(r.stderr)).toEqual([`nixreg: output ${out} already exists; remove it or pass --force`]);
    expect(readFileSync(out, 'utf8')).toBe('keep');
    const missing = join(tmp, 'nope.json');
    const m = await nixreg(['sbom', missing, '-o', join(tmp, 'm.json')]);
    expect(m.status).not.toBe(0);
    expect(errorLines(m.stderr)).toHaveLength(1);
    expect(errorLines(m.stderr)[0]).toMatch(/^nixreg: cannot read conf .*nope\.json/);
    expect(existsSync(join(tmp, 'm.json'))).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const both = await nixreg(['sbom', missing, '--path', app]);
    expect(errorLines(both.stderr)).toEqual(['nixreg: give a conf.json or --path STORE_PATH..., not both']);
  });
});
