import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authFileCandidates, normalizeAuthKey, parseCredsFlag, resolveCredentials } from '../../src/registry/auth/credentials.js';
import { NixregError } from '../../src/errors.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
let root: string;
let home: string;
let bin: string;

/** A fake docker-credential-test: knows only 'helper.example' and 'token.example'. */
const HELPER = `#!/bin/sh
read -r url || true
[ -z "$url" ] && url=$(cat)
case "$url" in
  helper.example) printf '{"ServerURL":"helper.example","Username":"helperuser","Secret":"helper-secret"}' ;;
  token.example) printf '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-xyz"}' ;;
  broken.example) printf 'leaked-secret-in-broken-output'; exit 3 ;;
  *) printf 'credentials not found in native keychain'; exit 1 ;;
esac
`;

function envFor(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HOME: home, PATH: `${bin}:${process.env.PATH}`, XDG_RUNTIME_DIR: join(root, 'run'), ...extra };
}

function writeJson(path: string, obj: unknown) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, JSON.stringify(obj));
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-creds-'));
  home = join(root, 'home');
  bin = join(root, 'bin');
  mkdirSync(home, { recursive: true });
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'docker-credential-test'), HELPER);
  chmodSync(join(bin, 'docker-credential-test'), 0o755);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('credentials lookup', () => {
  it('anonymous when nothing exists', async () => {
    expect(await resolveCredentials({ registry: 'quay.io', env: envFor(), home })).toEqual({ source: 'none' });
  });

  it('--creds wins over everything', async () => {
    const file = join(root, 'explicit.json');
    writeJson(file, { auths: { 'quay.io': { auth: b64('fileuser:filepass') } } });
    const c = await resolveCredentials({ registry: 'quay.io', creds: { username: 'u', password: 'p' }, authfile: file, env: envFor(), home });
    expect(c).toEqual({ username: 'u', password: 'p', source: '--creds' });
  });

  it('search order: authfile > REGISTRY_AUTH_FILE > XDG_RUNTIME_DIR > XDG_CONFIG_HOME > DOCKER_CONFIG > ~/.dockercfg', async () => {
    const d = mkdtempSync(join(root, 'order-'));
    const files = {
      authfile: join(d, 'a.json'),
      registryAuthFile: join(d, 'r.json'),
      runtime: join(d, 'run', 'containers', 'auth.json'),
      config: join(d, 'cfg', 'containers', 'auth.json'),
      docker: join(d, 'dc', 'config.json'),
    };
    const entry = (u: string) => ({ auths: { 'reg.example:5000': { auth: b64(`${u}:pw-${u}`) } } });
    for (const [k, p] of Object.entries(files)) writeJson(p, entry(k));
    const h = join(d, 'home');
    writeJson(join(h, '.dockercfg'), { 'reg.example:5000': { auth: b64('legacy:pw-legacy') } });
    const env: Record<string, string> = {
      REGISTRY_AUTH_FILE: files.registryAuthFile,
      XDG_RUNTIME_DIR: join(d, 'run'),
      XDG_CONFIG_HOME: join(d, 'cfg'),
      DOCKER_CONFIG: join(d, 'dc'),
      HOME: h,
    };
    const who = async (o: { authfile?: string }, e: Record<string, string>) =>
      (await resolveCredentials({ registry: 'reg.example:5000', env: e, home: h, ...o })).username;
    expect(await who({ authfile: files.authfile }, env)).toBe('authfile');
    expect(await who({}, env)).toBe('registryAuthFile');
    const { REGISTRY_AUTH_FILE: _, ...e2 } = env;
    expect(await who({}, e2)).toBe('runtime');
    rmSync(files.runtime);
    expect(await who({}, e2)).toBe('config');
    rmSync(files.config);
    expect(await who({}, e2)).toBe('docker');
    rmSync(files.docker);
    expect(await who({}, e2)).toBe('legacy');
    const c = await resolveCredentials({ registry: 'reg.example:5000', env: e2, home: h });
    expect(c).toEqual({ username: 'legacy', password: 'pw-legacy', source: '~/.dockercfg' });
  });

  it('~/.docker/config.json when DOCKER_CONFIG is unset; source shown with ~', async () => {
    writeJson(join(home, '.docker', 'config.json'), { auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass:with:colons') } } });
    const c = await resolveCredentials({ registry: 'docker.io', repository: 'library/nginx', env: envFor(), home });
    expect(c).toEqual({ username: 'hubuser', password: 'hub:pass:with:colons', source: '~/.docker/config.json' });
    rmSync(join(home, '.docker'), { recursive: true });
  });

  it('auths: most specific namespaced key first, then host, then normalised keys; {} entries skipped', async () => {
    const f = join(root, 'ns.json');
    writeJson(f, {
      auths: {
        'https://ghcr.io/v2/': { auth: b64('normalised:x') },
        'ghcr.io/org': { auth: b64('org:x') },
        'ghcr.io/org/repo': { auth: b64('repo:x') },
        'quay.io': {},
        'http://quay.io': { username: 'plain', password: 'pw' },
      },
    });
    const u = async (registry: string, repository?: string) =>
      (await resolveCredentials({ registry, ...(repository ? { repository } : {}), authfile: f, env: envFor(), home })).username;
    expect(await u('ghcr.io', 'org/repo')).toBe('repo');
    expect(await u('ghcr.io', 'org/other')).toBe('org');
    expect(await u('ghcr.io', 'else/x')).toBe('normalised');
    expect(await u('quay.io', 'a/b')).toBe('plain');
  });

  it('an auth entry that decodes without a colon is one usage line naming the file and the registry key', async () => {
    const f = join(root, 'nocolon.json');
    writeJson(f, { auths: { 'colon.example': { auth: b64('no-colon-secret-9x') } } });
    const err = await resolveCredentials({ registry: 'colon.example', authfile: f, env: envFor(), home }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect((err as NixregError).exitCode).toBe(2);
    expect((err as NixregError).message).toContain(f);
    expect((err as NixregError).message).toContain('"colon.example"');
    expect((err as NixregError).message).not.toContain('no-colon-secret-9x');
    expect((err as NixregError).message).not.toContain('\n');
  });

  it('identitytoken is returned as an identity token', async () => {
    const f = join(root, 'idt.json');
    writeJson(f, { auths: { 'reg.example': { auth: b64('u:'), identitytoken: 'idtok' } } });
    const c = await resolveCredentials({ registry: 'reg.example', authfile: f, env: envFor(), home });
    expect(c.identityToken).toBe('idtok');
    expect(c.username).toBe('u');
  });

  it('credHelpers[host] wins over auths, and runs docker-credential-<name> get', async () => {
    const f = join(root, 'helpers.json');
    writeJson(f, {
      credHelpers: { 'helper.example': 'test', 'token.example': 'test', 'missing.example': 'test' },
      auths: { 'helper.example': { auth: b64('fromauths:x') } },
    });
    const c = await resolveCredentials({ registry: 'helper.example', authfile: f, env: envFor(), home });
    expect(c).toEqual({ username: 'helperuser', password: 'helper-secret', source: `docker-credential-test (from ${f})` });
    const t = await resolveCredentials({ registry: 'token.example', authfile: f, env: envFor(), home });
    expect(t.identityToken).toBe('refresh-xyz');
    expect(t.username).toBeUndefined();
    // "credentials not found in native keychain" → anonymous, not an error
    expect((await resolveCredentials({ registry: 'missing.example', authfile: f, env: envFor(), home })).source).toBe('none');
  });

  it('credsStore before auths; a missing store helper falls through to auths', async () => {
    const f = join(root, 'store.json');
    writeJson(f, { credsStore: 'test', auths: { 'helper.example': { auth: b64('fromauths:x') }, 'other.example': { auth: b64('other:x') } } });
    expect((await resolveCredentials({ registry: 'helper.example', authfile: f, env: envFor(), home })).username).toBe('helperuser');
    expect((await resolveCredentials({ registry: 'other.example', authfile: f, env: envFor(), home })).username).toBe('other');
    const g = join(root, 'store2.json');
    writeJson(g, { credsStore: 'desktop', auths: { 'other.example': { auth: b64('other2:x') } } });
    expect((await resolveCredentials({ registry: 'other.example', authfile: g, env: envFor(), home })).username).toBe('other2');
  });

  it('helper failures and bad files never leak secrets', async () => {
    const f = join(root, 'broken.json');
    writeJson(f, { credHelpers: { 'broken.example': 'test', 'nohelper.example': 'nonexistent' } });
    const err = await resolveCredentials({ registry: 'broken.example', authfile: f, env: envFor(), home }).catch((e) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect(err.message).toMatch(/docker-credential-test failed for broken.example \(exit code 3\)/);
    expect(err.message).not.toContain('leaked-secret');
    const e2 = await resolveCredentials({ registry: 'nohelper.example', authfile: f, env: envFor(), home }).catch((e) => e);
    expect(e2.message).toMatch(/docker-credential-nonexistent could not be run/);
    const bad = join(root, 'bad.json');
    writeFileSync(bad, '{"auths": {"x": {"auth": "c2VjcmV0cGFzcw=="}');
    const e3 = await resolveCredentials({ registry: 'x', authfile: bad, env: envFor(), home }).catch((e) => e);
    expect(e3.message).toMatch(/not valid JSON/);
    expect(e3.message).not.toContain('c2VjcmV0');
    const e4 = await resolveCredentials({ registry: 'x', authfile: join(root, 'nope.json'), env: envFor(), home }).catch((e) => e);
    expect(e4.message).toMatch(/does not exist/);
  });

  it('key normalisation and --creds parsing', () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeAuthKey('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeAuthKey('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(parseCredsFlag('alice:s3c:ret')).toEqual({ username: 'alice', password: 's3c:ret' });
    expect(parseCredsFlag('alice')).toEqual({ username: 'alice', password: '' });
    expect(() => parseCredsFlag(':x')).toThrow(NixregError);
    expect(
      authFileCandidates({ env: { HOME: '/h' }, home: '/h' })
        .map((f) => f.path)
        .slice(1),
    ).toEqual(['/h/.config/containers/auth.json', '/h/.docker/config.json', '/h/.dockercfg']);
  });
});
