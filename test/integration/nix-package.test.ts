import { describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { requireTool } from '../helpers/tools.js';

/**
 * nix/package.nix and default.nix evaluated by the real Nix 2.8 with stand-ins for the nixpkgs pieces (nixpkgs is
 * not reachable here): the stand-in buildNpmPackage / importNpmLock return the arguments they were given, so the
 * test sees exactly what nixpkgs would receive. What this cannot check (building with the real buildNpmPackage,
 * fetching the npm tarballs) is listed in the report, not pretended here.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const NIX_OPTS = ['--option', 'sandbox', 'false', '--option', 'build-users-group', ''];

const STANDINS = `
  lib = { licenses.mit = "mit-standin"; };
  nodejs_20 = "nodejs_20-standin";
  zstd = "zstd-standin";
  isa-l = "isa-l-standin";
  buildNpmPackage = args: args;
  importNpmLock = { __functor = self: args: { importNpmLockArgs = args; }; npmConfigHook = "importNpmLock.npmConfigHook-standin"; };`;

function evalJson(expr: string): any {
  const r = spawnSync('nix-instantiate', [...NIX_OPTS, '--eval', '--strict', '--json', '--read-write-mode', '-E', expr], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

describe('nix/ expressions', () => {
  test('every .nix file parses', () => {
    requireTool('nix-instantiate');
    const files = [
      ...readdirSync(join(ROOT, 'nix'))
        .filter((f) => f.endsWith('.nix'))
        .map((f) => join(ROOT, 'nix', f)),
      join(ROOT, 'default.nix'),
    ];
    if (existsSync(join(ROOT, 'flake.nix'))) files.push(join(ROOT, 'flake.nix'));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const r = spawnSync('nix-instantiate', ['--parse', f], { encoding: 'utf8' });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
    }
  });
});

describe('nix/package.nix', () => {
  const pkgJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  let args: any;

  test('gives buildNpmPackage the name, version, nodejs 20, importNpmLock deps and hook', () => {
    requireTool('nix-instantiate');
    args = evalJson(`
      let a = import ${ROOT}/nix/package.nix { ${STANDINS} };
      in a // { src = "\${a.src}"; npmDeps = a.npmDeps.importNpmLockArgs // { npmRoot = "\${a.npmDeps.importNpmLockArgs.npmRoot}"; }; }`);
    expect(args.pname).toBe('nixreg');
    expect(args.version).toBe(pkgJson.version);
    expect(args.nodejs).toBe('nodejs_20-standin');
    expect(args.npmConfigHook).toBe('importNpmLock.npmConfigHook-standin');
    expect(args.npmDeps.npmRoot).toBe(args.src);
    expect(args.npmDeps.package).toEqual(pkgJson);
    // the program nix run / result/bin/ gets is the package.json bin
    expect(args.meta.mainProgram).toBe('nixreg');
    expect(Object.keys(pkgJson.bin)).toContain(args.meta.mainProgram);
    expect(pkgJson.bin[args.meta.mainProgram]).toBe('bin/nixreg.js');
    expect(args.meta.license).toBe('mit-standin');
    // the native layer decoders link against these (scripts/build-native.mjs)
    expect(args.buildInputs).toEqual(['zstd-standin', 'isa-l-standin']);
  });

  test('src is the build inputs only, copied byte for byte', () => {
    expect(args, 'previous test evaluated the package').toBeDefined();
    const src: string = args.src;
    expect(src).toMatch(/^\/nix\/store\/[0-9a-z]{32}-nixreg-source$/);
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin/nixreg.js', 'src/cli/main.ts', 'scripts/bundle.mjs'])
      expect(readFileSync(join(src, f)).equals(readFileSync(join(ROOT, f))), f).toBe(true);
    for (const f of ['node_modules', 'dist', 'test', '.gitignore', 'nix', 'README.md']) expect(existsSync(join(src, f)), f).toBe(false);
  });

  test('every locked package gets the registry URL npm would use, with its integrity unchanged', () => {
    expect(args, 'previous test evaluated the package').toBeDefined();
    const packages = args.npmDeps.packageLock.packages as Record<string, any>;
    expect(Object.keys(packages).sort()).toEqual(Object.keys(lock.packages).sort());
    let fetched = 0;
    for (const [key, m] of Object.entries<any>(lock.packages)) {
      const got = packages[key];
      if (key === '') {
        expect(got.resolved).toBeUndefined();
        continue;
      }
      const name: string = m.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
      const base = name.split('/').pop();
      expect(got.resolved, key).toBe(m.resolved ?? `https://registry.npmjs.org/${name}/-/${base}-${m.version}.tgz`);
      expect(got.integrity, key).toBe(m.integrity);
      fetched++;
    }
    expect(fetched).toBe(Object.keys(lock.packages).length - 1);
    // checked once against the registry (npm view PKG@V dist.tarball) when this was written
    expect(packages['node_modules/@types/node'].resolved).toBe(
      `https://registry.npmjs.org/@types/node/-/node-${lock.packages['node_modules/@types/node'].version}.tgz`,
    );
    expect(packages['node_modules/yargs'].resolved).toBe(`https://registry.npmjs.org/yargs/-/yargs-${lock.packages['node_modules/yargs'].version}.tgz`);
  });
});

describe('default.nix', () => {
  test('is the package, with pullImage and pushImage wired to it', () => {
    requireTool('nix-instantiate');
    const out = evalJson(`
      let
        # here the package must be interpolable like a derivation: give the recorded arguments an outPath
        standins = { ${STANDINS} } // { buildNpmPackage = args: args // { outPath = "/nixreg-standin"; }; };
        pkgs = {
          callPackage = f: over: import f (builtins.intersectAttrs (builtins.functionArgs (import f)) standins // over);
          runCommand = name: env: script: { inherit name env script; };
          writeShellScriptBin = name: text: { inherit name text; };
          cacert = "cacert-standin";
          # the target platform, not the evaluating machine's: pullImage's default arch comes from it
          stdenv.hostPlatform.system = "aarch64-linux";
        };
        r = import ${ROOT}/default.nix { inherit pkgs; };
        pushed = r.pushImage { conf = "/nix/store/00000000000000000000000000000000-conf.json"; name = "app"; };
        pulled = r.pullImage { imageName = "example.org/a"; imageDigest = "sha256:${'0'.repeat(64)}"; hash = "sha256-${'A'.repeat(43)}="; };
      in {
        pname = r.pname;
        pullIsFunction = builtins.isFunction r.pullImage;
        pushName = pushed.name;
        pushText = pushed.text;
        pullScript = pulled.script;
        pullCert = pulled.env.SSL_CERT_FILE;
      }`);
    expect(out.pname).toBe('nixreg');
    expect(out.pullIsFunction).toBe(true);
    expect(out.pushName).toBe('push-app');
    expect(out.pushText).toContain(`/nixreg-standin/bin/nixreg push '/nix/store/${'0'.repeat(32)}-conf.json'`);
    expect(out.pullScript).toContain('/nixreg-standin/bin/nixreg pull');
    expect(out.pullScript).toContain(`--arch 'arm64'`);
    expect(out.pullCert).toBe('cacert-standin/etc/ssl/certs/ca-bundle.crt');
  });
});

describe('nixreg prefetch --format nix-expr', () => {
  // the printed call must be accepted as it is by nix/pull-image.nix (dockerTools.pullImage's interface)
  test.each([false, true])('evaluates against nix/pull-image.nix (legacy sha256: %s)', async (legacy) => {
    requireTool('nix-instantiate');
    const { formatNixExpr } = await import('../../src/prefetch/output.js');
    const digest = `sha256:${'ab'.repeat(32)}`;
    const expr = formatNixExpr(
      {
        imageName: 'registry.example.org/team/app',
        imageDigest: digest,
        hash: legacy ? '0'.repeat(52) : `sha256-${'A'.repeat(43)}=`,
        finalImageName: 'team/app',
        finalImageTag: 'v1',
        os: 'linux',
        arch: 'arm64',
        variant: 'v8',
      },
      legacy,
    );
    const out = evalJson(`
      let dockerTools.pullImage = import ${ROOT}/nix/pull-image.nix {
        runCommand = name: env: script: { inherit name script; hash = env.outputHash; mode = env.outputHashMode; };
        nixreg = "/nixreg-standin";
      };
      in ${expr}`);
    expect(out.name).toBe('docker-image-team-app-v1.tar');
    expect(out.mode).toBe('flat');
    expect(out.hash).toBe(legacy ? '0'.repeat(52) : `sha256-${'A'.repeat(43)}=`);
    expect(out.script).toContain(`/nixreg-standin/bin/nixreg pull 'registry.example.org/team/app' --digest '${digest}'`);
    expect(out.script).toContain(`--os 'linux' --arch 'arm64' --variant 'v8'`);
    expect(out.script).toContain(`--final-image-name 'team/app' --final-image-tag 'v1'`);
  });
});
