import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

/** `nixreg stream` end to end (needs a built dist/: `npx tsc -p tsconfig.json`). */
const BIN = join(FIXTURES, '..', '..', 'bin', 'nixreg.js');
const CASE = join(FIXTURES, 'cases', 'a-defaults');
const expected = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8'));
const STORE_LAYERS = expected.layers.filter((l: { kind: string }) => l.kind === 'store').length;

let root: string;
let work: string;
beforeAll(async () => {
  root = await buildStoreTree();
  work = mkdtempSync(join(tmpdir(), 'nixreg-stream-cli-'));
});
afterAll(async () => {
  if (root) await removeStoreTree(root);
  if (work) rmSync(work, { recursive: true, force: true });
});

function nixreg(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const stats = (f: string) => JSON.parse(readFileSync(f, 'utf8'));

describe('nixreg stream', () => {
  it('writes the image to a file (-o), one generation per layer, byte-identical, same progress lines', () => {
    const cache = join(work, 'cache-file');
    const out = join(work, 'a.tar');
    const st = join(work, 'stats-file.json');
    const r = nixreg(['stream', join(CASE, 'conf.json'), '--store-root', root, '-o', out], { XDG_CACHE_HOME: cache, NIXREG_STREAM_STATS: st });
    expect(r.stderr).toBe(expected.stderr);
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBe(0);
    const bytes = readFileSync(out);
    expect([sha(bytes), bytes.length]).toEqual([expected.output.sha256, expected.output.size]);
    // seekable output: every store layer hashed while written, header patched; no separate hashing pass
    expect(stats(st)).toEqual({ hashPasses: 0, writePasses: STORE_LAYERS, cacheHits: 0, hashedWhileWriting: STORE_LAYERS });
    expect(readdirSync(join(cache, 'nixreg', 'layers')).length).toBe(STORE_LAYERS);
  });

  it('writes to stdout; a second run uses the cache (no hashing pass) and stays identical; --no-cache too', () => {
    const cache = join(work, 'cache-stdout');
    const st1 = join(work, 'stats1.json');
    const st2 = join(work, 'stats2.json');
    const st3 = join(work, 'stats3.json');
    const first = nixreg(['stream', join(CASE, 'conf.json'), '--store-root', root], { XDG_CACHE_HOME: cache, NIXREG_STREAM_STATS: st1 });
    expect(first.status).toBe(0);
    expect(sha(first.stdout)).toBe(expected.output.sha256);
    // pipe output: like the script, a hashing pass per layer before writing it — but now cached
    expect(stats(st1)).toMatchObject({ hashPasses: STORE_LAYERS, cacheHits: 0 });
    const dir = join(cache, 'nixreg', 'layers');
    const entries = readdirSync(dir).sort();
    const mtimes = entries.map((f) => statSync(join(dir, f)).mtimeMs);

    const second = nixreg(['stream', join(CASE, 'conf.json'), '--store-root', root, '-o', '-'], { XDG_CACHE_HOME: cache, NIXREG_STREAM_STATS: st2 });
    expect(second.status).toBe(0);
    expect(second.stdout.equals(first.stdout)).toBe(true);
    expect(stats(st2)).toEqual({ hashPasses: 0, writePasses: STORE_LAYERS, cacheHits: STORE_LAYERS, hashedWhileWriting: 0 });
    expect(readdirSync(dir).sort()).toEqual(entries);
    expect(entries.map((f) => statSync(join(dir, f)).mtimeMs)).toEqual(mtimes); // hits do not rewrite entries

    const third = nixreg(['stream', join(CASE, 'conf.json'), '--store-root', root, '--no-cache'], {
      XDG_CACHE_HOME: join(work, 'cache-none'),
      NIXREG_STREAM_STATS: st3,
    });
    expect(third.status).toBe(0);
    expect(third.stdout.equals(first.stdout)).toBe(true);
    expect(stats(st3)).toMatchObject({ hashPasses: STORE_LAYERS, cacheHits: 0 });
    expect(existsSync(join(work, 'cache-none'))).toBe(false);
  });

  it('stdout redirected to a file (> image.tar) is written in one pass too; >> falls back to hashing first', () => {
    for (const [flags, prefix, expectPasses] of [
      ['w', '', 0],
      ['a', 'prefix', STORE_LAYERS],
    ] as const) {
      const out = join(work, `redirect-${flags}.tar`);
      writeFileSync(out, prefix);
      const fd = openSync(out, flags === 'w' ? 'r+' : 'a');
      const st = join(work, `stats-redirect-${flags}.json`);
      const r = spawnSync(process.execPath, [BIN, 'stream', join(CASE, 'conf.json'), '--store-root', root, '--no-cache'], {
        stdio: ['ignore', fd, 'pipe'],
        env: { ...process.env, NIXREG_STREAM_STATS: st },
      });
      closeSync(fd);
      expect(r.status).toBe(0);
      const bytes = readFileSync(out);
      expect(bytes.subarray(0, prefix.length).toString()).toBe(prefix);
      expect(sha(bytes.subarray(prefix.length))).toBe(expected.output.sha256);
      expect(stats(st)).toMatchObject({ hashPasses: expectPasses });
    }
  });

  it('-t overrides RepoTags', () => {
    const r = nixreg(['stream', join(CASE, 'conf.json'), '--store-root', root, '--no-cache', '-t', 'nixreg/override:v2']);
    expect(r.status).toBe(0);
    expect(sha(r.stdout)).toBe(expected.variants[0].output.sha256);
  });

  it('a changed store file invalidates the cached digest (fingerprint in the key)', async () => {
    const cache = join(work, 'cache-change');
    const tree = await buildStoreTree(join(work, 'mutable'));
    const conf = join(CASE, 'conf.json');
    const a = nixreg(['stream', conf, '--store-root', tree], { XDG_CACHE_HOME: cache });
    expect(sha(a.stdout)).toBe(expected.output.sha256);
    const f = join(tree, '/nix/store/l1hi1l7jsc1rlr9z6grvn3d12y7fhz8q-fx-tie-a');
    rmSync(f);
    writeFileSync(f, 'x'.repeat(53)); // same size, new inode/mtime
    const st = join(work, 'stats-change.json');
    const b = nixreg(['stream', conf, '--store-root', tree], { XDG_CACHE_HOME: cache, NIXREG_STREAM_STATS: st });
    expect(b.status).toBe(0);
    expect(stats(st)).toMatchObject({ hashPasses: 1, cacheHits: STORE_LAYERS - 1 });
    expect(sha(b.stdout)).not.toBe(expected.output.sha256);
    const fresh = nixreg(['stream', conf, '--store-root', tree, '--no-cache']);
    expect(fresh.stdout.equals(b.stdout)).toBe(true);
    await removeStoreTree(tree);
  });

  describe('bad confs fail with one line, exit 2, and no output file', () => {
    const conf = JSON.parse(readFileSync(join(CASE, 'conf.json'), 'utf8'));
    const bad: Array<[string, (c: Record<string, unknown>) => unknown, RegExp]> = [
      ['missing key', (c) => delete c.store_layers, /missing key "store_layers"/],
      ['wrong type', (c) => (c.uid = [0]), /key "uid" must be an integer/],
      ['bad time', (c) => (c.created = 'yesterday'), /key "created"/],
      [
        'missing store path',
        (c) => ((c.store_layers as string[][])[0] = ['/nix/store/00000000000000000000000000000000-nope']),
        /store path \/nix\/store\/0+-nope does not exist/,
      ],
      [
        'from_image is not an image',
        (c) => (c.from_image = '/nix/store/3508dr99dssd506imzphqz853w751s6z-fx-settings.conf'),
        /from_image .*fx-settings\.conf is not a tar archive/,
      ],
      ['from_image missing', (c) => (c.from_image = '/nix/store/00000000000000000000000000000000-nope.tar'), /from_image .* does not exist/],
      ['customisation layer missing', (c) => (c.customisation_layer = '/nix/store/00000000000000000000000000000000-nope'), /customisation_layer .*checksum/],
    ];
    for (const [what, mutate, msg] of bad) {
      it(what, () => {
        const c = structuredClone(conf);
        mutate(c);
        const dir = mkdtempSync(join(work, 'bad-'));
        const file = join(dir, 'conf.json');
        writeFileSync(file, JSON.stringify(c));
        const out = join(dir, 'out.tar');
        const r = nixreg(['stream', file, '--store-root', root, '--no-cache', '-o', out]);
        expect(r.status).toBe(2);
        expect(r.stderr).toMatch(/^nixreg: [^\n]+\n$/);
        expect(r.stderr).toMatch(msg);
        expect(readdirSync(dir)).toEqual(['conf.json']); // no output, no temp file
        const r2 = nixreg(['stream', file, '--store-root', root, '--no-cache']);
        expect(r2.status).toBe(2);
        expect(r2.stdout.length).toBe(0);
      });
    }
    it('not JSON', () => {
      const file = join(work, 'notjson.json');
      writeFileSync(file, '{"architecture": ');
      const r = nixreg(['stream', file]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^nixreg: .*not valid JSON[^\n]*\n$/);
    });
  });
});
