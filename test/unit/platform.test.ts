import { describe, expect, it } from 'vitest';
import { goArch, hostPlatform, selectPlatform, variantCandidates } from '../../src/manifest/platform.js';
import { parseManifest, type Descriptor, type ImageIndex } from '../../src/manifest/manifest.js';
import { MediaType } from '../../src/manifest/media-types.js';
import { NixregError, ExitCode } from '../../src/errors.js';

const dig = (n: number) => 'sha256:' + n.toString(16).padStart(64, '0');
const entry = (n: number, os: string, architecture: string, variant?: string): Descriptor => ({
  mediaType: MediaType.ociManifest,
  digest: dig(n),
  size: 100,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});
const index = (...m: Descriptor[]): ImageIndex => ({ kind: 'index', mediaType: MediaType.ociIndex, schemaVersion: 2, manifests: m });

describe('variant candidates (c/image order)', () => {
  it.each([
    ['arm64', 'v8', ['v8', '']],
    ['arm64', undefined, ['', 'v8']],
    ['arm', 'v7', ['v7', 'v6', 'v5', '']],
    ['arm', undefined, ['', 'v8', 'v7', 'v6', 'v5']],
    ['amd64', undefined, ['']],
    ['amd64', 'v3', ['v3', '']],
  ])('%s/%s', (arch, variant, want) => expect(variantCandidates(arch, variant)).toEqual(want));
});

describe('selectPlatform', () => {
  const idx = index(
    entry(1, 'linux', 'amd64'),
    entry(2, 'linux', 'arm', 'v6'),
    entry(3, 'linux', 'arm', 'v7'),
    entry(4, 'linux', 'arm64', 'v8'),
    entry(5, 'unknown', 'unknown'),
  );
  it('exact match', () => expect(selectPlatform(idx, { os: 'linux', arch: 'amd64' }).digest).toBe(dig(1)));
  it('arm64 without variant finds linux/arm64/v8', () => expect(selectPlatform(idx, { os: 'linux', arch: 'arm64' }).digest).toBe(dig(4)));
  it('arm/v7 prefers v7 over v6', () => expect(selectPlatform(idx, { os: 'linux', arch: 'arm', variant: 'v7' }).digest).toBe(dig(3)));
  it('arm/v8 falls back to v7 (newest compatible)', () => expect(selectPlatform(idx, { os: 'linux', arch: 'arm', variant: 'v8' }).digest).toBe(dig(3)));
  it('arm/v5 finds nothing older; error lists platforms and skips attestations', () => {
    let err: unknown;
    try {
      selectPlatform(idx, { os: 'linux', arch: 'arm', variant: 'v5' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NixregError);
    expect((err as NixregError).exitCode).toBe(ExitCode.notFound);
    expect((err as Error).message).toContain('linux/arm/v5');
    expect((err as Error).message).toContain('linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8');
    expect((err as Error).message).not.toContain('unknown');
  });
  it('no variant given: entry without variant wins over a variant entry', () => {
    const i = index(entry(1, 'linux', 'arm', 'v7'), entry(2, 'linux', 'arm'));
    expect(selectPlatform(i, { os: 'linux', arch: 'arm' }).digest).toBe(dig(2));
  });
  it('first matching entry in list order wins', () => {
    const i = index(entry(7, 'linux', 'amd64'), entry(8, 'linux', 'amd64'));
    expect(selectPlatform(i, { os: 'linux', arch: 'amd64' }).digest).toBe(dig(7));
  });
  it('os must match', () => expect(() => selectPlatform(index(entry(1, 'windows', 'amd64')), { os: 'linux', arch: 'amd64' })).toThrow(/windows\/amd64/));
  it('entries without platform are a fallback', () => {
    const i = index(entry(1, 'linux', 's390x'), { mediaType: MediaType.ociManifest, digest: dig(9), size: 1 });
    expect(selectPlatform(i, { os: 'linux', arch: 'amd64' }).digest).toBe(dig(9));
  });
});

describe('host platform', () => {
  it.each([
    ['x64', 'amd64'],
    ['arm64', 'arm64'],
    ['arm', 'arm'],
    ['ia32', '386'],
    ['ppc64', 'ppc64le'],
    ['s390x', 's390x'],
    ['riscv64', 'riscv64'],
  ])('%s → %s', (n, g) => expect(goArch(n)).toBe(g));
  it('hostPlatform is linux/<GOARCH>', () => expect(hostPlatform()).toMatchObject({ os: 'linux', arch: goArch(process.arch) }));
});

describe('parseManifest', () => {
  const m = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: dig(1), size: 10 },
    layers: [{ mediaType: MediaType.dockerLayerGzip, digest: dig(2), size: 20 }],
  };
  it('docker schema2', () => {
    const p = parseManifest(Buffer.from(JSON.stringify(m)), MediaType.dockerManifest);
    expect(p.kind).toBe('image');
    if (p.kind === 'image') expect(p.layers[0]!.digest).toBe(dig(2));
  });
  it('OCI index by content-type; OCI manifest from application/json body shape', () => {
    expect(parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), MediaType.ociIndex).kind).toBe('index');
    const { mediaType: _, ...noMt } = m;
    expect(parseManifest(Buffer.from(JSON.stringify(noMt)), 'application/json').kind).toBe('image');
  });
  it('schema1 and unknown types give clear errors', () => {
    expect(() => parseManifest(Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), MediaType.dockerSchema1Signed)).toThrow(/schema1.*not supported/);
    expect(() => parseManifest(Buffer.from('{"schemaVersion":2}'), 'application/vnd.foo+json')).toThrow(/unsupported manifest media type/);
    expect(() => parseManifest(Buffer.from('nope'), MediaType.ociManifest)).toThrow(/not valid JSON/);
    expect(() =>
      parseManifest(Buffer.from(JSON.stringify({ ...m, layers: [{ mediaType: 'x', digest: 'md5:1', size: 1 }] })), MediaType.dockerManifest),
    ).toThrow(/layers\[0\]/);
  });
});
