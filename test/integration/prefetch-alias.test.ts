import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, makeImage, pushAmdArmIndex } from '../helpers/images.js';

// The `nix-prefetch-docker` executable (what nvfetcher and npins call) takes nix-prefetch-docker's own flags:
// --image-name, --image-tag, --image-digest, --final-image-name, --final-image-tag, --os, --arch, --quiet, --json.
const ROOT = resolve(import.meta.dirname, '../..');
const ALIAS = join(ROOT, 'bin/nix-prefetch-docker.js');
const NIXREG = join(ROOT, 'bin/nixreg.js');
let reg: Distribution;
const d: Record<string, string> = {};

const run = (bin: string, args: string[]) => spawnSync('node', [bin, ...args], { encoding: 'utf8', env: { ...process.env, NIXREG_DEBUG: '' } });

beforeAll(async () => {
  expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
  reg = await startDistribution();
  const amd = makeImage([{ tar: LAYERS.L1(), c: 'gzip' }], 'docker');
  const arm = makeImage([{ tar: LAYERS.L2(), c: 'gzip' }], 'oci', { arch: 'arm64', variant: 'v8' });
  Object.assign(d, await pushAmdArmIndex(reg.url, 'alias/app', amd, arm, { amd: '1.0', index: 'multi' }));
}, 120_000);

afterAll(async () => {
  await reg?.stop();
});

describe('nix-prefetch-docker alias', () => {
  test('every nix-prefetch-docker flag: --image-name --image-tag --final-image-name --final-image-tag --os --arch --quiet --json', () => {
    const args = [
      '--image-name',
      `${reg.host}/alias/app`,
      '--image-tag',
      'multi',
      '--final-image-name',
      'my/app',
      '--final-image-tag',
      'v2',
      '--os',
      'linux',
      '--arch',
      'arm64',
      '--quiet',
      '--json',
      '--tls-verify=false',
    ];
    const r = run(ALIAS, args);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ imageName: `${reg.host}/alias/app`, imageDigest: d.arm, finalImageName: 'my/app', finalImageTag: 'v2' }); // the arm64 manifest: --os/--arch chose it
    expect(Object.keys(j)).toEqual(['imageName', 'imageDigest', 'hash', 'finalImageName', 'finalImageTag']);
    expect(j.hash).toMatch(/^sha256-[A-Za-z0-9+/]{43}=$/);
    // the alias is `nixreg prefetch`: same arguments, same bytes
    expect(run(NIXREG, ['prefetch', ...args]).stdout).toBe(r.stdout);
  });

  test('--image-digest pins exactly that manifest; positionals NAME TAG work like nix-prefetch-docker', () => {
    const byDigest = run(ALIAS, [
      '--image-name',
      `${reg.host}/alias/app`,
      '--image-digest',
      d.amd,
      '--final-image-tag',
      '1.0',
      '--quiet',
      '--json',
      '--tls-verify=false',
    ]);
    expect(byDigest.status, byDigest.stderr).toBe(0);
    expect(JSON.parse(byDigest.stdout)).toMatchObject({ imageDigest: d.amd, finalImageName: `${reg.host}/alias/app`, finalImageTag: '1.0' });
    const positional = run(ALIAS, [`${reg.host}/alias/app`, '1.0', '--quiet', '--json', '--tls-verify=false']);
    expect(positional.status, positional.stderr).toBe(0);
    // same image, same final name and tag: the same archive hash
    expect(JSON.parse(positional.stdout)).toEqual(JSON.parse(byDigest.stdout));
  });

  test('without --quiet: the -> lines on stderr, Nix on stdout', () => {
    const r = run(ALIAS, [`${reg.host}/alias/app`, '1.0', '--tls-verify=false']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`-> ImageName: ${reg.host}/alias/app`);
    expect(r.stderr).toContain(`-> ImageDigest: ${d.amd}`);
    expect(r.stdout).toContain(`imageDigest = "${d.amd}";`);
  });
});
