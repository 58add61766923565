import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { freePort, startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, basicAuth, makeImage, manifestOf, pushTestImage, pushTestIndex } from '../helpers/images.js';
import { toNix32, toSRI } from '../../src/digest/nixhash.js';

/** The pull command's edges: every failure is one line, the right exit code, and no file. Needs dist/ built. */
const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/nixreg.js');
const DIGEST = 'sha256:' + 'ab'.repeat(32);
let reg: Distribution;
let dir: string;
let digest: string;
let indexDigest: string;

const run = (args: string[]) => spawnSync('node', [BIN, 'pull', ...args], { encoding: 'buffer', env: { ...process.env, NIXREG_DEBUG: '' } });

function expectOneLineFailure(r: ReturnType<typeof run>, code: number, pattern: RegExp) {
  const err = r.stderr.toString();
  expect(r.status, err).toBe(code);
  expect(err).toMatch(/^nixreg: [^\n]+\n$/);
  expect(err).toMatch(pattern);
  expect(r.stdout.length).toBe(0);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nixreg-pull-cli-'));
  reg = await startDistribution();
  const img = makeImage(
    [LAYERS.L1(), LAYERS.L2()].map((tar) => ({ tar, c: 'gzip' as const })),
    'docker',
  );
  digest = await pushTestImage(reg.url, 'test/cli', img, 'v1');
  expect(digest).toBe(manifestOf(img).digest);
  indexDigest = await pushTestIndex(reg.url, 'test/cli', [{ img, platform: { os: 'linux', architecture: 'amd64' } }], 'multi');
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nixreg pull: bad inputs', () => {
  test('malformed image name → usage error', () => {
    const out = join(dir, 'bad-name.tar');
    expectOneLineFailure(run(['Bad Name!', '--digest', DIGEST, '-o', out]), 2, /invalid image reference/);
    expect(readdirSync(dir)).not.toContain('bad-name.tar');
  });

  test('malformed digest → usage error', () => {
    expectOneLineFailure(
      run([`${reg.host}/test/cli`, '--digest', 'sha256:xyz', '-o', join(dir, 'bad-digest.tar')]),
      2,
      /--digest "sha256:xyz" is not a valid digest/,
    );
    expect(readdirSync(dir)).not.toContain('bad-digest.tar');
  });

  test('connection refused → one line naming it, no file', async () => {
    const port = await freePort();
    const out = join(dir, 'refused.tar');
    expectOneLineFailure(run([`127.0.0.1:${port}/test/cli`, '--digest', DIGEST, '-o', out, '--tls-verify=false']), 1, /connection refused/);
    expect(readdirSync(dir).filter((f) => f.includes('refused'))).toEqual([]);
  });

  test('manifest not found → exit 4, no file', () => {
    const out = join(dir, 'missing.tar');
    expectOneLineFailure(run([`${reg.host}/test/cli`, '--digest', DIGEST, '-o', out, '--tls-verify=false']), 4, /not found|unknown/i);
    expect(readdirSync(dir).filter((f) => f.includes('missing'))).toEqual([]);
  });

  test('output in a directory that does not exist → one line', () => {
    expectOneLineFailure(
      run([`${reg.host}/test/cli`, '--digest', digest, '-o', join(dir, 'nope/out.tar'), '--tls-verify=false']),
      1,
      /cannot write output .*nope\/out\.tar/,
    );
  });

  test('existing output without --force is refused and kept; with --force it is replaced', () => {
    const out = join(dir, 'exists.tar');
    writeFileSync(out, 'keep me');
    expectOneLineFailure(run([`${reg.host}/test/cli`, '--digest', digest, '-o', out, '--tls-verify=false']), 2, /already exists/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const r = run([`${reg.host}/test/cli`, '--digest', digest, '-o', out, '--tls-verify=false', '--force', '--quiet']);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stderr.length).toBe(0); // --quiet
    expect(readFileSync(out).subarray(257, 262).toString()).toBe('ustar');
  });

  test('no platform in the index → exit 4 listing what exists', () => {
    expectOneLineFailure(
      run([`${reg.host}/test/cli`, '--digest', indexDigest, '-o', join(dir, 'plat.tar'), '--tls-verify=false', '--arch', 's390x']),
      4,
      /linux\/s390x.*available: linux\/amd64/,
    );
  });
});

describe('nixreg pull: outputs', () => {
  test('-o - streams the same bytes to stdout as the file; --json reports them', () => {
    const file = join(dir, 'file.tar');
    const j = run([`${reg.host}/test/cli`, '--digest', digest, '-o', file, '--tls-verify=false', '--json']);
    expect(j.status, j.stderr.toString()).toBe(0);
    const bytes = readFileSync(file);
    const s = run([`${reg.host}/test/cli`, '--digest', digest, '-o', '-', '--tls-verify=false', '--quiet']);
    expect(s.status, s.stderr.toString()).toBe(0);
    expect(s.stdout.equals(bytes)).toBe(true);
    const h = createHash('sha256').update(bytes).digest();
    expect(JSON.parse(j.stdout.toString())).toEqual({
      imageName: `${reg.host}/test/cli`,
      indexDigest: null,
      manifestDigest: digest,
      output: file,
      size: bytes.length,
      hash: toSRI(h),
      sha256: toNix32(h),
    });
    // by index digest: same archive, indexDigest reported
    const viaIndex = run([`${reg.host}/test/cli`, '--digest', indexDigest, '-o', join(dir, 'idx.tar'), '--tls-verify=false', '--json', '--arch', 'amd64']);
    expect(viaIndex.status, viaIndex.stderr.toString()).toBe(0);
    expect(JSON.parse(viaIndex.stdout.toString())).toMatchObject({ indexDigest, manifestDigest: digest, hash: toSRI(h) });
  });

  test('a tag-only pull works and says which digest it resolved', () => {
    const out = join(dir, 'tag.tar');
    // file.tar was pulled by digest, so its final tag is latest; the reference's tag would otherwise be the final tag
    const r = run([`${reg.host}/test/cli:v1`, '-o', out, '--tls-verify=false', '--final-image-tag', 'latest']);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toContain(`resolved ${reg.host}/test/cli:v1 to ${digest}`);
    expect(readFileSync(out).equals(readFileSync(join(dir, 'file.tar')))).toBe(true);
  });
});

describe('nixreg pull: credentials', () => {
  test('--creds against an htpasswd registry; wrong password → exit 3 without the secret', async () => {
    const secured = await startDistribution({ htpasswd: { alice: 's3cret-pw' } });
    try {
      const img = makeImage(
        [LAYERS.L3()].map((tar) => ({ tar, c: 'gzip' as const })),
        'docker',
      );
      const d = await pushTestImage(secured.url, 'test/private', img, undefined, basicAuth('alice', 's3cret-pw'));
      const out = join(dir, 'private.tar');
      const ok = run([`${secured.host}/test/private`, '--digest', d, '-o', out, '--tls-verify=false', '--creds', 'alice:s3cret-pw', '--quiet']);
      expect(ok.status, ok.stderr.toString()).toBe(0);
      expect(readFileSync(out).subarray(257, 262).toString()).toBe('ustar');
      const bad = run([`${secured.host}/test/private`, '--digest', d, '-o', join(dir, 'private-bad.tar'), '--tls-verify=false', '--creds', 'alice:wrong-pw']);
      expectOneLineFailure(bad, 3, new RegExp(secured.host.replace(/\./g, '\\.')));
      expect(bad.stderr.toString()).not.toContain('wrong-pw');
      expect(readdirSync(dir).filter((f) => f.includes('private-bad'))).toEqual([]);
    } finally {
      await secured.stop();
    }
  });
});

describe('nixreg pull: defaults a new user expects', () => {
  const repoTags = (file: string): string[] => {
    const r = spawnSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' });
    return JSON.parse(r.stdout)[0].RepoTags;
  };

  test("a tag in the reference is the final tag; without -o the file is pullImage's name in the current directory", () => {
    const cwd = mkdtempSync(join(dir, 'default-o-'));
    const r = spawnSync('node', [BIN, 'pull', `${reg.host}/test/cli:v1`, '--tls-verify=false', '--arch', 'amd64', '--final-image-name', 'test/cli'], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, NIXREG_DEBUG: '' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(cwd)).toEqual(['docker-image-test-cli-v1.tar']);
    expect(repoTags(join(cwd, 'docker-image-test-cli-v1.tar'))).toEqual([expect.stringMatching(/(^|\/)test\/cli:v1$/)]);
  });

  test('a tag resolving to an index: the pin is the per-platform manifest digest', () => {
    const out = join(dir, 'pin.tar');
    const r = run([`${reg.host}/test/cli:multi`, '--tls-verify=false', '--arch', 'amd64', '-o', out]);
    const err = r.stderr.toString();
    expect(r.status, err).toBe(0);
    expect(err).toContain(`pin it with --digest ${digest}`);
    expect(err).not.toContain(`pin it with --digest ${indexDigest}`);
  });
});
