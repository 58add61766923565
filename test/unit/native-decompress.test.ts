import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { decodeEach, NativeDecompressStream, nativePump } from '../../src/compression/native-decompress.js';
import { ZstdDecompressStream } from '../../src/compression/decompress.js';
import { NixregError } from '../../src/errors.js';
import { nativeDecoder, type NativeCodecs, type NativeKind } from '../../src/native/codecs.js';
import { requireTool } from '../helpers/tools.js';

/**
 * The native decoders (src/native/codecs.c over libzstd and ISA-L) against the fallbacks (fzstd, node:zlib), byte
 * for byte. Where the machine has a compiler and both libraries (scripts/ensure-system-deps.sh installs them), the
 * build must have produced the addon; without them nixreg uses the fallbacks and these tests check that the
 * fallback is what decodes.
 */
const systemCanBuild = (kind: NativeKind) =>
  spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0 &&
  existsSync(kind === 'zstd' ? '/usr/include/zstd.h' : '/usr/include/isa-l/igzip_lib.h') &&
  process.env.NIXREG_NO_NATIVE !== '1';

const zstd = (data: Buffer, ...args: string[]) => {
  requireTool('zstd');
  return execFileSync('zstd', ['-q', '-c', ...args], { input: data, maxBuffer: 1 << 30 });
};
const gzipCli = (data: Buffer, ...args: string[]) => execFileSync('gzip', ['-c', ...args], { input: data, maxBuffer: 1 << 28 });

/** Writes `input` in pieces of `chunk` bytes (honouring backpressure) and collects what comes out. */
function run(input: Buffer, chunk: number, make: () => Transform): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const t = make();
    const out: Buffer[] = [];
    t.on('data', (c: Buffer) => out.push(c));
    t.on('end', () => resolve(Buffer.concat(out)));
    t.on('error', reject);
    (async () => {
      for (let i = 0; i < input.length && !t.destroyed; i += chunk) if (!t.write(input.subarray(i, i + chunk))) await once(t, 'drain');
      t.end();
    })().catch(reject);
  });
}

const fallback = (kind: NativeKind) => () => (kind === 'gzip' ? createGunzip() : new ZstdDecompressStream());
const native = (kind: NativeKind) => () => {
  const codecs = nativeDecoder(kind)!;
  return new NativeDecompressStream(codecs, kind, (e) => new NixregError(`${kind} layer is corrupt or truncated: ${(e as Error).message}`));
};

// compressible and incompressible stretches, > 1 MiB so outputs span several native output chunks
const payload = Buffer.concat([Buffer.from('layer bytes\n'.repeat(200_000)), randomBytes(1_500_000), Buffer.alloc(3_000_000)]);

const cases: Record<NativeKind, [string, () => Buffer, Buffer][]> = {
  zstd: [
    ['level 3', () => zstd(payload), payload],
    ['level 19, --long=27 (the largest window fzstd decodes)', () => zstd(payload, '-19', '--long=27'), payload],
    ['two frames', () => Buffer.concat([zstd(payload.subarray(0, 70_000)), zstd(payload.subarray(70_000), '-1')]), payload],
    ['tiny', () => zstd(Buffer.from('tiny')), Buffer.from('tiny')],
    ['empty', () => zstd(Buffer.alloc(0)), Buffer.alloc(0)],
  ],
  gzip: [
    ['node:zlib level 6', () => gzipSync(payload), payload],
    ['gzip CLI with a file name and -9', () => gzipCli(payload, '-9', '-N'), payload],
    ['two members', () => Buffer.concat([gzipSync(payload.subarray(0, 70_000)), gzipSync(payload.subarray(70_000), { level: 1 })]), payload],
    ['zero padding after the last member', () => Buffer.concat([gzipSync(payload), Buffer.alloc(4096), Buffer.from('ignored after padding')]), payload],
    ['empty member', () => gzipSync(Buffer.alloc(0)), Buffer.alloc(0)],
  ],
};

describe.each(['zstd', 'gzip'] as const)('%s: native decoder and fallback', (kind) => {
  it('the native decoder is present exactly when this machine can build it', () => {
    expect(!!nativeDecoder(kind)).toBe(systemCanBuild(kind));
  });

  it.each(cases[kind])('%s: same bytes as the fallback, at any input chunking', async (_name, make, expected) => {
    const input = make();
    for (const chunk of [1 << 16, 333]) {
      const want = await run(input, chunk, fallback(kind));
      expect(want.equals(expected)).toBe(true);
      if (!nativeDecoder(kind)) continue;
      const got = await run(input, chunk, native(kind));
      expect(got.length).toBe(want.length);
      expect(got.equals(want)).toBe(true);
    }
  });

  it('truncated, corrupt or followed by garbage: the native decoder fails with one NixregError line', async () => {
    const good = kind === 'zstd' ? zstd(payload) : gzipSync(payload);
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length - 6]! ^= 0xff; // a byte of the last block (zstd -3 writes a content checksum)
    const truncated = good.subarray(0, good.length - 100);
    const bad = [truncated, corrupt, Buffer.concat([good, Buffer.from('garbage that is not a member')])];
    // the fallbacks fail on truncation too (fzstd does not check zstd's content checksum: a corrupt frame can come
    // out as wrong bytes, which the layer's diffID check then rejects)
    await expect(run(truncated, 1 << 16, fallback(kind))).rejects.toThrow();
    for (const input of bad) {
      if (!nativeDecoder(kind)) continue;
      const err = await run(input, 1 << 16, native(kind)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      expect((err as Error).message).toMatch(new RegExp(`^${kind} layer is corrupt or truncated: \\S`));
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

/** decodeEach over `input` fed in pieces of `chunk` bytes; each handed-on piece copied (its buffer is reused). */
async function pumped(kind: NativeKind, input: Buffer, chunk: number, check?: (first: Buffer) => void): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) pieces.push(input.subarray(i, i + chunk));
  const out: Buffer[] = [];
  const wrap = (e: unknown) => new NixregError(`${kind} layer is corrupt or truncated: ${(e as Error).message}`);
  await decodeEach(nativePump(kind)!, kind, Readable.from(pieces), (b) => out.push(Buffer.from(b)), wrap, check);
  return Buffer.concat(out);
}

describe.each(['zstd', 'gzip'] as const)('%s: decodeEach (two reused buffers)', (kind) => {
  it('is offered exactly where the native decoder is', () => {
    expect(!!nativePump(kind)).toBe(!!nativeDecoder(kind));
  });

  it.each(cases[kind])('%s: same bytes as the fallback, at any input chunking', async (_name, make, expected) => {
    if (!nativePump(kind)) return;
    const input = make();
    for (const chunk of [1 << 16, 333, 3 << 20]) expect((await pumped(kind, input, chunk)).equals(expected)).toBe(true);
  });

  it('truncated, corrupt, garbage after the end, a failing input or a refused first chunk: rejected', async () => {
    if (!nativePump(kind)) return;
    const good = kind === 'zstd' ? zstd(payload) : gzipSync(payload);
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length - 6]! ^= 0xff;
    for (const input of [good.subarray(0, good.length - 100), corrupt, Buffer.concat([good, Buffer.from('garbage that is not a member')])]) {
      const err = await pumped(kind, input, 1 << 16).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      expect((err as Error).message).toMatch(new RegExp(`^${kind} layer is corrupt or truncated: \\S`));
    }
    const failing = new Readable({ read() {} });
    failing.push(good.subarray(0, 1 << 16));
    setImmediate(() => failing.destroy(new Error('connection reset')));
    await expect(
      decodeEach(
        nativePump(kind)!,
        kind,
        failing,
        () => {},
        (e) => e as Error,
      ),
    ).rejects.toThrow('connection reset');
    await expect(
      pumped(kind, good, 1 << 16, () => {
        throw new Error('not this kind');
      }),
    ).rejects.toThrow('not this kind');
  });

  it('a reader that returns a promise (a file write) keeps its buffer until it settles; its rejection rejects', async () => {
    if (!nativePump(kind)) return;
    const [, make, expected] = cases[kind][0]!;
    const input = make();
    const wrap = (e: unknown) => e as Error;
    // each piece is copied only after a delay: had the decoder written into it meanwhile, the copy would differ
    const out: Buffer[] = [];
    let settledLate = 0;
    let started = 0;
    await decodeEach(
      nativePump(kind)!,
      kind,
      Readable.from([input]),
      (b) => {
        started++;
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            out.push(Buffer.from(b));
            settledLate++;
            resolve();
          }, 5),
        );
      },
      wrap,
    );
    expect(started).toBeGreaterThan(2); // both buffers were reused
    expect(settledLate).toBe(started); // every write settled before decodeEach resolved
    expect(Buffer.concat(out).equals(expected)).toBe(true);
    await expect(decodeEach(nativePump(kind)!, kind, Readable.from([input]), () => Promise.reject(new Error('ENOSPC: no space left')), wrap)).rejects.toThrow(
      'ENOSPC',
    );
  });
});

describe('native decoder backpressure', () => {
  it('decodes no further while the reader does not read, whatever the ratio (256 MiB of zeros)', async () => {
    const codecs = nativeDecoder('zstd');
    if (!codecs) return void expect(systemCanBuild('zstd')).toBe(false);
    const zeros = Buffer.alloc(256 << 20);
    const z = zstd(zeros, '-1');
    expect(z.length).toBeLessThan(1 << 20);
    // a step is only taken while the reader keeps up: never with more than two steps' output over the buffer's mark
    let steps = 0;
    let completed = 0;
    let overfull = 0;
    let full: (inFlight: number) => void;
    const filled = new Promise<number>((r) => (full = r));
    let idle: (steps: number) => void;
    const stopped = new Promise<number>((r) => (idle = r));
    let t: NativeDecompressStream;
    const watched: NativeCodecs = {
      ...codecs,
      decode: (h, input, offset, maxOut, cb) => {
        steps++;
        if (t.readableLength > t.readableHighWaterMark + (2 << 20)) overfull++;
        codecs.decode(h, input, offset, maxOut, (err, r) => {
          completed++;
          cb(err, r); // pushes the step's output, and starts the next step unless the buffer is full
          if (t.readableLength >= t.readableHighWaterMark) {
            full(steps - completed);
            if (steps === completed) idle(steps);
          }
        });
      },
    };
    t = new NativeDecompressStream(watched, 'zstd', (e) => e as Error);
    t.end(z);
    // nobody has read yet: at the first full buffer at most the one step started below the mark (so decoding
    // overlaps the reader) is still running, and once it is done no other starts
    expect(await filled).toBeLessThanOrEqual(1);
    const stepsWhenFull = await stopped;
    expect(steps).toBe(stepsWhenFull);
    expect(t.readableLength).toBeLessThanOrEqual(t.readableHighWaterMark + (2 << 20));
    let n = 0;
    let nonZero = false;
    for await (const c of t as AsyncIterable<Buffer>) {
      n += c.length;
      if (!nonZero && c.some((b) => b !== 0)) nonZero = true;
    }
    expect(n).toBe(zeros.length);
    expect(nonZero).toBe(false);
    expect(overfull).toBe(0);
    expect(steps).toBeGreaterThan(stepsWhenFull + 100); // the rest came step by step as it was read
  });
});
