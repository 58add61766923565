import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { makeSelfSignedCert } from '../helpers/tls.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { basicAuth, LAYERS, makeImage, pushTestImage } from '../helpers/images.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { ExitCode } from '../../src/errors.js';

/**
 * `nixreg copy` sends each side's credentials only to that side's registry. Both registries accept the same user and
 * password, so a leaked --src-creds would make a copy without --dest-creds succeed: it must fail with the auth exit.
 */
const USER = 'carol';
const PW = 'same-pw-on-both';
let src: Distribution;
let dst: Distribution;
let work: string;

const copy = (...args: string[]) =>
  runCli(['copy', '-q', ...args], {
    cacheHome: join(work, 'cache'),
    // no auth file of the machine's user is found
    env: { HOME: work, XDG_RUNTIME_DIR: join(work, 'run'), REGISTRY_AUTH_FILE: join(work, 'none.json'), DOCKER_CONFIG: join(work, 'docker') },
  });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nixreg-copy-creds-'));
  src = await startDistribution({ htpasswd: { [USER]: PW } });
  dst = await startDistribution({ htpasswd: { [USER]: PW } });
  await pushTestImage(src.url, 'test/private', makeImage([{ tar: LAYERS.L3(), c: 'gzip' }], 'oci'), 'v1', basicAuth(USER, PW));
}, 120_000);

afterAll(async () => {
  await src?.stop();
  await dst?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nixreg copy: credentials per side', () => {
  test('docker:// → docker:// with --src-creds only: the destination never gets them', async () => {
    const r = await copy('--src-creds', `${USER}:${PW}`, `docker://${src.host}/test/private:v1`, `docker://${dst.host}/test/private:v1`);
    expect(r.status).toBe(ExitCode.auth);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(dst.host);
    expect(r.stderr).not.toContain(PW);
    const ok = await copy(
      '--src-creds',
      `${USER}:${PW}`,
      '--dest-creds',
      `${USER}:${PW}`,
      `docker://${src.host}/test/private:v1`,
      `docker://${dst.host}/test/private:v1`,
    );
    expect(ok.status, ok.stderr).toBe(0);
  }, 120_000);

  test('oci: → docker:// with --src-creds only: refused by the destination; with --dest-creds it lands', async () => {
    const dir = join(work, 'layout');
    expect((await copy('--src-creds', `${USER}:${PW}`, `docker://${src.host}/test/private:v1`, `oci:${dir}:v1`)).status).toBe(0);
    const r = await copy('--src-creds', `${USER}:${PW}`, `oci:${dir}:v1`, `docker://${dst.host}/test/fromlayout:v1`);
    expect(r.status).toBe(ExitCode.auth);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).not.toContain(PW);
    const ok = await copy('--dest-creds', `${USER}:${PW}`, `oci:${dir}:v1`, `docker://${dst.host}/test/fromlayout:v1`);
    expect(ok.status, ok.stderr).toBe(0);
  }, 120_000);

  test('--dest-creds are not sent to the source', async () => {
    const r = await copy('--dest-creds', `${USER}:${PW}`, `docker://${src.host}/test/private:v1`, `oci:${join(work, 'never')}:v1`);
    expect(r.status).toBe(ExitCode.auth);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(src.host);
  }, 120_000);
});

describe('nixreg copy: TLS settings per side', () => {
  test('docker:// (TLS, its CA in --src-cert-dir) → docker:// (plain http): the source is verified with the source cert dir', async () => {
    const cert = makeSelfSignedCert('127.0.0.1', mkdtempSync(join(work, 'tls-')));
    const certDir = join(work, 'src-certs');
    mkdirSync(certDir, { recursive: true });
    copyFileSync(cert.certFile, join(certDir, 'ca.crt'));
    const secured = await startDistribution({ tls: cert });
    const plain = await startDistribution();
    try {
      await pushTestImage(plain.url, 'test/staged', makeImage([{ tar: LAYERS.L3(), c: 'gzip' }], 'oci'), 'v1');
      const up = await copy(
        '--src-tls-verify=false',
        '--dest-cert-dir',
        certDir,
        `docker://${plain.host}/test/staged:v1`,
        `docker://${secured.host}/test/tls:v1`,
      );
      expect(up.status, up.stderr).toBe(0);
      const r = await copy('--src-cert-dir', certDir, '--dest-tls-verify=false', `docker://${secured.host}/test/tls:v1`, `docker://${plain.host}/test/tls:v1`);
      expect(r.status, r.stderr).toBe(0);
    } finally {
      await secured.stop();
      await plain.stop();
    }
  }, 180_000);
});
