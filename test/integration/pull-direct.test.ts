import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { pullImage } from '../../src/image/pull.js';
import { LAYERS, layerTar, makeImage, prng, sha, type TestImage } from '../helpers/images.js';
import { FAST_NET, seedImage, tempDir } from '../resilience/faults-helper.js';

// pull into a file lays the archive out from the layers' gzip trailers (ISIZE) and decompresses every layer straight
// into place (src/image/direct-pull.ts). Its bytes must be those of the general spool path, which the skopeo
// tests pin byte for byte; and where the trailer lies or cannot be read, the pull must still come out right.
let reg: Registry;
let tmp: ReturnType<typeof tempDir>;

beforeAll(async () => {
  tmp = tempDir('pull-direct');
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.close();
  tmp?.remove();
});

async function pull(repo: string, direct: boolean, extra: { hashArchive?: boolean } = {}) {
  const out = join(tmp.dir, `${repo.replace(/\W/g, '-')}-${direct ? 'direct' : 'spool'}.tar`);
  const lines: string[] = [];
  const r = await pullImage({
    imageName: `${reg.host}/${repo}:1`,
    output: out,
    platform: { os: 'linux', arch: 'amd64' },
    tlsVerify: false,
    finalImageName: 'test/app',
    force: true,
    direct,
    ...FAST_NET,
    ...extra,
    log: (l) => lines.push(l),
  });
  return { bytes: readFileSync(out), sha256: r.sha256, lines };
}

const INTO_PLACE = /decompressed into place \(sizes from their gzip trailers\)/;
const tookDirectPath = (lines: string[]) => lines.some((l) => INTO_PLACE.test(l));

async function sameAsSpoolPath(repo: string, img: TestImage) {
  await seedImage(reg, repo, '1', img);
  reg.resetCounters();
  const direct = await pull(repo, true);
  const spool = await pull(repo, false);
  expect(direct.bytes.equals(spool.bytes)).toBe(true);
  expect(direct.sha256).toEqual(spool.sha256); // hashed by reading the file back
  expect(direct.sha256!.toString('hex')).toBe(sha(direct.bytes).slice(7));
  return direct;
}

describe('pull straight into place', () => {
  it('gzip, uncompressed and repeated layers: the same archive as the spool path', async () => {
    const big = layerTar({ 'big.bin': prng('direct-big', 3 << 20) });
    const img = makeImage(
      [
        { tar: LAYERS.L1(), c: 'gzip' },
        { tar: big, c: 'gzip-1' },
        { tar: LAYERS.L3(), c: 'none' },
        { tar: LAYERS.L1(), c: 'gzip' },
      ],
      'docker',
    );
    const r = await sameAsSpoolPath('direct/mixed', img);
    expect(tookDirectPath(r.lines)).toBe(true);
    expect(r.lines.join('\n')).not.toContain('spool');
    expect(readdirSync(tmp.dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('a layer of two gzip members (its trailer gives the last member only) falls back to the spool path', async () => {
    const a = layerTar({ 'a.txt': 'first half\n'.repeat(5000) });
    const tar = Buffer.concat([a.subarray(0, 4096), a.subarray(4096)]);
    const twoMembers = Buffer.concat([gzipSync(tar.subarray(0, 4096)), gzipSync(tar.subarray(4096))]);
    const img: TestImage = { ...makeImage([{ tar, c: 'gzip' }], 'docker') };
    img.layers[0] = { blob: twoMembers, mediaType: img.layers[0]!.mediaType };
    const r = await sameAsSpoolPath('direct/members', img);
    expect(tookDirectPath(r.lines)).toBe(true);
    expect(r.lines.some((l) => /gzip trailer gives.*; pulling again through the spool/.test(l))).toBe(true);
  });

  it('a registry that ignores Range: the spool path, without downloading the blobs for their trailers', async () => {
    const img = makeImage([{ tar: layerTar({ 'x.bin': prng('direct-range', 16 << 20) }), c: 'gzip-1' }], 'docker');
    await seedImage(reg, 'direct/norange', '1', img);
    reg.setFaults([{ kind: 'ignore-range', route: 'blob' }]);
    try {
      reg.resetCounters();
      const direct = await pull('direct/norange', true);
      expect(tookDirectPath(direct.lines)).toBe(false);
      const served = reg.counters.blobBytesServed;
      const spool = await pull('direct/norange', false);
      expect(direct.bytes.equals(spool.bytes)).toBe(true);
      const blob = img.layers[0]!.blob.length + img.config.length;
      if (process.env.SHOW_FIGURES) console.log({ served, blob });
      expect(served).toBeLessThan(blob * 1.5); // the 200 to the trailer request was cut off, not read to its end
    } finally {
      reg.setFaults([]);
    }
  });

  it('a corrupted trailer (the hint is not verified) only sends the pull down the spool path', async () => {
    const img = makeImage(
      [
        { tar: LAYERS.L2(), c: 'gzip' },
        { tar: LAYERS.L4(), c: 'gzip' },
      ],
      'docker',
    );
    await seedImage(reg, 'direct/badtail', '1', img);
    reg.setFaults([{ kind: 'flip', route: 'blob', method: 'GET', ranged: true, afterBytes: 1 }]);
    try {
      const direct = await pull('direct/badtail', true);
      reg.setFaults([]);
      const spool = await pull('direct/badtail', false);
      expect(direct.bytes.equals(spool.bytes)).toBe(true);
      expect(direct.lines.some((l) => /gzip trailer gives.*; pulling again through the spool/.test(l))).toBe(true);
    } finally {
      reg.setFaults([]);
    }
  });

  it('--quiet (no hash wanted): the same bytes, and no hash', async () => {
    const img = makeImage([{ tar: LAYERS.L2(), c: 'gzip' }], 'oci');
    await seedImage(reg, 'direct/nohash', '1', img);
    const direct = await pull('direct/nohash', true, { hashArchive: false });
    expect(tookDirectPath(direct.lines)).toBe(true);
    const spool = await pull('direct/nohash', false);
    expect(direct.sha256).toBeNull();
    expect(direct.bytes.equals(spool.bytes)).toBe(true);
  });
});
