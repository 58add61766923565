import { describe, expect, it } from 'vitest';
import { parseChallenge, parseChallenges, pickChallenge } from '../../src/registry/auth/challenge.js';

describe('WWW-Authenticate parsing (distribution authchallenge grammar)', () => {
  it('parses a Docker Hub bearer challenge', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
    });
  });
  it('lower-cases scheme and keys, keeps value case', () => {
    expect(parseChallenge('BASIC Realm="My Registry"')).toEqual({ scheme: 'basic', params: { realm: 'My Registry' } });
  });
  it('handles unquoted tokens, spaces around = and commas', () => {
    expect(parseChallenge('Bearer realm = "r" , service=svc,error=insufficient_scope')).toEqual({
      scheme: 'bearer',
      params: { realm: 'r', service: 'svc', error: 'insufficient_scope' },
    });
  });
  it('unescapes backslash escapes inside quotes and keeps commas/equals in quoted values', () => {
    expect(parseChallenge('Bearer realm="a\\"b\\\\c,d=e"')!.params.realm).toBe('a"b\\c,d=e');
  });
  it('scope with spaces and several actions', () => {
    expect(parseChallenge('Bearer scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"')!.params).toEqual({
      scope: 'repository:a/b:pull,push repository:c:pull',
      error: 'insufficient_scope',
    });
  });
  it('scheme without params; empty header', () => {
    expect(parseChallenge('Negotiate')).toEqual({ scheme: 'negotiate', params: {} });
    expect(parseChallenge('')).toBeUndefined();
  });
  it('stops at an unterminated quote, keeping what came before', () => {
    expect(parseChallenge('Bearer service="s",realm="oops')).toEqual({ scheme: 'bearer', params: { service: 's' } });
  });
  it('several header lines: picks the first basic/bearer in header order', () => {
    const cs = parseChallenges(['Negotiate', 'Basic realm="x"', 'Bearer realm="y"']);
    expect(cs.map((c) => c.scheme)).toEqual(['negotiate', 'basic', 'bearer']);
    expect(pickChallenge(cs)).toEqual({ scheme: 'basic', params: { realm: 'x' } });
    expect(parseChallenges(undefined)).toEqual([]);
    expect(pickChallenge(parseChallenges('Digest realm="z"'))).toBeUndefined();
  });
});
