import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { NIXREG_BIN, errorLines, runCli } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';
import { requireTool } from '../helpers/tools.js';
import { FIXTURES } from '../helpers/store-tree.js';

// `nixreg sign` / `nixreg verify` on Debian's distribution with keys openssl makes. cosign itself is not
// installable here (no Debian package, no npm package of the CLI), so the format is checked from both sides with
// openssl: openssl verifies nixreg's signature over the stored payload, and nixreg verifies a signature openssl
// made, stored by skopeo in the layout cosign's SIGNATURE_SPEC describes (payload layer + signature annotation).
const closure = `app = mk "signtest-app-1.0" "mkdir -p $out/bin && echo hi > $out/bin/hello";`;

let tmp: string;
let app: string;
let reg: Distribution;
const nixreg = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { cacheHome: join(tmp, 'cache'), env });
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const k = (name: string) => join(tmp, name);

async function pushImage(tag: string, env: string): Promise<string> {
  const r = await nixreg(['push', '--path', app, '--env', `V=${env}`, `docker://${reg.host}/signed:${tag}`, '--tls-verify=false', '--json']);
  expect(errorLines(r.stderr)).toEqual([]);
  return JSON.parse(r.stdout).digest as string;
}

beforeAll(async () => {
  for (const t of ['nix-build', 'skopeo', 'openssl']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-sign-'));
  app = buildTestClosure(tmp, closure);
  reg = await startDistribution();
  sh('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k('a.pem')]);
  sh('openssl', ['pkey', '-in', k('a.pem'), '-pubout', '-out', k('a.pub')]);
  sh('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k('b.pem')]);
  sh('openssl', ['pkey', '-in', k('b.pem'), '-pubout', '-out', k('b.pub')]);
});
afterAll(async () => {
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('nixreg sign / verify (cosign key-based layout)', () => {
  it("opens cosign's encrypted key file (scrypt + NaCl secretbox; fixture sealed by libsodium)", async () => {
    const dir = join(FIXTURES, 'sign-cosign-key');
    await pushImage('cosignkey', 'ck');
    const ok = await nixreg(['sign', `${reg.host}/signed:cosignkey`, '--key', join(dir, 'cosign.key'), '--tls-verify=false'], {
      COSIGN_PASSWORD: 'nixreg-test',
    });
    expect(errorLines(ok.stderr)).toEqual([]);
    expect(ok.status).toBe(0);
    expect((await nixreg(['verify', `${reg.host}/signed:cosignkey`, '--key', join(dir, 'cosign.pub'), '--tls-verify=false'])).status).toBe(0);
    const wrong = await nixreg(['sign', `${reg.host}/signed:cosignkey`, '--key', join(dir, 'cosign.key'), '--tls-verify=false'], { COSIGN_PASSWORD: 'nope' });
    expect(wrong.status).not.toBe(0);
    expect(errorLines(wrong.stderr)).toEqual([`nixreg: ${join(dir, 'cosign.key')}: cannot decrypt the key: wrong password?`]);
    const none = await nixreg(['sign', `${reg.host}/signed:cosignkey`, '--key', join(dir, 'cosign.key'), '--tls-verify=false'], { COSIGN_PASSWORD: undefined });
    expect(errorLines(none.stderr)).toEqual([
      `nixreg: ${join(dir, 'cosign.key')}: cannot decrypt the key (give the password with --key-password-stdin or COSIGN_PASSWORD)`,
    ]);
  });

  it('signs; nixreg verifies; openssl verifies the stored payload and signature; referrers lists it; a second signature is appended', async () => {
    const digest = await pushImage('1', 'one');
    const s = await nixreg(['sign', `${reg.host}/signed:1`, '--key', k('a.pem'), '--tls-verify=false', '--json']);
    expect(errorLines(s.stderr)).toEqual([]);
    expect(s.status).toBe(0);
    const sigTag = `sha256-${digest.slice(7)}.sig`;
    expect(JSON.parse(s.stdout).signatureTag).toBe(`${reg.host}/signed:${sigTag}`);

    const v = await nixreg(['verify', `${reg.host}/signed:1`, '--key', k('a.pub'), '--tls-verify=false', '--json']);
    expect(errorLines(v.stderr)).toEqual([]);
    expect(v.status).toBe(0);
    expect(JSON.parse(v.stdout).signatures[0].payload.critical).toEqual({
      identity: { 'docker-reference': `${reg.host}/signed` },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    });

    // the stored layout, read with skopeo, checked with openssl
    const m = JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/signed:${sigTag}`]));
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.layers).toHaveLength(1);
    expect(m.layers[0].mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    const dir = k('sigdir');
    sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/signed:${sigTag}`, `dir:${dir}`]);
    const payload = join(dir, m.layers[0].digest.slice(7));
    writeFileSync(k('sig.der'), Buffer.from(m.layers[0].annotations['dev.cosignproject.cosign/signature'], 'base64'));
    expect(sh('openssl', ['dgst', '-sha256', '-verify', k('a.pub'), '-signature', k('sig.der'), payload])).toMatch(/Verified OK/);
    expect(JSON.parse(readFileSync(payload, 'utf8')).critical.image['docker-manifest-digest']).toBe(digest);

    const l = await nixreg(['referrers', `${reg.host}/signed:1`, '--tls-verify=false', '--json']);
    expect(JSON.parse(l.stdout).referrers).toEqual([
      expect.objectContaining({
        artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
        annotations: { 'org.opencontainers.image.ref.name': sigTag },
      }),
    ]);
    // a second signature is appended, the first kept
    expect((await nixreg(['sign', `${reg.host}/signed:1`, '--key', k('b.pem'), '--tls-verify=false'])).status).toBe(0);
    expect(JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/signed:${sigTag}`])).layers).toHaveLength(2);
    expect((await nixreg(['verify', `${reg.host}/signed:1`, '--key', k('b.pub'), '--tls-verify=false'])).status).toBe(0);
    expect((await nixreg(['verify', `${reg.host}/signed:1`, '--key', k('a.pub'), '--tls-verify=false'])).status).toBe(0);
  });

  it('accepts a signature openssl made, stored in the cosign layout by skopeo', async () => {
    const digest = await pushImage('ext', 'external');
    const payload = Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': `${reg.host}/signed` },
          image: { 'docker-manifest-digest': digest },
          type: 'cosign container image signature',
        },
        optional: { creator: 'openssl' },
      }),
    );
    const dir = k('ext');
    mkdirSync(dir);
    writeFileSync(join(dir, 'payload'), payload);
    const sig = execFileSync('openssl', ['dgst', '-sha256', '-sign', k('b.pem'), join(dir, 'payload')]).toString('base64');
    const config = Buffer.from(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [`sha256:${sha(payload)}`] }, config: {} }));
    writeFileSync(join(dir, sha(payload)), payload);
    writeFileSync(join(dir, sha(config)), config);
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: `sha256:${sha(config)}` },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          size: payload.length,
          digest: `sha256:${sha(payload)}`,
          annotations: { 'dev.cosignproject.cosign/signature': sig },
        },
      ],
    };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    writeFileSync(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
    sh('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `dir:${dir}`, `docker://${reg.host}/signed:sha256-${digest.slice(7)}.sig`]);
    const v = await nixreg(['verify', `${reg.host}/signed:ext`, '--key', k('b.pub'), '--tls-verify=false']);
    expect(errorLines(v.stderr)).toEqual([]);
    expect(v.status).toBe(0);
    const w = await nixreg(['verify', `${reg.host}/signed:ext`, '--key', k('a.pub'), '--tls-verify=false']);
    expect(w.status).not.toBe(0);
    expect(errorLines(w.stderr)).toEqual([
      `nixreg: no signature of ${reg.host}/signed@${digest} verifies with ${k('a.pub')} (1 checked): signed with another key, or the signature was altered`,
    ]);
  });

  it('fails in one line for no signature, a changed manifest, and a signature copied to another image', async () => {
    const first = await pushImage('moving', 'first');
    expect((await nixreg(['sign', `${reg.host}/signed:moving`, '--key', k('a.pem'), '--tls-verify=false'])).status).toBe(0);
    const second = await pushImage('moving', 'second');
    const v = await nixreg(['verify', `${reg.host}/signed:moving`, '--key', k('a.pub'), '--tls-verify=false']);
    expect(v.status).not.toBe(0);
    expect(errorLines(v.stderr)).toEqual([
      `nixreg: no signature for ${reg.host}/signed@${second} (no ${reg.host}/signed:sha256-${second.slice(7)}.sig); sign it with nixreg sign or cosign sign`,
    ]);
    // the first image's signature put where the second's would be: it verifies, but names the other manifest
    sh('skopeo', [
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${reg.host}/signed:sha256-${first.slice(7)}.sig`,
      `docker://${reg.host}/signed:sha256-${second.slice(7)}.sig`,
    ]);
    const c = await nixreg(['verify', `${reg.host}/signed:moving`, '--key', k('a.pub'), '--tls-verify=false']);
    expect(c.status).not.toBe(0);
    expect(errorLines(c.stderr)).toEqual([
      `nixreg: the signature in ${reg.host}/signed:sha256-${second.slice(7)}.sig verifies with ${k('a.pub')} but is for ${first}, not ${second}: the manifest changed or the signature was copied`,
    ]);
  });

  it('takes an encrypted PKCS#8 key with COSIGN_PASSWORD or --key-password-stdin; refuses other curves', async () => {
    await pushImage('enc', 'enc');
    sh('openssl', ['pkcs8', '-topk8', '-in', k('a.pem'), '-v2', 'aes-256-cbc', '-passout', 'pass:s3cret', '-out', k('enc.pem')]);
    const none = await nixreg(['sign', `${reg.host}/signed:enc`, '--key', k('enc.pem'), '--tls-verify=false'], { COSIGN_PASSWORD: undefined });
    expect(none.status).not.toBe(0);
    expect(errorLines(none.stderr)).toEqual([
      `nixreg: ${k('enc.pem')}: cannot decrypt the key (give the password with --key-password-stdin or COSIGN_PASSWORD)`,
    ]);
    const env = await nixreg(['sign', `${reg.host}/signed:enc`, '--key', k('enc.pem'), '--tls-verify=false'], { COSIGN_PASSWORD: 's3cret' });
    expect(errorLines(env.stderr)).toEqual([]);
    expect(env.status).toBe(0);
    expect(env.stdout + env.stderr).not.toContain('s3cret');
    expect((await nixreg(['verify', `${reg.host}/signed:enc`, '--key', k('a.pub'), '--tls-verify=false'])).status).toBe(0);
    // the password on stdin (distribution runs in its own process, so a synchronous spawn is fine here)
    const stdin = (pw: string) =>
      spawnSync(process.execPath, [NIXREG_BIN, 'sign', `${reg.host}/signed:enc`, '--key', k('enc.pem'), '--key-password-stdin', '--tls-verify=false'], {
        input: pw + '\n',
        encoding: 'utf8',
        env: { ...process.env, NIXREG_DEBUG: '', COSIGN_PASSWORD: '', XDG_CACHE_HOME: join(tmp, 'cache') },
      });
    const good = stdin('s3cret');
    expect(errorLines(good.stderr)).toEqual([]);
    expect(good.status).toBe(0);
    const wrong = stdin('nope');
    expect(wrong.status).not.toBe(0);
    expect(errorLines(wrong.stderr)).toEqual([`nixreg: ${k('enc.pem')}: cannot decrypt the key: wrong password?`]);
    sh('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', k('p384.pem')]);
    const bad = await nixreg(['sign', `${reg.host}/signed:enc`, '--key', k('p384.pem'), '--tls-verify=false']);
    expect(errorLines(bad.stderr)).toEqual([`nixreg: ${k('p384.pem')}: cosign signatures here are ECDSA P-256; this key is ec secp384r1`]);
  });
});
