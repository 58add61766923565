import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { pullImage } from '../../src/image/pull.js';
import { prefetch } from '../../src/prefetch/prefetch.js';
import { nativePump } from '../../src/compression/native-decompress.js';
import { LAYERS, layerTar, makeImage, prettyConfig, prng, sha, type TestImage } from '../helpers/images.js';
import { FAST_NET, seedImage, tempDir } from '../resilience/faults-helper.js';

// prefetch hashes the archive straight from the decompressed layers, sizes from the gzip trailers, nothing
// uncompressed spooled (src/prefetch/stream-hash.ts). Its hash must be that of the archive the general spool
// path writes (pinned byte for byte against skopeo by the pull tests); where a trailer lies or cannot be read,
// or the layer is not gzip, it must still come out right; and the diffIDs are still checked.
let reg: Registry;
let tmp: ReturnType<typeof tempDir>;
let spoolBase: string;
const savedTmp = process.env.TMPDIR;

beforeAll(async () => {
  tmp = tempDir('prefetch-stream');
  spoolBase = join(tmp.dir, 'tmp');
  mkdirSync(spoolBase);
  process.env.TMPDIR = spoolBase; // the spool and the ahead downloads: checked empty after every run
  reg = await startRegistry();
});
afterAll(async () => {
  process.env.TMPDIR = savedTmp;
  await reg?.close();
  tmp?.remove();
});

const STREAMED = /streamed into the archive hash \(sizes from their gzip trailers\)/;
const FELL_BACK = /(gzip trailer gives.*|not gzip, although its media type says so); hashing again through the spool/;

async function hashes(repo: string, img: TestImage, jobs?: number) {
  await seedImage(reg, repo, '1', img);
  const lines: string[] = [];
  const spooled: string[] = [];
  const [run] = await prefetch({
    imageName: `${reg.host}/${repo}:1`,
    platform: { os: 'linux', arch: 'amd64' },
    finalImageName: 'test/app',
    finalImageTag: 'latest',
    client: { tlsVerify: false, ...FAST_NET, log: (l: string) => lines.push(l) },
    ...(jobs ? { jobs } : {}),
    progress: { layerSpooled: (i) => spooled.push(String(i)) },
    log: (l) => lines.push(l),
  });
  expect(readdirSync(spoolBase)).toEqual([]);
  const out = join(tmp.dir, `${repo.replace(/\W/g, '-')}.tar`);
  const pulled = await pullImage({
    imageName: `${reg.host}/${repo}:1`,
    output: out,
    platform: { os: 'linux', arch: 'amd64' },
    tlsVerify: false,
    finalImageName: 'test/app',
    force: true,
    direct: false,
    ...FAST_NET,
  });
  expect(run!.sha256.equals(pulled.sha256!)).toBe(true);
  expect(run!.size).toBe(pulled.size);
  return { lines, spooled, streamed: lines.some((l) => STREAMED.test(l)) };
}

describe('prefetch hashes without spooling the layers', () => {
  it('gzip, uncompressed and repeated layers, with and without downloads ahead: the hash of the spool path', async () => {
    const big = layerTar({ 'big.bin': prng('stream-big', 3 << 20) });
    const img = makeImage(
      [
        { tar: LAYERS.L1(), c: 'gzip' },
        { tar: big, c: 'gzip-1' },
        { tar: LAYERS.L3(), c: 'none' },
        { tar: LAYERS.L1(), c: 'gzip' },
        { tar: LAYERS.L4(), c: 'gzip' },
      ],
      'docker',
    );
    for (const jobs of [1, 4]) {
      const r = await hashes('stream/mixed', img, jobs);
      expect(r.streamed).toBe(true);
      expect(r.lines.join('\n')).not.toContain('spool');
      expect(r.spooled).toEqual(['0', '1', '2', '4']); // each distinct layer once, in archive order
    }
  });

  it('a registry slower than decoding: the later layers download ahead, over several connections at once', async () => {
    const img = makeImage(
      [0, 1, 2, 3].map((n) => ({ tar: layerTar({ [`f${n}.bin`]: prng(`ahead-${n}`, 96 << 10) }), c: 'gzip' as const })),
      'docker',
    );
    const from = reg.log.length;
    // ~2 MB/s a connection: each 96 KiB blob takes ~50 ms, far longer than it decodes
    reg.setFaults([{ kind: 'drip', route: 'blob', method: 'GET', dripBytes: 4096, dripIntervalMs: 2 }]);
    let r: Awaited<ReturnType<typeof hashes>>;
    try {
      r = await hashes('stream/slow', img, 4);
    } finally {
      reg.setFaults([]);
    }
    expect(r.streamed).toBe(true);
    const gets = reg.log
      .slice(from)
      .filter((e) => e.method === 'GET' && e.route === 'blob' && !e.headers.range && e.name === 'stream/slow')
      .map((e) => ({ start: Date.parse(e.time), end: Date.parse(e.time) + e.durationMs }))
      .sort((a, b) => a.start - b.start);
    // some layer blob's download began before the previous one's ended
    expect(gets.some((g, k) => k > 0 && g.start < gets[k - 1]!.end)).toBe(true);
    if (nativePump('gzip')) expect(r.lines.some((l) => /slower than decoding: downloading up to 3 layer\(s\) ahead/.test(l))).toBe(true);
  });

  it('a layer of two gzip members (its trailer gives the last member only): hashed again through the spool', async () => {
    const a = layerTar({ 'a.txt': 'first half\n'.repeat(5000) });
    const twoMembers = Buffer.concat([gzipSync(a.subarray(0, 4096)), gzipSync(a.subarray(4096))]);
    const img = makeImage([{ tar: a, c: 'gzip' }], 'docker');
    img.layers[0] = { blob: twoMembers, mediaType: img.layers[0]!.mediaType };
    const r = await hashes('stream/members', img);
    expect(r.streamed).toBe(true);
    expect(r.lines.some((l) => FELL_BACK.test(l))).toBe(true);
  });

  it('zstd under a gzip media type (a trailer that is no size) and a registry that ignores Range', async () => {
    const img = makeImage(
      [
        { tar: LAYERS.L2(), c: 'zstd-as-gzip' },
        { tar: LAYERS.L4(), c: 'gzip' },
      ],
      'oci',
    );
    const r = await hashes('stream/zstd', img);
    expect(r.streamed).toBe(true);
    expect(r.lines.some((l) => FELL_BACK.test(l))).toBe(true);
    reg.setFaults([{ kind: 'ignore-range', route: 'blob' }]);
    try {
      expect((await hashes('stream/norange', makeImage([{ tar: LAYERS.L2(), c: 'gzip' }], 'docker'))).streamed).toBe(false);
    } finally {
      reg.setFaults([]);
    }
  });

  it('a layer that does not match its diffID in the config: one integrity error, nothing left behind', async () => {
    const img = makeImage(
      [
        { tar: LAYERS.L2(), c: 'gzip' },
        { tar: LAYERS.L4(), c: 'gzip' },
      ],
      'docker',
    );
    img.config = prettyConfig([sha(LAYERS.L2()), sha(LAYERS.L1())]);
    await seedImage(reg, 'stream/baddiff', '1', img);
    const lines: string[] = [];
    const run = prefetch({
      imageName: `${reg.host}/stream/baddiff:1`,
      platform: { os: 'linux', arch: 'amd64' },
      client: { tlsVerify: false, ...FAST_NET },
      log: (l) => lines.push(l),
    });
    await expect(run).rejects.toThrow(/layer 1 \(sha256:[0-9a-f]{64}\) uncompressed to sha256:[0-9a-f]{64}, but the config's rootfs.diff_ids\[1\] is/);
    expect(lines.some((l) => STREAMED.test(l))).toBe(true);
    expect(readdirSync(spoolBase)).toEqual([]);
  });
});
