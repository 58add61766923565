import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { buildTestClosure, NIX_OPTS } from '../helpers/nix-closure.js';

/**
 * nix/push-image.nix built by the real Nix (Debian nix-bin 2.8, single-user, no sandbox), its script run against
 * the real registry (htpasswd auth, credentials only in a run-time auth file), the image pulled back with skopeo:
 * its layers must be the ones `nixreg stream` / `nixreg build` produce for the same input. No nixpkgs:
 * writeShellScriptBin is a builtins.derivation stand-in, nixreg a wrapper around this checkout's CLI.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const USER = 'pusher';
const PASSWORD = 'n1x-s3cret-pw';
let reg: Distribution;
let work: string;
let wrapper: string;
let app: string;
let conf: string;
let env: NodeJS.ProcessEnv;

const closure = `
  lib = mk "nixreg-push-lib-1.0" "mkdir -p $out/lib && echo libdata > $out/lib/libpush.so.1";
  app = mk "nixreg-push-app-1.0" "mkdir -p $out/bin && printf '#!/bin/sh\\\\necho \${lib}\\\\n' > $out/bin/app && chmod 555 $out/bin/app";
`;

/** pushImage { <args> } with stand-ins; `args` is Nix attribute text. */
function pushExpr(args: string): string {
  return `
    let
      writeShellScriptBin = name: text: derivation {
        inherit name text; system = builtins.currentSystem; builder = "/bin/sh"; passAsFile = [ "text" ]; PATH = "/usr/bin:/bin";
        args = [ "-c" "mkdir -p $out/bin && { echo '#!/bin/sh'; cat $textPath; } > $out/bin/\${name} && chmod 555 $out/bin/\${name}" ];
      };
      pushImage = import ${ROOT}/nix/push-image.nix { inherit writeShellScriptBin; nixreg = "${wrapper}"; };
    in pushImage { ${args} }`;
}

const nixBuild = (e: string) => spawnSync('nix-build', [...NIX_OPTS, '--no-out-link', '-E', e], { encoding: 'utf8' });
const run = (script: string, ...args: string[]) => spawnSync(script, args, { encoding: 'utf8', env });
const nixreg = (...args: string[]) => runCliSync(args, { env });

/** diffIDs of a docker-archive, as skopeo reads them. */
const diffIDs = (archive: string): string[] => JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${archive}`], { encoding: 'utf8' })).Layers;

/** Pull an image back from the registry with skopeo (an independent client) into a docker-archive. */
function pullBack(ref: string): string {
  const out = join(work, `pulled-${ref.replace(/[^a-z0-9]/gi, '-')}.tar`);
  execFileSync(
    'skopeo',
    ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', '--src-creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/${ref}`, `docker-archive:${out}`],
    { env },
  );
  return out;
}

beforeAll(async () => {
  for (const t of ['nix-build', 'nix-store', 'skopeo']) requireTool(t);
  work = mkdtempSync(join(tmpdir(), 'nixreg-nix-push-'));
  wrapper = join(work, 'nixreg');
  mkdirSync(join(wrapper, 'bin'), { recursive: true });
  writeFileSync(join(wrapper, 'bin/nixreg'), `#!/bin/sh\nexec ${process.execPath} ${ROOT}/bin/nixreg.js "$@"\n`);
  chmodSync(join(wrapper, 'bin/nixreg'), 0o755);
  app = buildTestClosure(work, closure);
  reg = await startDistribution({ htpasswd: { [USER]: PASSWORD } });
  // credentials exist only at run time, in an auth file named by the environment
  const authFile = join(work, 'auth.json');
  writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
  env = { ...process.env, REGISTRY_AUTH_FILE: authFile, XDG_CACHE_HOME: join(work, 'cache') };
  conf = join(work, 'conf.json');
  const r = nixreg('build', '--name', 'test/pushed:v1', '--path', app, '--cmd', `${app}/bin/app`, '--write-conf', conf);
  if (r.status !== 0) throw new Error(r.stderr);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nix/push-image.nix', () => {
  test('conf: the script pushes to a run-time destination, with --output, and the image pulls back', () => {
    const b = nixBuild(pushExpr(`conf = ${conf}; name = "app";`));
    expect(b.status, b.stderr).toBe(0);
    const script = join(b.stdout.trim(), 'bin/push-app');
    expect(existsSync(script)).toBe(true);
    expect(readFileSync(script, 'utf8')).not.toContain(PASSWORD);

    const streamed = join(work, 'streamed.tar');
    expect(nixreg('stream', conf, '-o', streamed).status).toBe(0);

    const local = join(work, 'pushed-local.tar');
    const p = run(script, `docker://${reg.host}/test/pushed:v1`, '--tls-verify=false', '--output', local);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout + p.stderr).not.toContain(PASSWORD);
    expect(readFileSync(local).equals(readFileSync(streamed))).toBe(true);
    expect(diffIDs(pullBack('test/pushed:v1'))).toEqual(diffIDs(streamed));

    // --output alone: the docker-archive only, no registry
    const only = join(work, 'only.tar');
    const o = run(script, '--output', only);
    expect(o.status, o.stderr).toBe(0);
    expect(readFileSync(only).equals(readFileSync(streamed))).toBe(true);

    // no destination, no --output: usage, non-zero
    const u = run(script);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain('usage: push-app docker://');
  });

  test('extraArgs with a repeatable flag (--additional-tag) before the run-time destination', () => {
    const b = nixBuild(pushExpr(`conf = ${conf}; name = "app"; extraArgs = [ "--additional-tag" "latest" ];`));
    expect(b.status, b.stderr).toBe(0);
    const p = run(join(b.stdout.trim(), 'bin/push-app'), `docker://${reg.host}/test/extra:v1`, '--tls-verify=false');
    expect(p.status, p.stderr).toBe(0);
    const tags = JSON.parse(
      execFileSync('skopeo', ['list-tags', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/test/extra`], { encoding: 'utf8' }),
    ).Tags;
    expect(tags.sort()).toEqual(['latest', 'v1']);
  });

  test('paths: the script builds the image from store paths at run time and pushes it', () => {
    const b = nixBuild(pushExpr(`paths = [ ${app} ]; config = { Cmd = [ "${app}/bin/app" ]; };`));
    expect(b.status, b.stderr).toBe(0);
    const script = join(b.stdout.trim(), 'bin/push-nixreg-push-app');
    const p = run(script, `docker://${reg.host}/test/paths:v2`, '--tls-verify=false');
    expect(p.status, p.stderr).toBe(0);

    const built = join(work, 'built.tar');
    expect(nixreg('build', '--name', 'nixreg-push-app', '--path', app, '--cmd', `${app}/bin/app`, '-o', built).status).toBe(0);
    const pulled = pullBack('test/paths:v2');
    expect(diffIDs(pulled)).toEqual(diffIDs(built));

    // --output alone: `nixreg build` with the same inputs, byte for byte
    const only = join(work, 'only-paths.tar');
    const o = run(script, '--output', only);
    expect(o.status, o.stderr).toBe(0);
    expect(readFileSync(only).equals(readFileSync(built))).toBe(true);
    const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `docker-archive:${pulled}`], { encoding: 'utf8' }));
    expect(cfg.config.Cmd).toEqual([`${app}/bin/app`]);
  });

  test('image: takes the conf passthru of a streamLayeredImage or buildLayeredImage result', () => {
    // attribute sets shaped like the two nixpkgs results (only the passthru this function reads)
    const stream = nixBuild(pushExpr(`image = { conf = ${conf}; imageName = "test/pushed"; imageTag = "v1"; };`));
    expect(stream.status, stream.stderr).toBe(0);
    const s = readFileSync(join(stream.stdout.trim(), 'bin/push-pushed'), 'utf8');
    const layered = nixBuild(pushExpr(`image = { imageName = "test/pushed"; stream = { conf = ${conf}; }; }; name = "layered";`));
    expect(layered.status, layered.stderr).toBe(0);
    const l = readFileSync(join(layered.stdout.trim(), 'bin/push-layered'), 'utf8');
    const confLine = /\/bin\/nixreg push '(\/nix\/store\/[^']+)'/;
    expect(s.match(confLine)?.[1]).toMatch(/^\/nix\/store\/[0-9a-z]{32}-conf\.json$/);
    expect(l.match(confLine)?.[1]).toBe(s.match(confLine)?.[1]);
  });

  test('wrong inputs fail at evaluation with a clear message', () => {
    const none = nixBuild(pushExpr(''));
    expect(none.status).not.toBe(0);
    expect(none.stderr).toContain('give exactly one of `image`, `conf` or `paths`');
    const bad = nixBuild(pushExpr('image = { name = "x"; };'));
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('neither a `conf`');
  });
});
