import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { compressArchiveStream, parseArchiveCompression } from '../../src/compression/archive.js';
import { sha256Digest } from '../../src/digest/sha256.js';
import type { ByteSink } from '../../src/nix/stream/sink.js';
import type { PreparedImage } from '../../src/nix/stream/image.js';
import { DirTarget, OCI_LAYOUT_FILE, TarTarget, buildLayoutIndex, refNameOf, writeOciImage } from '../../src/oci/index.js';
import { ociDirHeader, ociFileHeader } from '../../src/sink/oci-layout/tar-entry.js';
import type { LayoutImageWriter, StreamedLayer } from '../../src/sink/oci-layout/image-writer.js';
import { writeLayoutTarget } from '../../src/sink/oci-layout/layout-sink.js';

class MemorySink implements ByteSink {
  buf = Buffer.alloc(0);
  constructor(seekable: boolean) {
    if (!seekable) delete (this as Partial<MemorySink>).patch;
  }
  async write(b: Buffer) {
    this.buf = Buffer.concat([this.buf, b]);
  }
  patch? = async (offset: number, b: Buffer) => {
    b.copy(this.buf, offset);
  };
  async finish() {}
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return parseInt(h.toString('latin1', 148, 154), 8) === sum;
}

async function writeBlobs(t: TarTarget | DirTarget) {
  for (const data of [Buffer.from('first blob'), Buffer.alloc(1000, 7)]) {
    const w = await t.beginBlob();
    await w.write(data.subarray(0, 3));
    await w.write(data.subarray(3));
    await w.finish(sha256Digest(data), data.length);
  }
  await t.putBlob(sha256Digest('cfg'), Buffer.from('cfg'));
  await t.putFile('index.json', buildLayoutIndex(sha256Digest('m'), 1, 'v1'));
  await t.putFile('oci-layout', OCI_LAYOUT_FILE);
  await t.commit();
}

describe('OCI layout pieces', () => {
  it('ref.name is the tag, as skopeo writes for oci:DIR:TAG', () => {
    expect(refNameOf('nixreg/app:v1.2')).toBe('v1.2');
    expect(refNameOf('localhost:5000/app:dev')).toBe('dev');
    expect(refNameOf('localhost:5000/app')).toBe('latest');
  });

  it('index.json and oci-layout have skopeo 1.9’s exact bytes', () => {
    const d = 'sha256:' + 'a'.repeat(64);
    expect(buildLayoutIndex(d, 1948, 'v1').toString()).toBe(
      `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${d}","size":1948,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`,
    );
    expect(OCI_LAYOUT_FILE.toString()).toBe('{"imageLayoutVersion": "1.0.0"}');
  });

  it('tar headers are one block whatever the size (base-256 above 8 GiB), with valid checksums', () => {
    const small = ociFileHeader('blobs/sha256/' + 'b'.repeat(64), 1234);
    expect(small.length).toBe(512);
    expect(checksumOk(small)).toBe(true);
    expect(parseInt(small.toString('latin1', 124, 135), 8)).toBe(1234);
    const big = 10 * 1024 ** 3;
    const h = ociFileHeader('blobs/sha256/' + 'c'.repeat(64), big);
    expect(h.length).toBe(512);
    expect(h[124]).toBe(0x80);
    expect(Number(h.subarray(125, 136).reduce((n, b) => (n << 8n) + BigInt(b), 0n))).toBe(big);
    expect(checksumOk(h)).toBe(true);
    const d = ociDirHeader('blobs');
    expect(d.toString('latin1', 0, 6)).toBe('blobs/');
    expect(d[156]).toBe(0x35);
    expect(checksumOk(d)).toBe(true);
  });

  it('oci-archive: back-patched headers (seekable) and spooled blobs (pipe) give the same bytes', async () => {
    const seek = new MemorySink(true);
    const pipe = new MemorySink(false);
    expect(pipe.patch).toBeUndefined();
    await writeBlobs(new TarTarget(seek, 'mem'));
    await writeBlobs(new TarTarget(pipe, 'mem'));
    expect(seek.buf.equals(pipe.buf)).toBe(true);
    expect(seek.buf.length % 512).toBe(0);
    // the first blob's header (after the two directory entries) names its digest and size
    const h = seek.buf.subarray(1024, 1536);
    expect(h.toString('latin1', 0, 77)).toBe('blobs/sha256/' + sha256Digest('first blob').slice(7));
    expect(parseInt(h.toString('latin1', 124, 135), 8)).toBe(10);
    expect(checksumOk(h)).toBe(true);
  });

  it('directory target: everything appears at once on commit; abort and existing targets leave things untouched', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nixreg-oci-unit-'));
    try {
      const dir = join(tmp, 'layout');
      const t = await DirTarget.open(dir);
      expect(existsSync(dir)).toBe(false);
      await writeBlobs(t);
      expect(readdirSync(join(dir, 'blobs/sha256')).sort()).toEqual(
        [sha256Digest('cfg'), sha256Digest('first blob'), sha256Digest(Buffer.alloc(1000, 7))].map((d) => d.slice(7)).sort(),
      );
      expect(readFileSync(join(dir, 'blobs/sha256', sha256Digest('first blob').slice(7))).toString()).toBe('first blob');
      // an existing layout is added to in place (as skopeo's oci:DIR:TAG), without --force
      const again = await DirTarget.open(dir);
      const w = await again.beginBlob();
      await w.write(Buffer.from('partial'));
      await again.abort();
      expect(readdirSync(tmp)).toEqual(['layout']);
      expect(existsSync(join(dir, 'oci-layout'))).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a layer that fails mid-way aborts the layout: no directory is left', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nixreg-oci-unit-'));
    try {
      const failing = Readable.from(
        (async function* () {
          yield Buffer.alloc(512);
          throw new Error('disk on fire');
        })(),
      );
      const img = {
        repoTag: 'x:1',
        layers: [{ kind: 'customisation', paths: ['/nix/store/x'], size: 1024, open: () => failing, source: { file: 'x' } }],
      } as unknown as PreparedImage;
      const dir = join(tmp, 'layout');
      await expect(writeOciImage(img, await DirTarget.open(dir))).rejects.toThrow(/disk on fire/);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('OCI-layout sink: layers whose properties are known only once streamed', () => {
  const tarBytes = Buffer.alloc(4096, 3);
  const counted = () => {
    const layer: StreamedLayer & { opened: number } = {
      opened: 0,
      what: 'layer 1 (/nix/store/x)',
      open() {
        layer.opened++;
        return Readable.from([tarBytes.subarray(0, 1000), tarBytes.subarray(1000)]);
      },
    };
    return layer;
  };

  it('fills in diffID, size and the stored blob as the layer streams, generating it once', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nixreg-oci-unit-'));
    try {
      const layer = counted();
      expect(layer.diffID).toBeUndefined();
      const dir = join(tmp, 'layout');
      const top = await writeLayoutTarget(await DirTarget.open(dir), 'v1', {}, async (w: LayoutImageWriter) => {
        const stored = await w.writeStreamedLayer(layer, 'gzip');
        const config = await w.putConfig(Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [layer.diffID] } })));
        const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [stored] }));
        return (await w.putManifest(manifest)).manifest;
      });
      expect(layer.opened).toBe(1);
      expect(layer.diffID).toBe(sha256Digest(tarBytes));
      expect(layer.size).toBe(tarBytes.length);
      expect(layer.stored?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
      const blob = readFileSync(join(dir, 'blobs/sha256', layer.stored!.digest.slice(7)));
      expect(sha256Digest(blob)).toBe(layer.stored!.digest);
      expect(blob.length).toBe(layer.stored!.size);
      expect(gunzipSync(blob).equals(tarBytes)).toBe(true);
      expect(readFileSync(join(dir, 'index.json')).equals(buildLayoutIndex(top.digest, top.size, 'v1'))).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a diffID or size known beforehand that the bytes do not match is an integrity error, and no layout is left', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nixreg-oci-unit-'));
    try {
      for (const wrong of [{ diffID: sha256Digest('other') }, { size: tarBytes.length + 1 }]) {
        const layer = Object.assign(counted(), wrong);
        const dir = join(tmp, 'layout');
        const run = writeLayoutTarget(await DirTarget.open(dir), 'v1', {}, async (w) => w.writeStreamedLayer(layer, 'zstd'));
        await expect(run).rejects.toMatchObject({ code: 'E_INTEGRITY', message: expect.stringMatching(/^layer 1 \(\/nix\/store\/x\)/) });
        expect(layer.opened).toBe(1);
        expect(readdirSync(tmp)).toEqual([]);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('whole-archive compression', () => {
  const collect = async (kind: 'gz' | 'zstd' | 'none', data: Buffer) => {
    const parts: Buffer[] = [];
    const out = new Writable({
      write(c, _e, cb) {
        parts.push(c);
        cb();
      },
    });
    const c = compressArchiveStream(kind, out);
    for (let i = 0; i < data.length; i += 4096) c.input.write(data.subarray(i, i + 4096));
    c.input.end();
    await c.done;
    return Buffer.concat(parts);
  };
  const data = Buffer.concat(Array.from({ length: 200 }, (_, i) => Buffer.from(`line ${i} of a tar-ish payload\n`.repeat(20))));

  it('gz: deterministic, fixed header, round-trips', async () => {
    const a = await collect('gz', data);
    const b = await collect('gz', data);
    expect(a.equals(b)).toBe(true);
    expect(a.subarray(0, 10).equals(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]) /* XFL 4: level 1 */)).toBe(true);
    expect(gunzipSync(a).equals(data)).toBe(true);
  });

  it('zstd: zstd frame magic; none: the bytes as they are', async () => {
    const z = await collect('zstd', data);
    expect(z.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(z.length).toBeLessThan(data.length);
    expect((await collect('none', data)).equals(data)).toBe(true);
  });

  it('flag parsing', () => {
    expect(parseArchiveCompression(undefined)).toBe('none');
    expect(parseArchiveCompression('gzip')).toBe('gz');
    expect(parseArchiveCompression('zstd')).toBe('zstd');
    expect(() => parseArchiveCompression('bzip2')).toThrow(/--compress must be/);
  });
});
