import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { pack } from 'tar-stream';
import { decompressByMagic, detectCompression } from '../../src/compression/decompress.js';
import { NixregError } from '../../src/errors.js';
import { requireTool } from '../helpers/tools.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Feed in small irregular chunks so sniffing across chunk boundaries is exercised. */
function chunked(buf: Buffer, size = 100): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

async function makeTar(files: Record<string, Buffer>): Promise<Buffer> {
  const p = pack();
  for (const [name, data] of Object.entries(files)) p.entry({ name, mtime: new Date(0) }, data);
  p.finalize();
  return collect(p as unknown as Readable);
}

const zstd = (data: Buffer, ...args: string[]) => {
  requireTool('zstd');
  return execFileSync('zstd', ['-q', '-c', ...args], { input: data, maxBuffer: 1 << 28 });
};

describe('decompressByMagic', () => {
  const payload = Buffer.concat([Buffer.from('hello layer\n'.repeat(1000)), randomBytes(200_000)]);

  it('gzip, multi-member', async () => {
    const a = payload.subarray(0, 70_000);
    const b = payload.subarray(70_000);
    const gz = Buffer.concat([gzipSync(a), gzipSync(b)]);
    expect(detectCompression(gz)).toBe('gzip');
    expect((await collect(decompressByMagic(chunked(gz, 777)))).equals(payload)).toBe(true);
  });

  it('zstd made by the zstd CLI (single frame, multi-frame, --long)', async () => {
    const z = zstd(payload, '-19');
    expect(detectCompression(z)).toBe('zstd');
    expect((await collect(decompressByMagic(chunked(z, 333)))).equals(payload)).toBe(true);
    const multi = Buffer.concat([zstd(payload.subarray(0, 5000)), zstd(payload.subarray(5000), '--long=27')]);
    expect((await collect(decompressByMagic(chunked(multi, 4096)))).equals(payload)).toBe(true);
  });

  it('plain tar passes through byte-identical; an empty tar and an empty blob too', async () => {
    const tar = await makeTar({ 'a.txt': Buffer.from('a'), 'b/c': randomBytes(3000) });
    expect(detectCompression(tar)).toBe('none');
    expect((await collect(decompressByMagic(chunked(tar, 50)))).equals(tar)).toBe(true);
    const empty = Buffer.alloc(1024);
    expect((await collect(decompressByMagic(chunked(empty)))).equals(empty)).toBe(true);
    expect((await collect(decompressByMagic(Readable.from([], { objectMode: false })))).length).toBe(0);
  });

  it('blobs shorter than the sniff window are not lost (the 32-byte gzip empty layer)', async () => {
    const emptyTar = Buffer.alloc(1024);
    const gz = gzipSync(emptyTar);
    expect(gz.length).toBeLessThan(512);
    expect((await collect(decompressByMagic(chunked(gz, 7)))).equals(emptyTar)).toBe(true);
    expect((await collect(decompressByMagic(Readable.from([gzipSync(Buffer.alloc(0))], { objectMode: false })))).length).toBe(0);
    const z = zstd(Buffer.from('tiny'));
    expect(z.length).toBeLessThan(512);
    expect((await collect(decompressByMagic(chunked(z, 5)))).toString()).toBe('tiny');
  });

  it('v7 tar without ustar magic is recognised by its header checksum', async () => {
    const tar = await makeTar({ x: Buffer.from('x') });
    const v7 = Buffer.from(tar);
    v7.fill(0, 257, 265); // wipe magic+version, fix checksum
    v7.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += v7[i]!;
    v7.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    expect(detectCompression(v7)).toBe('none');
  });

  it.each([
    ['bzip2', Buffer.concat([Buffer.from('BZh91AY&SY'), randomBytes(600)]), /bzip2/],
    ['xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), randomBytes(600)]), /xz/],
    ['junk', Buffer.concat([Buffer.from([0xde, 0xad, 0xbe, 0xef]), Buffer.alloc(600, 1)]), /unknown magic de ad be ef/],
  ])('%s → clear unsupported error', async (_n, data, re) => {
    const err = await collect(decompressByMagic(chunked(data))).catch((e) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect(err.message).toMatch(/unsupported layer compression/);
    expect(err.message).toMatch(re);
  });

  it('corrupt/truncated gzip and zstd fail as stream errors', async () => {
    const gz = gzipSync(payload);
    const e1 = await collect(decompressByMagic(chunked(gz.subarray(0, gz.length - 100), 4096))).catch((e) => e);
    expect(e1).toBeInstanceOf(Error);
    const z = zstd(payload);
    const e2 = await collect(decompressByMagic(chunked(z.subarray(0, z.length - 100), 4096))).catch((e) => e);
    expect(e2).toBeInstanceOf(NixregError);
    expect(e2.message).toMatch(/zstd layer is corrupt or truncated/);
  });

  it('respects backpressure: a paused consumer does not make it buffer the whole input', async () => {
    // ~10:1 compressible: 64 random bytes per KiB. Large enough that the stages' buffers (up to 1 MiB each of
    // decompressed bytes, see decompress.ts) hold well under a quarter of the input.
    const big = Buffer.alloc(48 << 20);
    for (let i = 0; i < big.length; i += 1024) randomBytes(64).copy(big, i);
    const gz = gzipSync(big);
    let pulled = 0;
    const src = new Readable({
      read() {
        if (pulled >= gz.length) return void this.push(null);
        const c = gz.subarray(pulled, pulled + 1024);
        pulled += c.length;
        this.push(c);
      },
    });
    const out = decompressByMagic(src);
    const first = await new Promise<Buffer>((r) => out.once('data', (c) => (out.pause(), r(c as Buffer))));
    expect(first.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(pulled).toBeLessThan(gz.length / 4); // input not drained while the consumer is paused
    expect(gz.length).toBeGreaterThan(2 << 20);
    out.resume();
    const rest = await collect(out);
    expect(Buffer.concat([first, rest]).equals(big)).toBe(true);
  });
});
