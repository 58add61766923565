import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { makeSelfSignedCert } from '../helpers/tls.js';
import { startMixedFront } from '../helpers/mixed-front.js';

/**
 * Credentials go only to the origin (scheme + host + port) they were given for. The registry here sits behind a
 * TLS-terminating front that, like Harbor / Artifactory / Nexus behind a proxy, hands back upload Locations of
 * `http://same-host:same-port/...`. The front speaks TLS and plain HTTP on one port (sniffing the first byte), so a
 * client that compares hosts only would send its Authorization header in clear text to the very same port; the
 * plain side records every Authorization it sees. Needs bin/nixreg.js built (npm run build).
 */
const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/nixreg.js');
const ARCHIVE = join(resolve(import.meta.dirname, '..'), 'fixtures/docker-archive/skopeo-tiny.tar');
const PW = 'origin-PW-5kd81q';

let root: string;
let backend: Registry;
let front: Server;
let frontHost: string;
let certDir: string;
const plainAuthorizations: string[] = [];
const plainRequests: string[] = [];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function nixreg(args: string[]): Promise<Run> {
  return new Promise((done) => {
    const home = join(root, 'home');
    const child = spawn('node', [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, '.config') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-origin-'));
  mkdirSync(join(root, 'home', 'run'), { recursive: true });
  const cert = makeSelfSignedCert('127.0.0.1', mkdtempSync(join(root, 'tls-')));
  certDir = join(root, 'certs');
  mkdirSync(certDir);
  copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
  backend = await startRegistry({ auth: { mode: 'basic', users: { alice: PW } } });
  ({ server: front, host: frontHost } = await startMixedFront(backend.port, cert, { plainRequests, plainAuthorizations }));
}, 60_000);

afterAll(async () => {
  await new Promise<void>((r) => front?.close(() => r()));
  await backend?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('credentials by origin', () => {
  it('an upload Location downgraded to http on the same host and port is upgraded: no Authorization in clear text', async () => {
    const run = await nixreg(['push', ARCHIVE, `docker://${frontHost}/origin/up:1`, '--creds', `alice:${PW}`, '--cert-dir', certDir]);
    expect(run.stderr).not.toContain('nixreg:');
    expect(run.status).toBe(0);
    expect(plainAuthorizations).toEqual([]);
    const pull = await nixreg(['pull', `${frontHost}/origin/up:1`, '-o', join(root, 'up.tar'), '--creds', `alice:${PW}`, '--cert-dir', certDir]);
    expect(pull.stderr).not.toContain('nixreg:');
    expect(pull.status).toBe(0);
    expect(plainAuthorizations).toEqual([]);
  }, 120_000);

  it('a --cert-dir that does not exist is a usage error, never a fall back to plain http', async () => {
    const before = plainRequests.length;
    const missing = join(root, 'no-such-certs');
    const run = await nixreg(['pull', `${frontHost}/origin/up:1`, '-o', join(root, 'missing.tar'), '--creds', `alice:${PW}`, '--cert-dir', missing]);
    expect(run.status).toBe(2);
    expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`^nixreg: .*${missing.replace(/[/.]/g, '\\$&')}`));
    expect(plainRequests.slice(before)).toEqual([]);
    expect(plainAuthorizations).toEqual([]);
  }, 120_000);
});
