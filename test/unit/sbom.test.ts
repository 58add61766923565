import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { nixPurl, parseDrvName, storePathName } from '../../src/sbom/store-name.js';
import { cycloneDxBom } from '../../src/sbom/cyclonedx.js';
import { spdxDocument } from '../../src/sbom/spdx.js';
import type { SbomInput } from '../../src/sbom/model.js';
import { requireTool } from '../helpers/tools.js';
import { cycloneDx16Validator, spdx23Problems } from '../helpers/sbom-schemas.js';

const NAMES = [
  'hello-2.12.1',
  'glibc-2.39-52',
  'python3.12-requests-2.32.3',
  'openssl-3.0.14-bin',
  'bash-interactive-5.2p32',
  'nixreg-push-app-1.0',
  'source',
  'foo-bar-baz',
  'x-',
  'ab--1',
  'tzdata-2024a',
  'hello-unstable-2024-01-01',
  'a-B1',
  '-1.0',
];

describe('parseDrvName', () => {
  it('splits names exactly as Nix builtins.parseDrvName does', () => {
    requireTool('nix-instantiate');
    const expr = `map builtins.parseDrvName [ ${NAMES.map((n) => JSON.stringify(n)).join(' ')} ]`;
    const nix = JSON.parse(execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '-E', expr], { encoding: 'utf8' })) as Array<{
      name: string;
      version: string;
    }>;
    expect(NAMES.map(parseDrvName)).toEqual(nix);
  });

  it('takes the name after the hash part of a store path', () => {
    expect(storePathName('/nix/store/d5n007x34xizd6039sayilvr82kxxgw9-sbomt-app-2.3.1')).toBe('sbomt-app-2.3.1');
  });

  it('percent-encodes purl name and version', () => {
    expect(nixPurl('c++-lib', '1.0+git')).toBe('pkg:nix/c%2B%2B-lib@1.0%2Bgit');
    expect(nixPurl('source', '')).toBe('pkg:nix/source');
  });
});

const H = (c: string) => c.repeat(32);
const input = (): SbomInput => ({
  image: 'registry.local:5000/app:1',
  created: '2024-05-01T10:00:00Z',
  toolVersion: '0.0.0-test',
  layers: [
    { diffID: 'sha256:' + 'a'.repeat(64), paths: [`/nix/store/${H('b')}-lib-1.0`] },
    { diffID: 'sha256:' + 'c'.repeat(64), paths: [`/nix/store/${H('a')}-app-2.0`] },
  ],
  paths: [
    { path: `/nix/store/${H('a')}-app-2.0`, references: [`/nix/store/${H('b')}-lib-1.0`], narHash: 'sha256:' + '1'.repeat(64), license: 'MIT' },
    { path: `/nix/store/${H('b')}-lib-1.0`, references: [] },
  ],
});

describe('document builders', () => {
  it('give the same bytes whatever order the paths come in, and different ones for other content', () => {
    const a = input();
    const b = input();
    b.paths.reverse();
    expect(cycloneDxBom(b).equals(cycloneDxBom(a))).toBe(true);
    expect(spdxDocument(b).equals(spdxDocument(a))).toBe(true);
    const c = input();
    c.paths[1]!.narHash = 'sha256:' + '2'.repeat(64);
    expect(JSON.parse(cycloneDxBom(c).toString()).serialNumber).not.toBe(JSON.parse(cycloneDxBom(a).toString()).serialNumber);
    expect(JSON.parse(spdxDocument(c).toString()).documentNamespace).not.toBe(JSON.parse(spdxDocument(a).toString()).documentNamespace);
  });

  it('CycloneDX validates against the 1.6 schema and names layer, hash, licence and edges', () => {
    const doc = JSON.parse(cycloneDxBom(input()).toString());
    const validate = cycloneDx16Validator();
    expect(validate(doc)).toEqual([]);
    expect(validate({ ...doc, components: [{ ...doc.components[0], type: 'store-path' }] }).length).toBeGreaterThan(0);
    const app = doc.components.find((c: any) => c.name === 'app');
    expect(app.purl).toBe('pkg:nix/app@2.0');
    expect(app.hashes).toEqual([{ alg: 'SHA-256', content: '1'.repeat(64) }]);
    expect(app.licenses).toEqual([{ expression: 'MIT' }]);
    expect(app.properties).toContainEqual({ name: 'nixreg:layer_diff_id', value: 'sha256:' + 'c'.repeat(64) });
    expect(doc.dependencies).toContainEqual({ ref: app['bom-ref'], dependsOn: [`/nix/store/${H('b')}-lib-1.0`] });
    expect(doc.dependencies).toContainEqual({ ref: 'image', dependsOn: [app['bom-ref']] });
    expect(doc.metadata.component).toMatchObject({ type: 'container', name: 'registry.local:5000/app', version: '1' });
  });

  it('SPDX has every required field of 2.3 and a DEPENDS_ON per reference', () => {
    const doc = JSON.parse(spdxDocument(input()).toString());
    expect(spdx23Problems(doc)).toEqual([]);
    expect(doc.relationships.filter((r: any) => r.relationshipType === 'DEPENDS_ON')).toHaveLength(1);
    expect(doc.creationInfo.created).toBe('2024-05-01T10:00:00Z');
  });

  it('the SPDX check itself rejects a document missing required fields', () => {
    const doc = JSON.parse(spdxDocument(input()).toString());
    delete doc.documentNamespace;
    delete doc.packages[1].downloadLocation;
    expect(spdx23Problems(doc)).toEqual([
      'document: missing documentNamespace',
      'documentNamespace is not a URI without #',
      'packages[1]: missing downloadLocation',
    ]);
  });
});
