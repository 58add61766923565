import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { makeSelfSignedCert } from '../helpers/tls.js';
import { startMixedFront } from '../helpers/mixed-front.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

/**
 * The mock's harbor profile (bearer tokens, absolute upload Locations, 403 on a cross-project mount) behind a
 * TLS-terminating front that, like Harbor behind a proxy that drops X-Forwarded-Proto
 * (https://github.com/goharbor/harbor/issues/6405), hands back upload Locations of `http://same-host:same-port/…`.
 * The front speaks TLS and plain HTTP on one port (sniffing the first byte) and names itself, over https, as the
 * token realm, as Harbor's /service/token is; its plain side records every Authorization header it receives.
 * Needs bin/nixreg.js built (npm run build).
 */
const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/nixreg.js');
const CASE = join(FIXTURES, 'cases/a-defaults');
const PW = 'harbor-PW-7fq2m1';

let root: string;
let storeRoot: string;
let backend: Registry;
let front: Server;
let frontHost: string;
let certDir: string;
const plainAuthorizations: string[] = [];
const plainRequests: string[] = [];
let downgraded = 0;

function nixreg(args: string[], cache: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const home = join(root, 'home');
    const child = spawn('node', [BIN, ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        XDG_RUNTIME_DIR: join(home, 'run'),
        XDG_CONFIG_HOME: join(home, '.config'),
        XDG_CACHE_HOME: join(root, cache),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-harbor-origin-'));
  mkdirSync(join(root, 'home', 'run'), { recursive: true });
  storeRoot = await buildStoreTree(join(root, 'store'));
  const cert = makeSelfSignedCert('127.0.0.1', mkdtempSync(join(root, 'tls-')));
  certDir = join(root, 'certs');
  mkdirSync(certDir);
  copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
  backend = await startRegistry({ quirks: 'harbor', auth: { mode: 'none', users: { robot$ci: PW } } });
  ({ server: front, host: frontHost } = await startMixedFront(backend.port, cert, { plainRequests, plainAuthorizations, onDowngrade: () => downgraded++ }));
}, 120_000);

afterAll(async () => {
  await new Promise<void>((r) => front?.close(() => r()));
  await backend?.close();
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(root, { recursive: true, force: true });
});

describe('harbor behind a TLS front that downgrades upload Locations', () => {
  it('a conf pushed twice (the second time trying a refused cross-project mount) and pulled back: no Authorization in clear text', async () => {
    const creds = ['--creds', `robot$ci:${PW}`, '--cert-dir', certDir];
    const push = (repo: string) =>
      nixreg(['push', join(CASE, 'conf.json'), `docker://${frontHost}/${repo}:1`, '--store-root', storeRoot, '--json', '--quiet', ...creds], 'cache');
    const first = await push('proj-a/app');
    expect(first.stderr).not.toContain('nixreg:');
    expect(first.status).toBe(0);
    backend.resetCounters();
    const second = await push('proj-b/app');
    expect(second.stderr).not.toContain('nixreg:');
    expect(second.status).toBe(0);
    const digest = JSON.parse(second.stdout).digest as string;
    expect(digest).toBe(JSON.parse(first.stdout).digest);
    expect(backend.storage.hasManifest('proj-b/app', digest)).toBe(true);
    const mounts = backend.log.filter((e) => e.method === 'POST' && e.url.includes('mount='));
    expect(mounts.length).toBeGreaterThan(0);
    expect(mounts.every((e) => e.status === 403)).toBe(true);
    const pull = await nixreg(['pull', `${frontHost}/proj-b/app:1`, '-o', join(root, 'b.tar'), ...creds], 'cache-pull');
    expect(pull.stderr).not.toContain('nixreg:');
    expect(pull.status).toBe(0);
    expect(downgraded).toBeGreaterThan(0);
    expect(backend.log.some((e) => e.route === 'token')).toBe(true);
    expect(plainAuthorizations).toEqual([]);
  }, 180_000);
});
