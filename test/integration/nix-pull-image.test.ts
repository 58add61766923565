import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, pushTestImage } from '../helpers/images.js';
import { nixHashFileSRI, requireTool } from '../helpers/tools.js';

/**
 * nix/pull-image.nix built by the real Nix (Debian nix-bin 2.8, single-user, no sandbox) against the real
 * registry: Nix itself must accept nixreg's output for the hash of skopeo's archive, and the store path must be
 * the one `nix-store --add-fixed sha256` gives skopeo's file. No nixpkgs: runCommand is a builtins.derivation stand-in.
 */
const ROOT = resolve(import.meta.dirname, '../..');
let reg: Distribution;
let work: string;
let wrapper: string;
let digest: string;
let skopeoSri: string;
let skopeoFile: string;
const NIX_OPTS = ['--option', 'sandbox', 'false', '--option', 'build-users-group', ''];

function expr(hash: string, tag: string): string {
  return `
    let
      runCommand = name: env: script: derivation ({
        inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ];
      } // env);
      pullImage = import ${ROOT}/nix/pull-image.nix { inherit runCommand; nixreg = "${wrapper}"; };
    in pullImage {
      imageName = "${reg.host}/test/nix";
      imageDigest = "${digest}";
      hash = "${hash}";
      finalImageName = "test/nix";
      finalImageTag = "${tag}";
      arch = "amd64";
    }`;
}

const nixBuild = (e: string) => spawnSync('nix-build', [...NIX_OPTS, '--no-out-link', '-E', e], { encoding: 'utf8' });

beforeAll(async () => {
  requireTool('nix-build');
  requireTool('skopeo');
  work = mkdtempSync(join(tmpdir(), 'nixreg-nix-'));
  // a wrapper outside the store: the build runs the checkout's compiled CLI with this node (sandbox is off)
  wrapper = join(work, 'nixreg');
  mkdirSync(join(wrapper, 'bin'), { recursive: true });
  writeFileSync(join(wrapper, 'bin/nixreg'), `#!/bin/sh\nexec ${process.execPath} ${ROOT}/bin/nixreg.js "$@"\n`);
  chmodSync(join(wrapper, 'bin/nixreg'), 0o755);
  reg = await startDistribution();
  // unique content per run, so the fixed-output path is new and Nix must really run the builder
  const salt = `${Date.now()}-${process.pid}`;
  const img = makeImage(
    [
      { tar: LAYERS.L1(), c: 'gzip' },
      { tar: LAYERS.L3(), c: 'none' },
    ],
    'docker',
    { arch: 'amd64' },
  );
  img.config = Buffer.from(img.config.toString().replace('"nixreg test"', `"nixreg test ${salt}"`));
  digest = await pushTestImage(reg.url, 'test/nix', img);
  const dir = mkdtempSync(join(work, 'skopeo-'));
  skopeoFile = join(dir, 'docker-image-test-nix-v1.tar');
  execFileSync(
    'skopeo',
    [
      '--insecure-policy',
      `--tmpdir=${dir}`,
      '--override-os',
      'linux',
      '--override-arch',
      'amd64',
      'copy',
      '--src-tls-verify=false',
      `docker://${reg.host}/test/nix@${digest}`,
      `docker-archive://${skopeoFile}:test/nix:v1`,
    ],
    { env: { ...process.env, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  skopeoSri = nixHashFileSRI(skopeoFile);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nix/pull-image.nix', () => {
  test("Nix accepts nixreg's output for skopeo's hash, at skopeo's store path", () => {
    const r = nixBuild(expr(skopeoSri, 'v1'));
    expect(r.status, r.stderr).toBe(0);
    const built = r.stdout.trim();
    expect(built).toMatch(/^\/nix\/store\/[0-9a-z]{32}-docker-image-test-nix-v1\.tar$/);
    const added = execFileSync('nix-store', ['--add-fixed', 'sha256', skopeoFile], { encoding: 'utf8' }).trim();
    expect(built).toBe(added);
    expect(existsSync(built)).toBe(true);
  });

  test('hash = "" fails with the mismatch line naming the right hash (fake hash, as fetchurl)', () => {
    const r = nixBuild(expr('', 'v1'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/hash mismatch in fixed-output derivation/);
    expect(r.stderr).toContain(`got:    ${skopeoSri}`);
  });

  // Under pure evaluation (a flake) builtins.currentSystem is absent; the default arch is the target platform's.
  // The flake has no inputs, so `nix eval` needs no network; it copies pull-image.nix next to its flake.nix.
  const pureScript = (importArgs: string, callArgs: string) => {
    const dir = mkdtempSync(join(work, 'flake-'));
    copyFileSync(join(ROOT, 'nix/pull-image.nix'), join(dir, 'pull-image.nix'));
    writeFileSync(
      join(dir, 'flake.nix'),
      `{ outputs = { self }: { script =
      (import ./pull-image.nix ({ runCommand = name: env: script: script; nixreg = "/nixreg-standin"; } // ${importArgs}))
      ({ imageName = "example.org/a"; imageDigest = "sha256:${'0'.repeat(64)}"; hash = ""; } // ${callArgs}); }; }`,
    );
    return spawnSync('nix', [...NIX_OPTS, '--extra-experimental-features', 'nix-command flakes', 'eval', '--json', `path:${dir}#script`], { encoding: 'utf8' });
  };
  test.each([
    ['stdenv.hostPlatform', '{ stdenv.hostPlatform.system = "aarch64-linux"; }', '{ }', 'arm64'],
    ['go.GOARCH', '{ go.GOARCH = "riscv64"; stdenv.hostPlatform.system = "x86_64-linux"; }', '{ }', 'riscv64'],
    ['an explicit arch wins', '{ stdenv.hostPlatform.system = "aarch64-linux"; }', '{ arch = "s390x"; }', 's390x'],
  ])('pure evaluation: the arch from %s', (_what, importArgs, callArgs, arch) => {
    const r = pureScript(importArgs, callArgs);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toContain(`--arch '${arch}'`);
  });
  test('pure evaluation without arch, go or stdenv: a clear error, not a missing currentSystem', () => {
    const r = pureScript('{ }', '{ }');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('pullImage: pass `arch`');
  });

  test("a wrong hash fails with Nix's own hash-mismatch message", () => {
    const wrong = 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
    const r = nixBuild(expr(wrong, 'v2'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/hash mismatch in fixed-output derivation/);
  });
});
