import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { NIXREG_BIN } from '../helpers/cli.js';
import { basicAuth, LAYERS, pushTestImage } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { startTokenServer, type TokenServer } from '../helpers/token-server.js';
import { makeSelfSignedCert } from '../helpers/tls.js';
import { requireTool } from '../helpers/tools.js';

/**
 * login / logout and NIXREG_USERNAME / NIXREG_PASSWORD against Debian's registry with htpasswd (Basic) and with a
 * token server over TLS (Bearer); skopeo reads what login wrote. Everything the CLI prints (with --debug and
 * NIXREG_DEBUG=1) is scanned for the secrets, raw and base64.
 */
const PW = 'dora-PW-5nq2x8';
const WRONG = 'dora-WRONG-7m1zc4';
const TOKEN_PW = 'eve-PW-3kd8wq';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const SECRETS = [PW, WRONG, TOKEN_PW, b64(`dora:${PW}`), b64(`dora:${WRONG}`), b64(`eve:${TOKEN_PW}`), 'eyJhbGciOiJSUzI1NiIs'];

let tmp: string;
let home: string;
let basic: Distribution;
const captured: string[] = [];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI with a private HOME and runtime directory, stdin as given; keep all output for the scan. */
function nixreg(args: string[], o: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [NIXREG_BIN, ...args, ...(args[0] === 'logout' ? [] : ['--debug'])], {
      env: { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, '.config'), NIXREG_DEBUG: '1', ...o.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('latin1').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('latin1').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {});
    child.stdin.end(o.stdin ?? '');
    child.on('close', (status) => {
      captured.push(stdout + stderr);
      done({ status, stdout, stderr });
    });
  });
}

const authFile = () => join(home, 'run', 'containers', 'auth.json');
const nixregLine = (r: Run) => r.stderr.split('\n').filter((l) => l.startsWith('nixreg:'));

beforeAll(async () => {
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-login-'));
  home = join(tmp, 'home');
  mkdirSync(home);
  basic = await startDistribution({ htpasswd: { dora: PW } });
  await pushTestImage(basic.url, 'team/app', simpleImage([LAYERS.L3()]), 'v1', basicAuth('dora', PW));
}, 60_000);

afterAll(async () => {
  await basic?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('login and logout', () => {
  it('refuses a wrong password and writes nothing', async () => {
    const r = await nixreg(['login', basic.host, '--username', 'dora', '--password-stdin'], { stdin: WRONG + '\n' });
    expect(r.status).toBe(3);
    expect(nixregLine(r)).toEqual([`nixreg: login to ${basic.host} failed: the registry refused the username and password (HTTP 401); nothing was stored`]);
    expect(existsSync(authFile())).toBe(false);
  });

  it('stores the auths entry docker, podman and skopeo read, mode 0600, keeping the rest of the file', async () => {
    mkdirSync(join(home, 'run', 'containers'), { recursive: true });
    writeFileSync(authFile(), JSON.stringify({ auths: { 'other.example': { auth: b64('x:y') } }, credHelpers: { 'helper.example': 'pass' } }));
    const r = await nixreg(['login', basic.host, '-u', 'dora', '--password-stdin'], { stdin: PW + '\n' });
    expect(r.stderr).not.toMatch(/^nixreg:/m);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`Login Succeeded (${basic.host}, stored in ${authFile()})\n`);
    expect(statSync(authFile()).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(authFile(), 'utf8'))).toEqual({
      auths: { 'other.example': { auth: b64('x:y') }, [basic.host]: { auth: b64(`dora:${PW}`) } },
      credHelpers: { 'helper.example': 'pass' },
    });
    expect(readdirSync(join(home, 'run', 'containers'))).toEqual(['auth.json']);
    // nixreg reads it without flags, skopeo with --authfile
    const tags = await nixreg(['tags', `${basic.host}/team/app`]);
    expect(tags.stdout).toBe('v1\n');
    const sk = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', '--authfile', authFile(), `docker://${basic.host}/team/app:v1`], {
      encoding: 'utf8',
    });
    expect(sk.status).toBe(0);
    expect(JSON.parse(sk.stdout).schemaVersion).toBe(2);
    const json = await nixreg(['login', basic.host, '-u', 'dora', '--password-stdin', '--json'], { stdin: PW });
    expect(JSON.parse(json.stdout)).toEqual({ Registry: basic.host, Username: 'dora', AuthFile: authFile() });
  });

  it('logout removes only that entry; a second logout says there is none', async () => {
    const r = await nixreg(['logout', basic.host]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`Removed login credentials for ${basic.host} from ${authFile()}\n`);
    expect(JSON.parse(readFileSync(authFile(), 'utf8')).auths).toEqual({ 'other.example': { auth: b64('x:y') } });
    const again = await nixreg(['logout', basic.host]);
    expect(again.status).toBe(4);
    expect(nixregLine(again)).toEqual([`nixreg: not logged in to ${basic.host} in ${authFile()}; nothing was removed`]);
    const anon = await nixreg(['tags', `${basic.host}/team/app`]);
    expect(anon.status).toBe(3);
  });

  it('login asks for the password on stdin rather than an argument', async () => {
    const r = await nixreg(['login', basic.host, '-u', 'dora']);
    expect(r.status).toBe(2);
    expect(nixregLine(r)).toEqual(['nixreg: give the password on stdin with --password-stdin (or in NIXREG_PASSWORD)']);
    const creds = await nixreg(['login', basic.host, '--creds', `dora:${PW}`]);
    expect(creds.status).toBe(2);
  });

  it('NIXREG_USERNAME / NIXREG_PASSWORD reach only the registry NIXREG_REGISTRY names', async () => {
    const env = { NIXREG_USERNAME: 'dora', NIXREG_PASSWORD: PW };
    const ok = await nixreg(['tags', `${basic.host}/team/app`], { env: { ...env, NIXREG_REGISTRY: basic.host } });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('v1\n');
    expect(ok.stderr).toContain('credentials for');
    const other = await nixreg(['tags', `${basic.host}/team/app`], { env: { ...env, NIXREG_REGISTRY: 'ghcr.io' } });
    expect(other.status).toBe(3);
    expect(nixregLine(other)).toEqual([expect.stringContaining('(anonymous)')]);
    const unscoped = await nixreg(['tags', `${basic.host}/team/app`], { env });
    expect(unscoped.status).toBe(2);
    expect(nixregLine(unscoped)).toEqual([
      'nixreg: NIXREG_USERNAME/NIXREG_PASSWORD are set but NIXREG_REGISTRY, the registry they are for, is not; set it to host[:port]',
    ]);
    const wrong = await nixreg(['tags', `${basic.host}/team/app`], { env: { ...env, NIXREG_PASSWORD: WRONG, NIXREG_REGISTRY: basic.host } });
    expect(wrong.status).toBe(3);
    expect(nixregLine(wrong)).toEqual([expect.stringContaining('with credentials from NIXREG_USERNAME/NIXREG_PASSWORD')]);
    const login = await nixreg(['login', basic.host, '--authfile', join(tmp, 'env-auth.json')], { env: { ...env, NIXREG_REGISTRY: basic.host } });
    expect(login.status).toBe(0);
    expect(JSON.parse(readFileSync(join(tmp, 'env-auth.json'), 'utf8')).auths[basic.host]).toEqual({ auth: b64(`dora:${PW}`) });
  });
});

describe('the other registry commands with credentials', () => {
  it('digest, tag, index, gc and delete with NIXREG_* and --creds, right and wrong', async () => {
    const scoped = { NIXREG_USERNAME: 'dora', NIXREG_PASSWORD: PW, NIXREG_REGISTRY: basic.host };
    const ref = `${basic.host}/team/app`;
    const ok = async (args: string[], env: Record<string, string> = scoped) => {
      const r = await nixreg(args, { env });
      expect(r.status, r.stderr).toBe(0);
      return r;
    };
    await ok(['digest', `${ref}:v1`]);
    await ok(['tag', `${ref}:v1`, 'v2']);
    await ok(['index', 'create', `${ref}:multi`, `${ref}:v1`]);
    await ok(['gc', ref, '--keep', 'v*', '--keep', 'multi', '--tagged-only', '--dry-run']);
    await ok(['tags', ref, '--creds', `dora:${PW}`], {});
    for (const args of [
      ['digest', `${ref}:v1`],
      ['tag', `${ref}:v1`, 'v3'],
      ['index', 'append', `${ref}:multi`, `${ref}:v1`],
      ['gc', ref, '--keep', 'v1', '--tagged-only'],
      ['delete', `${ref}:v2`],
    ]) {
      const bad = await nixreg(args, { env: { ...scoped, NIXREG_PASSWORD: WRONG } });
      expect(bad.status, bad.stderr).toBe(3);
      expect(nixregLine(bad)).toHaveLength(1);
      const badFlag = await nixreg([...args, '--creds', `dora:${WRONG}`]);
      expect(badFlag.status, badFlag.stderr).toBe(3);
    }
    await ok(['delete', `${ref}:multi`]);
  });
});

describe('login with a token server over TLS', () => {
  let ts: TokenServer;
  let secured: Distribution;
  let certDir: string;
  beforeAll(async () => {
    const cert = makeSelfSignedCert('127.0.0.1', mkdtempSync(join(tmp, 'tls-')));
    certDir = join(tmp, 'certs');
    mkdirSync(certDir, { recursive: true });
    copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
    ts = await startTokenServer({ users: { eve: TOKEN_PW } });
    secured = await startDistribution({
      token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootCertBundle: ts.rootCertBundle },
      tls: { certFile: cert.certFile, keyFile: cert.keyFile },
    });
  }, 60_000);
  afterAll(async () => {
    await secured?.stop();
    await ts?.stop();
  });

  it('checks the password with the token server before storing it', async () => {
    const file = join(tmp, 'token-auth.json');
    const bad = await nixreg(['login', secured.host, '-u', 'eve', '--password-stdin', '--cert-dir', certDir, '--authfile', file], { stdin: WRONG });
    expect(bad.status).toBe(3);
    expect(nixregLine(bad)).toEqual([`nixreg: login to ${secured.host} failed: the registry refused the username and password; nothing was stored`]);
    expect(existsSync(file)).toBe(false);
    const good = await nixreg(['login', secured.host, '-u', 'eve', '--password-stdin', '--cert-dir', certDir, '--authfile', file, '--quiet'], {
      stdin: TOKEN_PW,
    });
    expect(good.stdout).toBe('');
    expect(good.status).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ auths: { [secured.host]: { auth: b64(`eve:${TOKEN_PW}`) } } });
    expect(ts.requests.some((q) => q.account === 'eve' && q.authorized)).toBe(true);
  });
});

describe('secrets', () => {
  it('no output of the runs above holds a secret, raw or base64', () => {
    expect(captured.length).toBeGreaterThan(10);
    for (const text of captured) for (const s of SECRETS) expect(text).not.toContain(s);
  });
});
