import { describe, expect, it } from 'vitest';
import { prefetchTarget } from '../../src/cli/commands/prefetch.js';
import { normalizeTaggedName } from '../../src/reference/reference.js';

// nix-prefetch-docker's arguments: the name stays as written (pullImage's imageName), the fetch goes where docker
// and skopeo would send it, and the archive's RepoTag is the normalised name, as skopeo's docker-archive writes it.
const D = `sha256:${'a'.repeat(64)}`;

describe('prefetch arguments', () => {
  it('a bare Docker Hub name with a tag: fetched from docker.io/library, printed as given', () => {
    expect(prefetchTarget(['nginx', '1.25'], {})).toEqual({ imageName: 'nginx', imageTag: '1.25', registry: 'docker.io', repository: 'library/nginx' });
    expect(normalizeTaggedName('nginx:1.25')).toEqual({ name: 'docker.io/library/nginx', tag: '1.25' });
  });

  it('a user repository on Docker Hub, docker:// prefixed, and a digest positional', () => {
    expect(prefetchTarget(['docker://nixos/nix', D], {})).toEqual({ imageName: 'nixos/nix', imageDigest: D, registry: 'docker.io', repository: 'nixos/nix' });
  });

  it('a host keeps its registry; --image-name/--image-tag/--image-digest win over positionals', () => {
    expect(prefetchTarget(['127.0.0.1:5000/test/app', '1'], { imageTag: '2' })).toEqual({
      imageName: '127.0.0.1:5000/test/app',
      imageTag: '2',
      registry: '127.0.0.1:5000',
      repository: 'test/app',
    });
    expect(prefetchTarget([], { imageName: 'alpine', imageDigest: D })).toEqual({
      imageName: 'alpine',
      imageDigest: D,
      registry: 'docker.io',
      repository: 'library/alpine',
    });
  });

  it('bad arguments: usage errors', () => {
    expect(() => prefetchTarget([], {})).toThrow(/no image name/);
    expect(() => prefetchTarget(['a', 'b', 'c'], {})).toThrow(/at most 2 positionals/);
    expect(() => prefetchTarget(['Nginx'], {})).toThrow(/lowercase/);
  });
});
