import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { runCli, errorLines } from '../helpers/cli.js';
import { layerTar, manifestOf, pushTestImage, pushTestIndex } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';

/**
 * `--platform os/arch[/variant]` on the commands that pick from an index, `push --platform-conf
 * --require-platform`, and `inspect --format` / `--config --raw` compared with skopeo, against Debian's
 * registry. Needs a built bin/.
 */
const labels = { 'org.opencontainers.image.version': '1.2.3', maintainer: 'nix', a: 'b c' };
const amd64 = simpleImage([layerTar({ 'amd64.txt': 'amd64\n' })], { Labels: labels }, 'amd64');
const arm64 = simpleImage([layerTar({ 'arm64.txt': 'arm64\n' })], { Cmd: ['/bin/arm'] }, 'arm64');
const armDigest = manifestOf(arm64).digest;
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');

let reg: Distribution;
let tmp: string;
let storeRoot: string;
const skopeo = (args: string[]) => spawnSync('skopeo', [...args], { encoding: 'buffer' });
const logFrom = () => readFileSync(reg.logFile, 'utf8').length;
const writesSince = (from: number) =>
  [
    ...readFileSync(reg.logFile, 'utf8')
      .slice(from)
      .matchAll(/"(PUT|POST|PATCH) (\/v2\/[^ "]*)/g),
  ].map((m) => `${m[1]} ${m[2]}`);

beforeAll(async () => {
  requireTool('skopeo');
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-platform-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
  reg = await startDistribution();
  await pushTestImage(reg.url, 'multi', amd64);
  await pushTestImage(reg.url, 'multi', arm64);
  await pushTestIndex(
    reg.url,
    'multi',
    [
      { img: amd64, platform: { os: 'linux', architecture: 'amd64' } },
      { img: arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
    '1',
  );
  await pushTestImage(reg.url, 'single', amd64, '1');
}, 120_000);
afterAll(async () => {
  await reg?.stop();
  if (storeRoot) await removeStoreTree(storeRoot);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('push --platform-conf --require-platform', () => {
  it('refuses before pushing anything, naming the missing platform', async () => {
    const from = logFrom();
    const r = await runCli(
      [
        'push',
        `docker://${reg.host}/req/app:1`,
        '--platform-conf',
        `linux/amd64=${CONF}`,
        '--store-root',
        storeRoot,
        '--tls-verify=false',
        '--require-platform',
        'linux/amd64',
        '--require-platform',
        'linux/arm64/v8',
      ],
      { cacheHome: join(tmp, 'cache') },
    );
    expect(errorLines(r.stderr)).toEqual([
      `nixreg: index ${reg.host}/req/app:1 would lack the required platform linux/arm64/v8 (it has linux/amd64); nothing was tagged`,
    ]);
    expect(r.status).toBe(4);
    expect(writesSince(from)).toEqual([]);
    expect((await fetch(`${reg.url}/v2/req/app/manifests/1`, { method: 'HEAD' })).status).toBe(404);
  }, 120_000);

  it('pushes when every required platform is there', async () => {
    const r = await runCli(
      [
        'push',
        `docker://${reg.host}/req/app:2`,
        '--platform-conf',
        `linux/amd64=${CONF}`,
        '--store-root',
        storeRoot,
        '--tls-verify=false',
        '--require-platform',
        'linux/amd64',
        '--json',
      ],
      { cacheHome: join(tmp, 'cache') },
    );
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).manifests.map((m: { platform: string }) => m.platform)).toEqual(['linux/amd64']);
  }, 120_000);

  it('without --platform-conf is a usage error', async () => {
    const r = await runCli(['push', CONF, `docker://${reg.host}/req/app:3`, '--require-platform', 'linux/amd64', '--tls-verify=false']);
    expect(errorLines(r.stderr)).toEqual([
      'nixreg: --require-platform applies to --platform-conf (for an index built elsewhere: nixreg index create --require-platform)',
    ]);
    expect(r.status).toBe(2);
  }, 60_000);
});

describe('--platform os/arch[/variant]', () => {
  it('inspect picks the platform, and agrees with --arch when both are given', async () => {
    for (const extra of [
      ['--platform', 'linux/arm64/v8'],
      ['--platform', 'linux/arm64', '--arch', 'arm64'],
    ]) {
      const r = await runCli(['inspect', `docker://${reg.host}/multi:1`, '--tls-verify=false', ...extra, '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const j = JSON.parse(r.stdout);
      expect([j.ManifestDigest, j.Architecture]).toEqual([armDigest, 'arm64']);
    }
  }, 60_000);

  it('pull picks the platform', async () => {
    const out = join(tmp, 'arm.tar');
    const r = await runCli(['pull', `${reg.host}/multi:1`, '--tls-verify=false', '--platform', 'linux/arm64', '-o', out, '--json']);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).manifestDigest).toBe(armDigest);
  }, 60_000);

  it('prefetch picks the platform (its default stays amd64, as nix-prefetch-docker)', async () => {
    const arm = await runCli(['prefetch', `${reg.host}/multi`, '1', '--tls-verify=false', '--platform', 'linux/arm64', '--json', '--quiet']);
    expect(errorLines(arm.stderr)).toEqual([]);
    expect(arm.status).toBe(0);
    expect(JSON.parse(arm.stdout).imageDigest).toBe(armDigest);
    const dflt = await runCli(['prefetch', `${reg.host}/multi`, '1', '--tls-verify=false', '--json', '--quiet']);
    expect(JSON.parse(dflt.stdout).imageDigest).toBe(manifestOf(amd64).digest);
  }, 60_000);

  it('export picks the platform', async () => {
    const out = join(tmp, 'fs.tar');
    const r = await runCli(['export', `docker://${reg.host}/multi:1`, '--tls-verify=false', '--platform', 'linux/arm64', '-o', out]);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    expect(list.stdout.split('\n').filter(Boolean)).toEqual(['arm64.txt']);
  }, 60_000);

  it.each([
    [
      ['pull', 'r.example/a:1', '--platform', 'linux/arm64', '--arch', 'amd64', '-o', 'x.tar'],
      'nixreg: --platform linux/arm64 and --arch amd64 disagree; give one of them',
    ],
    [
      ['inspect', 'docker://r.example/a:1', '--platform', 'linux/arm64', '--variant', 'v7'],
      'nixreg: --platform linux/arm64 and --variant v7 disagree; give one of them',
    ],
    [
      ['export', 'docker://r.example/a:1', '--platform', 'windows/amd64', '--os', 'linux', '-o', 'x.tar'],
      'nixreg: --platform windows/amd64 and --os linux disagree; give one of them',
    ],
    [
      ['prefetch', 'r.example/a', '1', '--platform', 'linux/arm64', '--arch', 'amd64'],
      'nixreg: --platform linux/arm64 and --arch amd64 disagree; give one of them',
    ],
    [
      ['inspect', 'docker://r.example/a:1', '--platform', 'amd64'],
      'nixreg: --platform takes os/arch[/variant] like linux/amd64 or linux/arm64/v8, got "amd64"',
    ],
  ])(
    '%j is a usage error',
    async (args, line) => {
      const r = await runCli(args, { cacheHome: tmp });
      expect(errorLines(r.stderr)).toEqual([line]);
      expect(r.status).toBe(2);
    },
    60_000,
  );
});

describe('inspect --format and --config --raw', () => {
  const ref = () => `docker://${reg.host}/single:1`;
  it.each([
    '{{.Digest}}',
    '{{.Name}} {{.Architecture}} {{.Os}}',
    '{{.RepoTags}}',
    '{{.Layers}}',
    '{{.Env}}',
    '{{.Labels}}',
    '{{.Labels.maintainer}}|{{.Labels.missing}}|{{index .Labels "org.opencontainers.image.version"}}',
    '{{.Os}}/{{.Architecture}} {{.DockerVersion}}.\n',
  ])(
    '%s prints what skopeo prints',
    async (template) => {
      const sk = skopeo(['inspect', '--tls-verify=false', '--format', template, ref()]);
      expect(sk.stderr.toString()).toBe('');
      const r = await runCli(['inspect', ref(), '--tls-verify=false', '--format', template]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(sk.stdout.toString());
    },
    60_000,
  );

  it('{{json .}} and {{json .Field}} are the --json values on one line (skopeo 1.9 has no json function)', async () => {
    const f = await runCli(['inspect', ref(), '--tls-verify=false', '--format', '{{json .}}|{{json .Labels}}\\t{{json .Config}}']);
    const j = await runCli(['inspect', ref(), '--tls-verify=false', '--json']);
    expect(f.status).toBe(0);
    const all = JSON.parse(j.stdout);
    expect(f.stdout).toBe(`${JSON.stringify(all)}|${JSON.stringify(labels)}\t${JSON.stringify(all.Config)}\n`);
  }, 60_000);

  it.each([
    [
      '{{range .Layers}}{{.}}{{end}}',
      'nixreg: --format "{{range .Layers}}{{.}}{{end}}": {{range .Layers}} is outside the supported subset ({{.Field}}, {{.Labels.KEY}}, {{index .Labels "KEY"}}, {{json .}}, {{json .Field}})',
    ],
    ['{{.Digest', 'nixreg: --format "{{.Digest": unclosed "{{"'],
    ['{{.LayersData}}', 'nixreg: --format: {{.LayersData}} is an object; print it with {{json .LayersData}}'],
  ])(
    '%s is a one-line usage error',
    async (template, line) => {
      const r = await runCli(['inspect', ref(), '--tls-verify=false', '--format', template]);
      expect(errorLines(r.stderr)).toEqual([line]);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
    },
    60_000,
  );

  it('--format with --json is a usage error', async () => {
    const r = await runCli(['inspect', ref(), '--format', '{{.Digest}}', '--json']);
    expect(errorLines(r.stderr)).toEqual(['nixreg: --format prints its template alone: drop --json, --raw and --config']);
    expect(r.status).toBe(2);
  }, 60_000);

  it('an unknown field names the fields there are', async () => {
    const r = await runCli(['inspect', ref(), '--tls-verify=false', '--format', '{{.Nope}}']);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/^nixreg: --format: \{\{\.Nope\}\}: no field Nope; the fields are Name, Digest, RepoTags, /);
    expect(r.status).toBe(2);
  }, 60_000);

  it('--config --raw prints the config blob bytes exactly, as skopeo', async () => {
    const r = await runCli(['inspect', ref(), '--tls-verify=false', '--config', '--raw']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdoutBytes.equals(amd64.config)).toBe(true);
    expect(r.stdoutBytes.equals(skopeo(['inspect', '--tls-verify=false', '--config', '--raw', ref()]).stdout)).toBe(true);
  }, 60_000);
});

describe('inspect conf.json --push-digest', () => {
  it.each([[[]], [['--format', 'oci']]])(
    'is the digest nixreg push %j gives the image',
    async (pushFlags) => {
      const opts = { cacheHome: join(tmp, 'cache') };
      const tag = pushFlags.length ? 'oci' : 'docker';
      const p = await runCli(
        ['push', CONF, `docker://${reg.host}/pushed/app:${tag}`, '--store-root', storeRoot, '--tls-verify=false', '--json', ...pushFlags],
        opts,
      );
      expect(errorLines(p.stderr)).toEqual([]);
      expect(p.status).toBe(0);
      const pushed = JSON.parse(p.stdout).digest as string;
      const i = await runCli(
        [
          'inspect',
          CONF,
          '--store-root',
          storeRoot,
          '--push-digest',
          ...(pushFlags.length ? ['--push-format', 'oci'] : []),
          '--format',
          '{{.PushDigest}} {{.ManifestDigest}}',
        ],
        opts,
      );
      expect(i.stderr).toBe('');
      expect(i.status).toBe(0);
      const [pushDigest, uncompressed] = i.stdout.trim().split(' ');
      expect(pushDigest).toBe(pushed);
      expect(uncompressed).not.toBe(pushed);
    },
    180_000,
  );

  it('is refused for a registry source', async () => {
    const r = await runCli(['inspect', `docker://${reg.host}/single:1`, '--tls-verify=false', '--push-digest']);
    expect(errorLines(r.stderr)).toEqual(['nixreg: --push-digest applies to a conf source (the image nixreg push builds from it)']);
    expect(r.status).toBe(2);
  }, 60_000);
});

describe('push --platform', () => {
  it('picks the platform from an OCI layout holding an index', async () => {
    const layout = join(tmp, 'layout');
    const cp = skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi:1`, `oci:${layout}:multi`]);
    expect(cp.stderr.toString()).not.toMatch(/level=(fatal|error)/);
    expect(cp.status).toBe(0);
    const r = await runCli(['push', `oci:${layout}:multi`, `docker://${reg.host}/pushed/arm:1`, '--platform', 'linux/arm64', '--tls-verify=false', '--json'], {
      cacheHome: join(tmp, 'cache'),
    });
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    const i = await runCli(['inspect', `docker://${reg.host}/pushed/arm:1`, '--tls-verify=false', '--format', '{{.Architecture}}']);
    expect(i.stdout).toBe('arm64\n');
  }, 120_000);

  it.each([
    [
      ['push', 'docker://r.example/a:1', 'docker://r.example/b:1', '--platform', 'linux/arm64'],
      'nixreg: --platform picks from an OCI layout/archive source; a docker:// copy keeps every platform',
    ],
    [
      ['push', CONF, 'docker://r.example/b:1', '--platform', 'linux/arm64'],
      'nixreg: --platform picks from an OCI layout/archive source; a conf.json builds one platform (for several: --platform-conf)',
    ],
  ])(
    '%j is a usage error',
    async (args, line) => {
      const r = await runCli(args, { cacheHome: tmp });
      expect(errorLines(r.stderr)).toEqual([line]);
      expect(r.status).toBe(2);
    },
    60_000,
  );
});
