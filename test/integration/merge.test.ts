import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { LAYERS, pushTestImage } from '../helpers/images.js';
import { simpleImage } from '../helpers/simple-image.js';
import { requireTool } from '../helpers/tools.js';
import { runCliSync } from '../helpers/cli.js';
import { FIXTURES } from '../helpers/store-tree.js';
import { TarArchive } from '../../src/nix/stream/tar-reader.js';

/**
 * `nixreg merge` (dockerTools.mergeImages): two images sharing a layer, pulled into docker-archives (one of them
 * gzip'd), merged; skopeo must read each image back from the merged archive exactly as from its own archive,
 * and the shared layer must be stored once. Needs a built dist/.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const SKOPEO_FORMAT = join(FIXTURES, 'blobs', '1ec5009871dc8fbbe26c7a86f0d275425cd8c9bb0a1d774aa2fe01e393c7796b'); // skopeo docker-archive
const STREAM_GZ = join(FIXTURES, 'blobs', '5a71a418a27dee6bbb868404aaa50f7320d341f1e9d62d5314e34a3504652908'); // the same image as a gzip'd stream output
let reg: Distribution;
let work: string;
const shared = LAYERS.L1();
const sharedHex = createHash('sha256').update(shared).digest('hex');

const nixreg = (...args: string[]) => runCliSync(args);
/** skopeo's view of one image of an archive, rewritten as a docker-archive with a fixed name. */
function viaSkopeo(archive: string, ref: string | undefined, name: string): Buffer {
  const out = join(
    work,
    `via-${createHash('sha256')
      .update(archive + ref + name)
      .digest('hex')
      .slice(0, 8)}.tar`,
  );
  rmSync(out, { force: true });
  execFileSync('skopeo', ['--insecure-policy', 'copy', '-q', `docker-archive:${archive}${ref ? `:${ref}` : ''}`, `docker-archive:${out}:${name}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return readFileSync(out);
}
async function members(file: string): Promise<string[]> {
  const a = await TarArchive.open(file, () => false);
  await a.close();
  return a.members.map((m) => m.name);
}

beforeAll(async () => {
  requireTool('skopeo');
  expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
  work = mkdtempSync(join(tmpdir(), 'nixreg-merge-'));
  reg = await startDistribution();
  const a = await pushTestImage(reg.url, 'm/a', simpleImage([shared, LAYERS.L2()]));
  const b = await pushTestImage(reg.url, 'm/b', simpleImage([shared, LAYERS.L3()], { Cmd: ['b'] }));
  const pull = (repo: string, digest: string, out: string, name: string, tag: string) => {
    const r = nixreg(
      'pull',
      `${reg.host}/${repo}`,
      '--digest',
      digest,
      '-o',
      out,
      '--tls-verify=false',
      '--quiet',
      '--final-image-name',
      name,
      '--final-image-tag',
      tag,
    );
    expect(r.status, r.stderr).toBe(0);
  };
  pull('m/a', a, join(work, 'a.tar'), 'example.org/a', '1');
  pull('m/b', b, join(work, 'b.tar'), 'example.org/b', '2');
  pull('m/b', b, join(work, 'b-as-a.tar'), 'example.org/a', '1');
  writeFileSync(join(work, 'b.tar.gz'), gzipSync(readFileSync(join(work, 'b.tar'))));
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('nixreg merge', () => {
  test('two images sharing a layer (one input gzip): skopeo reads each back unchanged; the shared layer is stored once', async () => {
    const all = join(work, 'all.tar');
    const r = nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar.gz'), '-o', all, '--json', '--compress', 'none');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ images: 2, layersStored: 3, layersShared: 1, compress: 'none' });
    for (const [orig, ref] of [
      [join(work, 'a.tar'), 'example.org/a:1'],
      [join(work, 'b.tar'), 'example.org/b:2'],
    ] as const) {
      expect(viaSkopeo(all, ref, 'x/y:z').equals(viaSkopeo(orig, undefined, 'x/y:z')), ref).toBe(true);
    }
    const names = await members(all);
    expect(names.filter((n) => n.includes(sharedHex))).toEqual([`${sharedHex}.tar`]);
    expect(new Set(names).size).toBe(names.length);
    const manifest = JSON.parse(execFileSync('tar', ['xOf', all, 'manifest.json'], { encoding: 'utf8' }));
    expect(manifest.map((e: { RepoTags: string[] }) => e.RepoTags)).toEqual([['example.org/a:1'], ['example.org/b:2']]);
    const repos = JSON.parse(execFileSync('tar', ['xOf', all, 'repositories'], { encoding: 'utf8' }));
    expect(Object.keys(repos).sort()).toEqual(['example.org/a', 'example.org/b']);
    // deterministic: the same inputs give the same bytes
    const again = join(work, 'all2.tar');
    expect(nixreg('merge', join(work, 'b.tar.gz'), join(work, 'a.tar'), '-o', again).status).toBe(0); // last input plain → plain
    expect(readFileSync(join(work, 'all2.tar')).subarray(257, 262).toString()).toBe('ustar');
    const third = join(work, 'all3.tar');
    expect(nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar.gz'), '-o', third, '--compress', 'none').status).toBe(0);
    expect(readFileSync(third).equals(readFileSync(all))).toBe(true);
  });

  test("--compress gz|zstd, and by default the last input's compression (as mergeImages): same archive inside, deterministic", () => {
    requireTool('zstd');
    const plain = join(work, 'c-plain.tar');
    expect(nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar'), '-o', plain).status).toBe(0);
    const dflt = join(work, 'c-default');
    const r = nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar.gz'), '-o', dflt, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).compress).toBe('gz');
    expect(gunzipSync(readFileSync(dflt)).equals(readFileSync(plain))).toBe(true);
    const gz = join(work, 'c.tar.gz');
    expect(nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar'), '-o', gz, '--compress', 'gz').status).toBe(0);
    expect(readFileSync(gz).equals(readFileSync(dflt))).toBe(true);
    // a zstd input reads like the others
    execFileSync('zstd', ['-q', '-f', join(work, 'b.tar'), '-o', join(work, 'b.tar.zst')]);
    const fromZst = join(work, 'c-from-zst.tar');
    expect(nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar.zst'), '-o', fromZst, '--compress', 'none').status).toBe(0);
    expect(readFileSync(fromZst).equals(readFileSync(plain))).toBe(true);
    const zst = join(work, 'c.tar.zst');
    expect(nixreg('merge', join(work, 'a.tar'), join(work, 'b.tar'), '-o', zst, '--compress', 'zstd').status).toBe(0);
    expect(execFileSync('zstd', ['-dc', zst], { maxBuffer: 1 << 28 }).equals(readFileSync(plain))).toBe(true);
    const bad = nixreg('merge', join(work, 'a.tar'), '-o', join(work, 'c.bz2'), '--compress', 'bzip2');
    expect(bad.status).toBe(2);
    expect(readdirSync(work)).not.toContain('c.bz2');
  });

  test('the same image as a skopeo archive and a gzip stream output: one entry, layers stored once', async () => {
    const out = join(work, 'same.tar');
    const r = nixreg('merge', SKOPEO_FORMAT, STREAM_GZ, '-o', out, '--json', '--compress', 'none');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ images: 1, layersStored: 2, layersShared: 2 });
    // the stream output's `<diffID>/layer.tar` members are the skopeo archive's `<diffID>.tar`: not stored again
    const names = await members(out);
    expect(names.filter((n) => /^[0-9a-f]{64}\.tar$/.test(n)).length).toBe(2);
    expect(names.filter((n) => /^(55b81fe6|fc063e49)[0-9a-f]{56}\/layer\.tar$/.test(n))).toEqual([]);
    expect(viaSkopeo(out, 'nixreg-fixture/base:1.0', 'x/y:z').equals(viaSkopeo(SKOPEO_FORMAT, undefined, 'x/y:z'))).toBe(true);
  });

  test('an archive re-tarred by GNU tar from a directory (`./` member names, a `.` entry) merges with clean names', async () => {
    const dir = mkdtempSync(join(work, 'untarred-'));
    execFileSync('tar', ['-xf', join(work, 'a.tar'), '-C', dir]);
    const dotted = join(work, 'a-dotted.tar');
    execFileSync('tar', ['-C', dir, '-cf', dotted, '.']);
    expect((await members(dotted)).some((n) => n.startsWith('./'))).toBe(true);
    const out = join(work, 'dotted-merged.tar');
    const r = nixreg('merge', dotted, join(work, 'b.tar'), '-o', out);
    expect(r.status, r.stderr).toBe(0);
    const names = await members(out);
    expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
    expect(names.filter((n) => n.includes(sharedHex))).toEqual([`${sharedHex}.tar`]);
    expect(viaSkopeo(out, 'example.org/a:1', 'x/y:z').equals(viaSkopeo(join(work, 'a.tar'), undefined, 'x/y:z'))).toBe(true);
  });

  test('a tag on several inputs: the last input keeps it (as docker load does), with a warning', () => {
    const out = join(work, 'dup.tar');
    const r = nixreg('merge', join(work, 'a.tar'), join(work, 'b-as-a.tar'), '-o', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: tag example.org\/a:1 is on several inputs; the last one/);
    expect(viaSkopeo(out, 'example.org/a:1', 'x/y:z').equals(viaSkopeo(join(work, 'b.tar'), undefined, 'x/y:z'))).toBe(true);
  });

  test('bad inputs: one-line error, non-zero exit, no output file (nor temp file)', () => {
    const dir = mkdtempSync(join(work, 'bad-'));
    const notTar = join(dir, 'notes.txt');
    writeFileSync(notTar, 'not an archive\n'.repeat(64));
    const corrupt = join(dir, 'corrupt.tar');
    const bytes = readFileSync(join(work, 'a.tar'));
    const at = bytes.indexOf(Buffer.from('hello\n')); // etc/motd inside the shared layer
    expect(at).toBeGreaterThan(0);
    bytes[at] = 'j'.charCodeAt(0);
    writeFileSync(corrupt, bytes);
    const cases: Array<[string[], number, RegExp]> = [
      [[join(work, 'a.tar'), notTar], 2, /notes\.txt is not a tar archive/],
      [[join(work, 'a.tar'), join(dir, 'missing.tar')], 2, /missing\.tar does not exist/],
      [[corrupt, join(work, 'b.tar')], 5, /corrupt\.tar: layer [0-9a-f]{64}\.tar: content hashes to sha256:[0-9a-f]{64}, but its config's diff_id is sha256:/],
      [[join(work, 'a.tar'), dir], 2, /is a directory/],
    ];
    for (const [inputs, code, re] of cases) {
      const r = nixreg('merge', ...inputs, '-o', join(dir, 'out.tar'));
      expect(r.status, `${inputs.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(readdirSync(dir).sort()).toEqual(['corrupt.tar', 'notes.txt']);
    }
    const exists = nixreg('merge', join(work, 'a.tar'), '-o', join(work, 'b.tar'));
    expect(exists.status).toBe(2);
    expect(exists.stderr).toMatch(/already exists/);
  });
});
