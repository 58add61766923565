import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { requireTool } from '../helpers/tools.js';
import { errorLines, runCli } from '../helpers/cli.js';
import { buildTestClosure } from '../helpers/nix-closure.js';

// `nixreg push --path …`: the `nixreg build` pipeline straight into Debian's real distribution, from a closure
// real Nix builds here. The pushed image must be the one `nixreg build --write-conf` + `nixreg push conf.json`
// gives (same manifest digest), skopeo must read it back, and a second push must upload nothing.
// lib <- app (app has bin/hello)
const closure = `
  lib = mk "nixreg-push-lib-1.0" "mkdir -p $out/lib && echo libdata > $out/lib/libtest.so.1";
  app = mk "nixreg-push-app-1.0" "mkdir -p $out/bin && printf '#!/bin/sh\\\\necho hello from \${lib}\\\\n' > $out/bin/hello && chmod 555 $out/bin/hello";
`;

let tmp: string;
let app: string;
let reg: Distribution;

const nixreg = (...args: string[]) => runCli(args, { cacheHome: join(tmp, 'cache') });
const errors = errorLines;
const logEnd = () => readFileSync(reg.logFile, 'utf8').length;
const blobWrites = (from: number) =>
  readFileSync(reg.logFile, 'utf8')
    .slice(from)
    .split('\n')
    .filter((l) => /"(PATCH|PUT) \/v2\/[^ ]*\/blobs\/uploads\//.test(l));

beforeAll(async () => {
  for (const t of ['nix-build', 'skopeo']) requireTool(t);
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-path-'));
  app = buildTestClosure(tmp, closure);
  reg = await startDistribution();
});
afterAll(async () => {
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('nixreg push --path (real Nix closure → real distribution)', () => {
  const buildFlags = () => ['--name', 'hello:1', '--path', app, '--cmd', `${app}/bin/hello`, '--env', 'GREETING=hi'];
  let digest: string;

  it('pushes the image nixreg build would make (same digest as build --write-conf + push conf.json)', async () => {
    const conf = join(tmp, 'conf.json');
    const built = await nixreg('build', ...buildFlags(), '--write-conf', conf);
    expect(errors(built.stderr)).toEqual([]);
    expect(built.status).toBe(0);
    const viaConf = await nixreg('push', conf, `docker://${reg.host}/via-conf/hello:1`, '--tls-verify=false', '--json');
    expect(errors(viaConf.stderr)).toEqual([]);
    expect(viaConf.status).toBe(0);

    const conf2 = join(tmp, 'conf2.json');
    const r = await nixreg('push', ...buildFlags(), `docker://${reg.host}/via-path/hello:1`, '--tls-verify=false', '--json', '--write-conf', conf2);
    expect(errors(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const pushed = JSON.parse(r.stdout) as { digest: string; layers: Array<{ status: string }>; stats: { layersGenerated: number } };
    digest = pushed.digest;
    expect(pushed.digest).toBe(JSON.parse(viaConf.stdout).digest);
    expect(readFileSync(conf2).equals(readFileSync(conf))).toBe(true); // the same conf, from the same build library
    expect(pushed.layers.length).toBeGreaterThanOrEqual(3); // lib, app, customisation layer

    const out = join(tmp, 'pulled');
    const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/via-path/hello:1`, `dir:${out}`], { encoding: 'utf8' });
    expect(copy.status, copy.stderr).toBe(0);
    expect(
      `sha256:${createHash('sha256')
        .update(readFileSync(join(out, 'manifest.json')))
        .digest('hex')}`,
    ).toBe(digest);
    const config = JSON.parse(readFileSync(join(out, JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).config.digest.slice(7)), 'utf8'));
    expect(config.config.Cmd).toEqual([`${app}/bin/hello`]);
    expect(config.config.Env).toEqual(['GREETING=hi']);
  });

  it('a second push (fresh process) uploads zero blobs and generates no layer', async () => {
    const before = logEnd();
    const r = await nixreg('push', ...buildFlags(), `docker://${reg.host}/via-path/hello:2`, '--tls-verify=false', '--json');
    expect(errors(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const again = JSON.parse(r.stdout) as { digest: string; stats: { uploaded: number; layersGenerated: number } };
    expect(again.digest).toBe(digest);
    expect(again.stats.uploaded).toBe(0);
    expect(again.stats.layersGenerated).toBe(0);
    expect(blobWrites(before)).toEqual([]);
  });

  it('refuses build flags without --path, and a second positional with --path', async () => {
    const noPath = await nixreg('push', '--cmd', 'x', join(tmp, 'conf.json'), `docker://${reg.host}/x/y:1`, '--tls-verify=false');
    expect(noPath.status).toBe(2);
    expect(errors(noPath.stderr)).toEqual(['nixreg: --cmd builds an image from store paths: it needs --path']);
    const two = await nixreg('push', '--path', app, `docker://${reg.host}/x/y:1`, `docker://${reg.host}/x/z:1`);
    expect(two.status).toBe(2);
    expect(errors(two.stderr)[0]).toMatch(/with --path, give only the destination/);
  });
});
