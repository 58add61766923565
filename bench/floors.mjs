// The machine's floor per benchmark row: the codec and hash passes the work cannot avoid, each at the best
// single-core speed measured here on the benchmark's own bytes, summed and divided by the cores. A row's
// "× floor" is its wall time over that figure (1.00 = nothing left to gain without a faster codec or more cores).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

const MiB = 1 << 20;
const SAMPLE = 48 * MiB;

/** Best of `n` timings of fn() (seconds). */
function best(n, fn) {
  let b = Infinity;
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return b;
}

/** The native decoders when built (dist/native/codecs.node), run synchronously step by step for timing. */
function nativeInflate(root) {
  const path = join(root, 'dist/native/codecs.node');
  if (!existsSync(path)) return undefined;
  const codecs = createRequire(import.meta.url)(path);
  if (!codecs.kinds.includes('gzip')) return undefined;
  return (gz) =>
    new Promise((resolve, reject) => {
      const h = codecs.open('gzip');
      let offset = 0;
      let n = 0;
      const step = () =>
        codecs.decode(h, gz, offset, 64 * MiB, (err, r) => {
          if (err) return reject(err);
          offset += r[0];
          for (let i = 2; i < r.length; i++) n += r[i].length;
          if (r[1]) return resolve(n);
          step();
        });
      step();
    });
}

/**
 * Speeds in MiB/s (of uncompressed bytes for the codecs): sha256 (node:crypto), inflate (the best of node:zlib
 * and the native ISA-L decoder, on the image's gzip layers), deflate at level 1 (node:zlib, nixreg's push codec,
 * on a tar sample). `gzFiles`: the image's layer files; `tarSample`: a Buffer of layer tar bytes.
 */
export async function measureSpeeds({ root, gzFiles, tarSample }) {
  const speeds = {};
  const data = tarSample ?? Buffer.alloc(SAMPLE, 1);
  speeds.sha256 = data.length / MiB / best(3, () => createHash('sha256').update(data).digest());
  if (gzFiles?.length) {
    const gz = readFileSync(gzFiles[0]);
    const plain = gunzipSync(gz);
    const zlib = plain.length / MiB / best(3, () => gunzipSync(gz));
    speeds.inflateZlib = zlib;
    const native = nativeInflate(root);
    if (native) {
      let b = Infinity;
      for (let i = 0; i < 3; i++) {
        const t = process.hrtime.bigint();
        if ((await native(gz)) !== plain.length) throw new Error('native inflate: wrong length');
        b = Math.min(b, Number(process.hrtime.bigint() - t) / 1e9);
      }
      speeds.inflateNative = plain.length / MiB / b;
    }
    speeds.inflate = Math.max(speeds.inflateZlib, speeds.inflateNative ?? 0);
  }
  const sample = data.subarray(0, Math.min(data.length, 32 * MiB));
  let ratio = 1;
  speeds.deflate1 = sample.length / MiB / best(2, () => (ratio = gzipSync(sample, { level: 1 }).length / sample.length));
  speeds.deflateRatio = ratio;
  speeds.cores = cpus().length;
  return speeds;
}

/**
 * Floor seconds for a row from its passes: [['sha256', bytes], ['inflate', bytes], ...] (undefined when a row
 * has no CPU pass to bound it: its time is round trips and I/O).
 */
export function floorSeconds(passes, speeds) {
  if (!passes?.length) return undefined;
  let s = 0;
  for (const [kind, bytes] of passes) {
    if (!speeds[kind]) return undefined;
    s += bytes / MiB / speeds[kind];
  }
  return s / speeds.cores;
}
