import { describe, expect, test } from 'vitest';
import { createWriteStream, readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { writeDockerArchive, type ArchiveLayer } from '../../src/archive/docker-archive-writer.js';
import { DockerArchiveSink } from '../../src/archive/docker-archive-sink.js';
import { copyImage } from '../../src/image/copy.js';
import type { ImageSource } from '../../src/image/types.js';
import { NixregError, ExitCode } from '../../src/errors.js';
import { compress, sha, layerTar, prettyConfig, type Compression } from '../helpers/images.js';
import { requireTool } from '../helpers/tools.js';

// A tiny image and the archive real skopeo 1.9.3 made of it (pullImage's command line), kept as a fixture.
const FX = join(import.meta.dirname, '../fixtures/docker-archive');
const config = readFileSync(join(FX, 'tiny-config.json'));
const a = readFileSync(join(FX, 'tiny-layer-a.tar'));
const b = readFileSync(join(FX, 'tiny-layer-b.tar'));
const skopeo = readFileSync(join(FX, 'skopeo-tiny.tar'));
const repoTags = [{ name: 'docker.io/test/img', tag: '1.0' }];

class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) {
    this.chunks.push(c);
    setImmediate(cb); // asynchronous, like a real file, so backpressure paths run
  }
  /** End the stream and wait until every queued write has landed. */
  async done(): Promise<Buffer> {
    await new Promise<void>((res) => this.end(res));
    return Buffer.concat(this.chunks);
  }
}

function memorySource(tars: Buffer[], comps: Compression[], cfg = config): ImageSource {
  const blobs = tars.map((t, i) => compress(t, comps[i]!));
  return {
    description: 'test/img@sha256:test',
    indexDigest: null,
    manifestDigest: 'sha256:' + '0'.repeat(64),
    manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length },
    configBytes: cfg,
    layers: blobs.map((bl) => ({ mediaType: 'x', digest: sha(bl), size: bl.length })),
    // chunked in 100-byte pieces so decompression and spooling see many small chunks
    openLayer: async (i) =>
      Readable.from(
        (function* () {
          for (let o = 0; o < blobs[i]!.length; o += 100) yield blobs[i]!.subarray(o, o + 100);
        })(),
      ),
  };
}

describe('docker-archive writer', () => {
  test('writes the same bytes as skopeo for the fixture image', async () => {
    const out = new Collect();
    async function* layers(): AsyncGenerator<ArchiveLayer> {
      for (const t of [a, b]) yield { diffID: sha(t), size: t.length, open: () => Readable.from([t]) };
    }
    const r = await writeDockerArchive(out, { configBytes: config, configDigest: sha(config), diffIDs: [a, b, a].map(sha), layers: layers(), repoTags });
    expect((await out.done()).equals(skopeo)).toBe(true);
    expect(r.size).toBe(skopeo.length);
    expect('sha256:' + r.sha256.toString('hex')).toBe(sha(skopeo));
  });

  test('hash: false writes the same bytes and returns no hash (pull --quiet has no use for it)', async () => {
    const out = new Collect();
    async function* layers(): AsyncGenerator<ArchiveLayer> {
      for (const t of [a, b]) yield { diffID: sha(t), size: t.length, open: () => Readable.from([t]) };
    }
    const r = await writeDockerArchive(out, {
      configBytes: config,
      configDigest: sha(config),
      diffIDs: [a, b, a].map(sha),
      layers: layers(),
      repoTags,
      hash: false,
    });
    expect((await out.done()).equals(skopeo)).toBe(true);
    expect(r).toEqual({ size: skopeo.length, sha256: null });
  });

  test('an output that failed and closed while a layer was still coming: the write rejects with its error, it does not wait forever', async () => {
    // a full disk: the first write fails later, the file stream is destroyed and has closed before the next write
    const output = new Writable({
      highWaterMark: 1 << 20,
      write(_c, _e, cb) {
        setTimeout(() => cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })), 5);
      },
    });
    output.on('error', () => {}); // as the atomic output file does
    async function* layers(): AsyncGenerator<ArchiveLayer> {
      const slow = new PassThrough();
      setTimeout(() => slow.end(a), 100); // arrives after the output closed
      yield { diffID: sha(a), size: a.length, open: () => slow };
    }
    const written = writeDockerArchive(output, { configBytes: config, configDigest: sha(config), diffIDs: [sha(a)], layers: layers(), repoTags });
    const hung = new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3000));
    expect(
      await Promise.race([
        written.then(
          () => 'resolved',
          (e: Error) => e.message,
        ),
        hung,
      ]),
    ).toMatch(/ENOSPC|closed/);
  });

  test('an image without layers or tags: "Layers":[], "RepoTags":[] and repositories {}', async () => {
    const cfg = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
    const out = new Collect();
    await writeDockerArchive(out, { configBytes: cfg, configDigest: sha(cfg), diffIDs: [], layers: (async function* () {})(), repoTags: [] });
    const bytes = await out.done();
    const s = bytes.toString('latin1');
    expect(s).toContain(`[{"Config":"${sha(cfg).slice(7)}.json","RepoTags":[],"Layers":[]}]`);
    expect(
      bytes
        .subarray(bytes.length - 1024 - 512, bytes.length - 1024)
        .toString('latin1')
        .replace(/\0+$/, ''),
    ).toBe('{}');
    expect(bytes.length).toBe(512 * 2 + 512 * 2 + 512 * 2 + 1024);
  });
});

describe('copy pipeline (in-memory source → docker-archive sink)', () => {
  test.each([
    ['gzip', ['gzip', 'gzip', 'gzip'], undefined],
    ['gzip -1, spooled to files', ['gzip-1', 'gzip-1', 'gzip-1'], 0],
    ['uncompressed + zstd + gzip', ['none', 'zstd', 'gzip'], 0],
  ] as const)('%s → skopeo-identical bytes', async (_n, comps, memLimit) => {
    if (comps.includes('zstd' as never)) requireTool('zstd');
    const spoolBase = mkdtempSync(join(tmpdir(), 'nixreg-spool-test-'));
    try {
      const out = new Collect();
      const src = memorySource([a, b, a], [...comps]);
      const opened: number[] = [];
      const open = src.openLayer;
      const r = await copyImage({ ...src, openLayer: (i) => (opened.push(i), open(i)) }, new DockerArchiveSink(out, repoTags), {
        jobs: 2,
        memLimit,
        tmpDir: spoolBase,
      });
      expect((await out.done()).equals(skopeo)).toBe(true);
      expect(r.size).toBe(skopeo.length);
      expect(opened.sort()).toEqual([0, 1]); // the repeated layer is fetched once
      expect(readdirSync(spoolBase)).toEqual([]); // spool removed
    } finally {
      rmSync(spoolBase, { recursive: true, force: true });
    }
  });

  test('spool files copied into a file output through reused buffers give the bytes of the stream path', async () => {
    // several MiB per layer: the writer's two 1 MiB buffers are refilled many times while earlier writes are in flight
    const big = (n: number, seed: number) => {
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i += 4096) data.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
      return layerTar({ [`blob-${seed}.bin`]: data });
    };
    const tars = [big(3 << 20, 1), big(5 << 20, 2), big((5 << 19) + 123, 3)];
    const cfg = prettyConfig(tars.map(sha));
    const spoolBase = mkdtempSync(join(tmpdir(), 'nixreg-spool-test-'));
    try {
      const viaStream = new Collect();
      await copyImage(memorySource(tars, ['gzip-1', 'gzip-1', 'gzip-1'], cfg), new DockerArchiveSink(viaStream, repoTags), {
        jobs: 2,
        memLimit: 0,
        tmpDir: spoolBase,
      });
      const expected = await viaStream.done();
      const file = join(spoolBase, 'out.tar');
      const out = createWriteStream(file);
      const r = await copyImage(memorySource(tars, ['gzip-1', 'gzip-1', 'gzip-1'], cfg), new DockerArchiveSink(out, repoTags), {
        jobs: 2,
        memLimit: 0,
        tmpDir: spoolBase,
      });
      await new Promise<void>((res) => out.end(res));
      expect(readFileSync(file).equals(expected)).toBe(true);
      expect('sha256:' + r.sha256!.toString('hex')).toBe(sha(expected));
    } finally {
      rmSync(spoolBase, { recursive: true, force: true });
    }
  });

  test('a layer whose bytes do not match rootfs.diff_ids fails with an integrity error naming both', async () => {
    const other = layerTar({ 'etc/c.txt': 'not the layer the config lists\n' });
    const src = memorySource([a, other, a], ['gzip', 'gzip', 'gzip']);
    const err = await copyImage(src, new DockerArchiveSink(new Collect(), repoTags)).catch((e) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect(err.exitCode).toBe(ExitCode.integrity);
    expect(err.message).toContain(sha(other));
    expect(err.message).toContain(sha(b));
    expect(err.message).toContain('rootfs.diff_ids[1]');
  });

  test('the config must list one diff_id per manifest layer', async () => {
    const cfg = prettyConfig([sha(a)]);
    const err = await copyImage(memorySource([a, b], ['gzip', 'gzip'], cfg), new DockerArchiveSink(new Collect(), repoTags)).catch((e) => e);
    expect(err.exitCode).toBe(ExitCode.integrity);
    expect(err.message).toMatch(/2 layers but the config lists 1 diff_ids/);
  });

  test('a failing download ahead of the writer fails the copy and leaves no spool files', async () => {
    const spoolBase = mkdtempSync(join(tmpdir(), 'nixreg-spool-test-'));
    try {
      const src = memorySource([a, b, a], ['gzip', 'gzip', 'gzip']);
      const broken: ImageSource = {
        ...src,
        openLayer: async (i) => {
          if (i === 0) return src.openLayer(0);
          const p = new PassThrough();
          setTimeout(() => p.destroy(new NixregError('blob test: connection reset by peer')), 20);
          return p;
        },
      };
      const err = await copyImage(broken, new DockerArchiveSink(new Collect(), repoTags), { memLimit: 0, tmpDir: spoolBase }).catch((e) => e);
      expect(err.message).toBe('blob test: connection reset by peer');
      expect(readdirSync(spoolBase)).toEqual([]);
    } finally {
      rmSync(spoolBase, { recursive: true, force: true });
    }
  });
});
