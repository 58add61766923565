import { describe, expect, test } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseSourceSpec, sniffSource } from '../../src/source/index.js';
import { chooseEntry, normalTag } from '../../src/source/docker-archive.js';
import { generatedManifest } from '../../src/source/image.js';
import { layerTar } from '../helpers/images.js';
import { goTarFile, TAR_TRAILER } from '../../src/tar/go-ustar.js';

describe('parseSourceSpec', () => {
  test("skopeo's transport syntax: the path ends at the first ':' after the transport", async () => {
    expect(await parseSourceSpec('docker://quay.io/o/r:v1')).toEqual({ kind: 'registry', path: 'quay.io/o/r:v1' });
    expect(await parseSourceSpec('docker-archive:/a/b.tar')).toEqual({ kind: 'docker-archive', path: '/a/b.tar' });
    expect(await parseSourceSpec('docker-archive:/a/b.tar:example.org/x:1')).toEqual({ kind: 'docker-archive', path: '/a/b.tar', ref: 'example.org/x:1' });
    expect(await parseSourceSpec('docker-archive:b.tar:@1')).toEqual({ kind: 'docker-archive', path: 'b.tar', ref: '@1' });
    expect(await parseSourceSpec('oci:dir:v1')).toEqual({ kind: 'oci-layout', path: 'dir', ref: 'v1' });
    expect(await parseSourceSpec('oci-archive:x.tar')).toEqual({ kind: 'oci-archive', path: 'x.tar' });
    expect(await parseSourceSpec('conf:/nix/store/x-conf.json')).toEqual({ kind: 'conf', path: '/nix/store/x-conf.json' });
    await expect(parseSourceSpec('oci:')).rejects.toThrow(/has no path/);
  });

  test('bare paths are sniffed: layout dir, conf JSON, OCI archive, docker-archive (plain or gzip)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'nixreg-sniff-'));
    mkdirSync(join(d, 'layout'));
    writeFileSync(join(d, 'layout', 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(d, 'conf.json'), '  {"store_layers": []}');
    const oci = Buffer.concat([goTarFile('oci-layout', Buffer.from('{}')), goTarFile('index.json', Buffer.from('{}')), TAR_TRAILER]);
    writeFileSync(join(d, 'oci.tar'), oci);
    writeFileSync(join(d, 'oci.tar.gz'), gzipSync(oci));
    writeFileSync(join(d, 'docker.tar.gz'), gzipSync(layerTar({ 'manifest.json': '[]' })));
    mkdirSync(join(d, 'empty'));
    expect(await sniffSource(join(d, 'layout'))).toBe('oci-layout');
    expect(await sniffSource(join(d, 'conf.json'))).toBe('conf');
    expect(await sniffSource(join(d, 'oci.tar'))).toBe('oci-archive');
    expect(await sniffSource(join(d, 'oci.tar.gz'))).toBe('oci-archive');
    expect(await sniffSource(join(d, 'docker.tar.gz'))).toBe('docker-archive');
    await expect(sniffSource(join(d, 'empty'))).rejects.toThrow(/without an oci-layout file/);
    await expect(sniffSource(join(d, 'nginx:latest'))).rejects.toThrow(/does not exist \(for a registry image write docker:\/\//);
  });
});

describe('docker-archive image choice (c/image rules)', () => {
  const entries = [
    { Config: 'a.json', RepoTags: ['docker.io/library/img:latest'], Layers: [] },
    { Config: 'b.json', RepoTags: ['example.org/o/r:2'], Layers: [] },
  ];
  test('by normalised NAME[:TAG], by @N, and only one image without a reference', () => {
    expect(chooseEntry(entries, 'img', 'x').Config).toBe('a.json');
    expect(chooseEntry(entries, 'library/img:latest', 'x').Config).toBe('a.json');
    expect(chooseEntry(entries, 'example.org/o/r:2', 'x').Config).toBe('b.json');
    expect(chooseEntry(entries, '@1', 'x').Config).toBe('b.json');
    expect(chooseEntry(entries.slice(0, 1), undefined, 'x').Config).toBe('a.json');
    expect(() => chooseEntry(entries, undefined, 'x')).toThrow(/holds 2 images; name one .*docker.io\/library\/img:latest, example.org\/o\/r:2/);
    expect(() => chooseEntry(entries, 'example.org/o/r:3', 'x')).toThrow(/no image tagged example.org\/o\/r:3/);
    expect(() => chooseEntry(entries, '@2', 'x')).toThrow(/no image @2/);
    expect(normalTag('img')).toBe('docker.io/library/img:latest');
  });

  test("the generated manifest is Go's json.Marshal of c/image's schema2 (fixed field order, compact)", () => {
    const m = generatedManifest({ mediaType: 'application/vnd.docker.container.image.v1+json', digest: 'sha256:' + 'a'.repeat(64), size: 7 }, [
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: 'sha256:' + 'b'.repeat(64), size: 10240 },
    ]);
    expect(m.toString()).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:' +
        'a'.repeat(64) +
        '"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":10240,"digest":"sha256:' +
        'b'.repeat(64) +
        '"}]}',
    );
  });
});
