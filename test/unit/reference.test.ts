import { describe, expect, it } from 'vitest';
import { normalizeTaggedName, parseImageReference } from '../../src/reference/reference.js';
import { NixregError, ExitCode } from '../../src/errors.js';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseImageReference', () => {
  const ok: [string, Record<string, unknown>][] = [
    ['nginx', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/nginx', name: 'docker.io/library/nginx', tag: undefined }],
    ['nginx:1.25', { repository: 'library/nginx', tag: '1.25' }],
    ['nixos/nix:2.19.3', { registry: 'docker.io', repository: 'nixos/nix', tag: '2.19.3', name: 'docker.io/nixos/nix' }],
    ['docker.io/nginx', { repository: 'library/nginx', name: 'docker.io/library/nginx' }],
    ['index.docker.io/library/nginx', { registry: 'docker.io', name: 'docker.io/library/nginx' }],
    ['docker://alpine:3', { name: 'docker.io/library/alpine', tag: '3' }],
    ['quay.io/coreos/etcd:v3.5', { registry: 'quay.io', apiHost: 'quay.io', repository: 'coreos/etcd', tag: 'v3.5' }],
    ['127.0.0.1:5000/test/img:1.0', { registry: '127.0.0.1:5000', apiHost: '127.0.0.1:5000', repository: 'test/img', tag: '1.0' }],
    ['localhost/foo', { registry: 'localhost', repository: 'foo', name: 'localhost/foo' }],
    ['localhost:5000/foo', { registry: 'localhost:5000', repository: 'foo' }],
    ['myhost:5000/a/b/c', { registry: 'myhost:5000', repository: 'a/b/c' }],
    ['foo/bar', { registry: 'docker.io', repository: 'foo/bar' }], // "foo" has no . or : → not a registry
    [`alpine@${D}`, { repository: 'library/alpine', digest: D, tag: undefined }],
    [`ghcr.io/o/r:v1@${D}`, { registry: 'ghcr.io', repository: 'o/r', tag: 'v1', digest: D }],
    ['a.b-c/x__y.z-w:T_1.2-3', { registry: 'a.b-c', repository: 'x__y.z-w', tag: 'T_1.2-3' }],
    ['[::1]:5000/img', { registry: '[::1]:5000', repository: 'img' }],
  ];
  for (const [input, want] of ok) {
    it(`parses ${input}`, () => {
      const r = parseImageReference(input);
      for (const [k, v] of Object.entries(want)) expect((r as unknown as Record<string, unknown>)[k], k).toBe(v);
    });
  }

  const bad = [
    '',
    'Nginx',
    'docker.io/Library/nginx',
    'nginx:',
    'nginx:-bad',
    'nginx:' + 'a'.repeat(129),
    'nginx@sha256:abc',
    'nginx@md5:' + 'a'.repeat(32),
    'foo//bar',
    'foo/bar/',
    '-foo',
    'foo--/bar',
    'ab'.repeat(32),
    'host:port:5000/x',
    'x/' + 'a'.repeat(260),
  ];
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))} with a one-line usage error`, () => {
      let err: unknown;
      try {
        parseImageReference(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NixregError);
      expect((err as NixregError).exitCode).toBe(ExitCode.usage);
      expect((err as Error).message).not.toContain('\n');
    });
  }
});

describe('normalizeTaggedName (skopeo docker-archive REF)', () => {
  it.each([
    ['test/img:1.0', 'docker.io/test/img', '1.0'],
    ['img', 'docker.io/library/img', 'latest'],
    ['ghcr.io/o/r:v1', 'ghcr.io/o/r', 'v1'],
    ['localhost:5000/foo', 'localhost:5000/foo', 'latest'],
    ['nixos/nix:2.19.3', 'docker.io/nixos/nix', '2.19.3'],
  ])('%s → %s:%s', (input, name, tag) => {
    expect(normalizeTaggedName(input)).toEqual({ name, tag });
  });
  it('rejects a digest', () => {
    expect(() => normalizeTaggedName(`img@${D}`)).toThrow(/digest/);
    expect(() => normalizeTaggedName(`img:1@${D}`)).toThrow(NixregError);
  });
});
