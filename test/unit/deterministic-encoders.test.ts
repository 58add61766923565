import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import { deflateRaw, gzip as pakoGzip } from 'pako';
import { compressorStages, type PushCompression } from '../../src/compression/compress.js';
import { deflateProbeInput, PROBE_DIGESTS, probeDigest } from '../../src/compression/deflate-probe.js';
import { deflateEngine } from '../../src/compression/gzip-encoder.js';
import { nativeDecoder } from '../../src/native/codecs.js';
import { zstdFrames } from '../helpers/zstd-frames.js';

// The default compressors must give the same bytes for the same nixreg version on every install: gzip = canonical
// zlib as pako 3.0.3 writes it with its classic hash (node:zlib or the native encoder only where they write exactly that), zstd = 4 MiB frames of the pinned WebAssembly zstd.

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** ~10 MiB of a layer-like mix: text, a binary of moderate entropy, incompressible bytes. */
function layerLike(seed: string, mib: number): Buffer {
  const parts: Buffer[] = [];
  let len = 0;
  for (let i = 0; len < mib << 20; i++) {
    const h = createHash('sha256').update(`${seed}${i}`).digest();
    const kind = h[0]! % 3;
    const p =
      kind === 0
        ? Buffer.from(`${h.toString('hex').slice(0, 8)} line ${i % 97} of /nix/store/${h.toString('hex').slice(8, 40)}-pkg\n`.repeat(40))
        : kind === 1
          ? Buffer.from(Array.from({ length: 4096 }, (_, j) => h[j % 32]! & (j % 7 === 0 ? 0xff : 0x0f)))
          : Buffer.concat(Array.from({ length: 64 }, (_, j) => createHash('sha256').update(`${seed}${i}r${j}`).digest()));
    parts.push(p);
    len += p.length;
  }
  return Buffer.concat(parts);
}

async function run(kind: PushCompression, input: Buffer, chunk: number, level?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline([
    Readable.from(
      (function* () {
        for (let o = 0; o < input.length; o += chunk) yield input.subarray(o, o + chunk);
      })(),
    ),
    ...compressorStages(kind, level),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(Buffer.from(c));
        cb();
      },
    }),
  ]);
  return Buffer.concat(out);
}

const withEnv = async <T>(name: string, value: string, fn: () => Promise<T>): Promise<T> => {
  const before = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
};

/** The system zlib (Debian's, canonical) through python3's zlib module: raw deflate of `input`. */
const systemZlib = (input: Buffer, level: number) =>
  execFileSync(
    'python3',
    ['-c', `import sys,zlib; c=zlib.compressobj(${level}, zlib.DEFLATED, -15, 8); sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())`],
    {
      input,
      maxBuffer: 256 << 20,
    },
  );

describe('gzip: canonical zlib bytes (pako 3.0.3, classic hash) on every install', () => {
  it('the probe table is what pako writes at every level, and what the system zlib writes', () => {
    const probe = deflateProbeInput();
    for (let level = 1; level <= 9; level++) {
      expect(probeDigest(deflateRaw(probe, { level, windowBits: 15, memLevel: 8, legacyHash: true })), `level ${level}`).toBe(PROBE_DIGESTS[level]);
      expect(probeDigest(systemZlib(probe, level)), `system zlib, level ${level}`).toBe(PROBE_DIGESTS[level]);
    }
  });

  it("the probe tells another deflate apart: Chromium's hash (pako's default, what official Node builds bundle)", () => {
    const probe = deflateProbeInput();
    for (const level of [1, 6, 9]) expect(probeDigest(deflateRaw(probe, { level })), `level ${level}`).not.toBe(PROBE_DIGESTS[level]);
  });

  it('an engine that fails the probe is never used: the native encoder or pako stands in', () => {
    const probe = deflateProbeInput();
    const nodeWrites = probeDigest(deflateRawSync(probe, { level: 1, windowBits: 15, memLevel: 8 })) === PROBE_DIGESTS[1];
    const engine = deflateEngine(1);
    if (nodeWrites) expect(engine).toBe('node:zlib');
    else expect(engine).toBe(nativeDecoder('deflate') ? 'native' : 'pako');
  });

  it('whichever engine runs, the layer bytes equal pako.gzip with OS byte 255, for any chunking and level', async () => {
    const input = layerLike('gz', 6);
    for (const level of [1, 6]) {
      const reference = Buffer.from(pakoGzip(input, { level, legacyHash: true }));
      reference[9] = 0xff;
      expect(sha(reference.subarray(10, -8)), `system zlib, level ${level}`).toBe(sha(systemZlib(input, level)));
      const auto = await run('gzip', input, 65536, level);
      expect(sha(auto), `engine ${deflateEngine(level)}, level ${level}`).toBe(sha(reference));
      const viaPako = await withEnv('NIXREG_DEFLATE', 'pako', () => run('gzip', input, 777, level));
      expect(sha(viaPako), `pako, level ${level}`).toBe(sha(reference));
      expect(gunzipSync(viaPako).equals(input)).toBe(true);
    }
    expect(await withEnv('NIXREG_DEFLATE', 'pako', async () => deflateEngine(1))).toBe('pako');
  });
});

describe('zstd: frames of the pinned WebAssembly zstd', () => {
  it('bytes are the frames compressed one by one, the same for any chunking; the zstd CLI decodes them', async () => {
    const input = layerLike('zs', 10); // 3 frames: 4 + 4 + 2 MiB
    const { bytes: reference, frames } = await zstdFrames(input);
    expect(frames).toBe(3);
    const whole = await run('zstd', input, 1 << 20);
    expect(sha(whole)).toBe(sha(reference));
    expect(sha(await run('zstd', input, 100_003))).toBe(sha(reference));
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: whole, maxBuffer: 64 << 20 }).equals(input)).toBe(true);
    const level9 = await run('zstd', input.subarray(0, 5 << 20), 1 << 20, 9);
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: level9, maxBuffer: 64 << 20 }).equals(input.subarray(0, 5 << 20))).toBe(true);
  });

  it('an empty input is one empty frame, as the zstd CLI writes for an empty file', async () => {
    const empty = await run('zstd', Buffer.alloc(0), 1);
    expect(empty.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(execFileSync('zstd', ['-d', '-c', '-q'], { input: empty }).length).toBe(0);
  });
});
