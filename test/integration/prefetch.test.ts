import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, pushAmdArmIndex } from '../helpers/images.js';
import { nixHashFileSRI, requireTool } from '../helpers/tools.js';

/**
 * `nixreg prefetch` as a drop-in nix-prefetch-docker, against the real distribution registry: its hash must be
 * the flat sha256 (per Nix 2.8) of the archive skopeo 1.9.3 writes for the same inputs, its digest the platform's
 * manifest digest, and its stdout byte-identical to the golden files (host:port substituted).
 */
const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/nixreg.js');
const GOLDEN = join(ROOT, 'test/golden');
let reg: Distribution;
let work: string;
const d: Record<string, string> = {};

const nixreg = (args: string[]) => spawnSync('node', [BIN, 'prefetch', ...args], { encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '' } });

function skopeoHash(ref: string, finalName: string, finalTag: string): string {
  const tmp = mkdtempSync(join(work, 'skopeo-'));
  const out = join(tmp, 'image.tar');
  execFileSync(
    'skopeo',
    [
      '--insecure-policy',
      `--tmpdir=${tmp}`,
      '--override-os',
      'linux',
      '--override-arch',
      'amd64',
      'copy',
      '--src-tls-verify=false',
      `docker://${ref}`,
      `docker-archive://${out}:${finalName}:${finalTag}`,
    ],
    { env: { ...process.env, REGISTRY_AUTH_FILE: join(tmp, 'auth.json') }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return nixHashFileSRI(out);
}

/** The golden text for `name`; UPDATE_GOLDEN=1 rewrites it from `actual` (review the diff before committing). */
function golden(name: string, actual: string): string {
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(join(GOLDEN, name), actual.replaceAll(reg.host, '{{HOST}}'));
  return readFileSync(join(GOLDEN, name), 'utf8').replaceAll('{{HOST}}', reg.host);
}

beforeAll(async () => {
  requireTool('skopeo');
  expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
  work = mkdtempSync(join(tmpdir(), 'nixreg-prefetch-'));
  reg = await startDistribution();
  const amd = makeImage(
    [LAYERS.L1(), LAYERS.L2()].map((tar) => ({ tar, c: 'gzip' as const })),
    'docker',
  );
  const arm = makeImage(
    [
      { tar: LAYERS.L2(), c: 'gzip' },
      { tar: LAYERS.L4(), c: 'gzip' },
    ],
    'oci',
    { arch: 'arm64', variant: 'v8' },
  );
  Object.assign(d, await pushAmdArmIndex(reg.url, 'test/app', amd, arm, { amd: 'single', index: 'multi' }));
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nixreg prefetch', () => {
  test("multi-arch tag: pins the amd64 manifest digest, hash equals nix hash of skopeo's archive, golden Nix output", () => {
    // a fixed final name keeps the hash independent of the registry's port, so the golden files stay valid
    const r = nixreg([`${reg.host}/test/app`, 'multi', '--tls-verify=false', '--final-image-name', 'test/app']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(golden('prefetch-multi.nix', r.stdout));
    expect(r.stdout).toContain(`imageDigest = "${d.amd}";`);
    const sri = skopeoHash(`${reg.host}/test/app@${d.index}`, 'test/app', 'multi');
    expect(r.stdout).toContain(`hash = "${sri}";`);
    expect(r.stderr).toContain(`-> IndexDigest: ${d.index}`);
    expect(r.stderr).toContain(`-> ImageHash: ${sri}`);
    expect(r.stderr).toMatch(/-> ImagePath: \/nix\/store\/[0-9a-z]{32}-docker-image-test-app-multi\.tar\n/);
  });

  test('--json, --index-digest and --legacy-sha256 keep the original layout', () => {
    const j = nixreg([`${reg.host}/test/app`, 'multi', '--tls-verify=false', '--final-image-name', 'test/app', '--json', '--quiet']);
    expect(j.status, j.stderr).toBe(0);
    expect(j.stderr).toBe('');
    expect(j.stdout).toBe(golden('prefetch-multi.json', j.stdout));
    const idx = nixreg(['--image-name', `${reg.host}/test/app`, '--image-tag', 'multi', '--tls-verify=false', '--index-digest', '--quiet']);
    expect(idx.stdout).toContain(`imageDigest = "${d.index}";`);
    const legacy = nixreg([`${reg.host}/test/app`, 'multi', '--tls-verify=false', '--legacy-sha256', '--quiet']);
    expect(legacy.stdout).toMatch(/\n {2}sha256 = "[0-9a-z]{52}";\n/);
  });

  test('a digest positional and final name/tag: hash of exactly that archive; --add-to-store gives ImagePath', () => {
    const r = nixreg([`${reg.host}/test/app`, d.amd, '--final-image-name', 'my/app', '--final-image-tag', 'v1', '--tls-verify=false', '--add-to-store']);
    expect(r.status, r.stderr).toBe(0);
    const sri = skopeoHash(`${reg.host}/test/app@${d.amd}`, 'my/app', 'v1');
    expect(r.stdout).toContain(`hash = "${sri}";`);
    const path = /-> ImagePath: (\S+)/.exec(r.stderr)![1]!;
    expect(path).toMatch(/-docker-image-my-app-v1\.tar$/);
    expect(nixHashFileSRI(path)).toBe(sri);
  });

  test('--platform all: one entry per platform; --format nix-expr', () => {
    const r = nixreg([`${reg.host}/test/app`, 'multi', '--tls-verify=false', '--final-image-name', 'test/app', '--platform', 'all', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(golden('prefetch-all.nix', r.stdout));
    const e = nixreg([`${reg.host}/test/app`, 'single', '--tls-verify=false', '--final-image-name', 'test/app', '--format', 'nix-expr', '--quiet']);
    expect(e.stdout).toBe(golden('prefetch-single-expr.nix', e.stdout));
  });

  test('a docker:// reference prints the bare name, as nix-prefetch-docker does (pullImage adds the prefix)', () => {
    const bare = nixreg([`${reg.host}/test/app`, 'single', '--tls-verify=false', '--quiet']);
    const prefixed = nixreg([`docker://${reg.host}/test/app`, 'single', '--tls-verify=false', '--quiet']);
    expect(prefixed.status, prefixed.stderr).toBe(0);
    expect(prefixed.stdout).not.toContain('docker://');
    expect(prefixed.stdout).toBe(bare.stdout);
    const flag = nixreg(['--image-name', `docker://${reg.host}/test/app`, '--image-tag', 'single', '--tls-verify=false', '--json', '--quiet']);
    expect(flag.status, flag.stderr).toBe(0);
    expect(JSON.parse(flag.stdout).imageName).toBe(`${reg.host}/test/app`);
  });

  test('bad input: one line, non-zero exit', () => {
    const cases: [string[], number, RegExp][] = [
      [[`${reg.host}/test/app`, 'nope', '--tls-verify=false'], 4, /nope/],
      [[`${reg.host}/test/app`, 'multi', '--arch', 's390x', '--tls-verify=false'], 4, /linux\/amd64, linux\/arm64\/v8/],
      [[`${reg.host}/test/app`, 'multi', 'extra'], 2, /at most 2 positionals/],
      [[], 2, /no image name/],
    ];
    for (const [args, code, msg] of cases) {
      const r = nixreg(args);
      expect(r.status, r.stderr).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});
