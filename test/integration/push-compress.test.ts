import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { codecId, compressorStages, type PushCompression } from '../../src/compression/compress.js';

// The compressed digest of a layer must depend on its bytes only: not on the run, the machine's OS byte, or how
// the generator happened to chunk the tar.
const data = Buffer.concat(
  Array.from({ length: 64 }, (_, i) => Buffer.concat([createHash('sha256').update(`x${i}`).digest(), Buffer.from(`line ${i % 7} of some text\n`.repeat(200))])),
);

async function compress(kind: PushCompression, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline([
    Readable.from(chunks, { objectMode: false }),
    ...compressorStages(kind),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(Buffer.from(c));
        cb();
      },
    }),
  ]);
  return Buffer.concat(out);
}

const split = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

describe('deterministic layer compression', () => {
  it('gzip: fixed 10-byte header (no name, mtime 0, OS 255) and identical bytes for any chunking', async () => {
    const whole = await compress('gzip', [data]);
    expect(whole.subarray(0, 10).equals(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x04 /* XFL: level 1 */, 0xff]))).toBe(true);
    expect(gunzipSync(whole).equals(data)).toBe(true);
    for (const size of [7, 511, 4096, 65536 + 3]) expect((await compress('gzip', split(data, size))).equals(whole)).toBe(true);
    expect((await compress('gzip', [data])).equals(whole)).toBe(true);
  });

  it('zstd: identical bytes for any chunking, decodes back with the zstd CLI', async () => {
    const whole = await compress('zstd', [data]);
    expect(whole.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: whole }).equals(data)).toBe(true);
    for (const size of [777, 65536]) expect((await compress('zstd', split(data, size))).equals(whole)).toBe(true);
  });

  it('none: no stage; codec ids keep levels apart', () => {
    expect(compressorStages('none')).toEqual([]);
    expect([codecId('gzip'), codecId('gzip', 6), codecId('gzip', 1), codecId('zstd', 3), codecId('zstd', 19), codecId('none', 5)]).toEqual([
      'gzip-1-zlib',
      'gzip-6-zlib',
      'gzip-1-zlib',
      'zstd-3-frames4m',
      'zstd-19-frames4m',
      'none',
    ]);
  });
});
