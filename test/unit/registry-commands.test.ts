import { describe, expect, it } from 'vitest';
import { NixregError } from '../../src/errors.js';
import { parsePlatform, platformMatches } from '../../src/manifest/platform-string.js';
import { checkRequiredPlatforms } from '../../src/manifest/required-platforms.js';
import { credentialsFromEnv } from '../../src/registry/auth/env-credentials.js';
import { globToRegExp } from '../../src/ops/gc.js';
import { loginRegistry } from '../../src/ops/login.js';

const entry = (os: string, architecture: string, variant?: string) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: 'sha256:' + '0'.repeat(64),
  size: 1,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

describe('--platform os/arch[/variant]', () => {
  it('parses the docker form and refuses others', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', arch: 'arm64', variant: 'v8' });
    expect(parsePlatform('Linux/AMD64')).toEqual({ os: 'linux', arch: 'amd64' });
    for (const bad of ['linux', 'linux/', '/amd64', 'a/b/c/d', 'linux/amd 64'])
      expect(() => parsePlatform(bad)).toThrow(/--platform takes os\/arch\[\/variant\]/);
  });

  it('matches arm64 without a variant as v8; a wanted platform without a variant takes any', () => {
    expect(platformMatches(entry('linux', 'arm64').platform, { os: 'linux', arch: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches(entry('linux', 'arm', 'v7').platform, { os: 'linux', arch: 'arm' })).toBe(true);
    expect(platformMatches(entry('linux', 'arm', 'v6').platform, { os: 'linux', arch: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches(entry('windows', 'amd64').platform, { os: 'linux', arch: 'amd64' })).toBe(false);
  });

  it('--require-platform names the missing platform and ignores attestations', () => {
    const idx = [entry('linux', 'amd64'), entry('unknown', 'unknown')];
    expect(() => checkRequiredPlatforms(idx, [{ os: 'linux', arch: 'amd64' }], 'r/a:1')).not.toThrow();
    expect(() =>
      checkRequiredPlatforms(
        idx,
        [
          { os: 'linux', arch: 'amd64' },
          { os: 'linux', arch: 'arm64', variant: 'v8' },
        ],
        'r/a:1',
      ),
    ).toThrow('index r/a:1 would lack the required platform linux/arm64/v8 (it has linux/amd64); nothing was tagged');
  });
});

describe('NIXREG_USERNAME / NIXREG_PASSWORD', () => {
  const env = { NIXREG_USERNAME: 'u', NIXREG_PASSWORD: 'p' };
  it('apply only to NIXREG_REGISTRY (Docker Hub aliases are one registry)', () => {
    expect(credentialsFromEnv('ghcr.io', { ...env, NIXREG_REGISTRY: 'ghcr.io' })).toEqual({
      username: 'u',
      password: 'p',
      source: 'NIXREG_USERNAME/NIXREG_PASSWORD',
    });
    expect(credentialsFromEnv('docker.io', { ...env, NIXREG_REGISTRY: 'https://index.docker.io/v1/' })?.username).toBe('u');
    expect(credentialsFromEnv('quay.io', { ...env, NIXREG_REGISTRY: 'ghcr.io' })).toBeUndefined();
    expect(credentialsFromEnv('127.0.0.1:5000', { ...env, NIXREG_REGISTRY: '127.0.0.1:5001' })).toBeUndefined();
    expect(credentialsFromEnv('ghcr.io', {})).toBeUndefined();
  });
  it('refuse to guess the registry, or half a pair', () => {
    expect(() => credentialsFromEnv('ghcr.io', env)).toThrow(NixregError);
    expect(() => credentialsFromEnv('ghcr.io', { NIXREG_USERNAME: 'u', NIXREG_REGISTRY: 'ghcr.io' })).toThrow(/must be set together/);
  });
});

describe('small parsers', () => {
  it('gc --keep globs', () => {
    const g = globToRegExp('v1.*');
    expect(['v1.0', 'v1.', 'v1.2.3'].every((t) => g.test(t))).toBe(true);
    expect(['v10', 'xv1.0', 'v1'].some((t) => g.test(t))).toBe(false);
    expect(globToRegExp('rc?').test('rc1')).toBe(true);
    expect(globToRegExp('rc?').test('rc10')).toBe(false);
  });
  it('login REGISTRY', () => {
    expect(loginRegistry('https://index.docker.io/v1/')).toBe('docker.io');
    expect(loginRegistry('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(() => loginRegistry('not a host')).toThrow(/is not a registry host\[:port\]/);
  });
});
