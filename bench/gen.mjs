// Deterministic test data for the benchmark harness: a registry image (gzip layers of realistic content) and a
// Nix-like closure (store paths under a temporary store root + a streamLayeredImage conf). Same sizes and seeds
// give the same bytes on every machine, so runs and machines compare.
//
// Content mix: ~35% many small text-like files, ~55% large binaries of moderate entropy (they gzip to
// roughly half), ~10% incompressible. The pseudo-random source is AES-128-CTR over zeros: deterministic, and fast
// enough (GB/s) that generating 1.5 GiB is bounded by gzip and the disk, not by the generator.
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export const MiB = 1 << 20;

/** A seeded byte source: `next(n)` returns the next n pseudo-random bytes (a fresh Buffer). */
export function prng(seed) {
  const key = createHash('sha256').update(`nixreg-bench:${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return { next: (n) => cipher.update(Buffer.alloc(n)) };
}

const WORDS = (
  'the of and to in is for on that by this with you it not or be are from at as your all have new more an was we ' +
  'will home can us about if page my has search free but our one other do no information time they site he up may what ' +
  'which their news out use any there see only so his when contact here business who web also now help get pm view online ' +
  'function return const let var import export class struct void int char static inline include define endif license ' +
  'copyright permission software warranty merchantability fitness particular purpose /nix/store lib share bin usr etc'
).split(' ');

/** A text pool (words, lines, indentation) that text files are cut from; 4 MiB so gzip's 32 KiB window rarely sees repeats. */
function textPool(rand) {
  const r = rand.next(4 * MiB);
  const parts = [];
  let len = 0;
  for (let i = 0; len < 4 * MiB; i++) {
    const w = WORDS[r[i % r.length] % WORDS.length];
    const sep = r[(i * 7 + 3) % r.length] % 12 === 0 ? '\n' + ' '.repeat(r[(i * 13) % r.length] % 8) : ' ';
    parts.push(w, sep);
    len += w.length + sep.length;
  }
  return Buffer.from(parts.join('')).subarray(0, 4 * MiB);
}

/** Kinds of file data. `moderate`: low nibbles and runs of a byte — compresses to about half, like compiled code. */
function fileData(rand, pool, kind, size) {
  if (kind === 'random') return rand.next(size);
  if (kind === 'text') {
    const off = rand.next(4).readUInt32LE(0) % (pool.length - size);
    return Buffer.from(pool.subarray(off, off + size));
  }
  const b = rand.next(size + ((4 - (size % 4)) % 4));
  const u32 = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
  for (let i = 0; i < u32.length; i += 1024) {
    const end = Math.min(u32.length, i + 1024);
    const mode = u32[i] % 4; // per 4 KiB block: 2 of 4 nibble-masked, 1 zero run, 1 7-bit
    const mask = mode < 2 ? 0x0f0f0f0f : mode === 2 ? 0 : 0x7f7f7f7f;
    for (let j = i; j < end; j++) u32[j] &= mask;
  }
  return b.subarray(0, size);
}

/** File plan of one layer or store path: [name, kind, size, mode] totalling about `bytes`. Deterministic. */
function planFiles(rand, prefix, bytes) {
  const files = [];
  const r = () => rand.next(4).readUInt32LE(0);
  const add = (name, kind, size, mode = 0o644) => (files.push([name, kind, size, mode]), size);
  let left = Math.floor(bytes * 0.1);
  for (let k = 0; left > 0; k++) left -= add(`${prefix}share/data/blob-${k}.bin`, 'random', Math.min(left, 4 * MiB));
  left = Math.floor(bytes * 0.55);
  for (let k = 0; left > 0; k++) left -= add(`${prefix}lib/lib${k}.so`, 'moderate', Math.min(left, MiB + (r() % (6 * MiB))), 0o755);
  left = bytes - files.reduce((s, f) => s + f[2], 0);
  for (let k = 0; left > 0; k++) left -= add(`${prefix}share/doc/d${k % 16}/f${k}.txt`, 'text', Math.min(left, 512 + (r() % (16 << 10))));
  return files;
}

function ustarHeader(name, size, mode, type = '0') {
  const b = Buffer.alloc(512);
  b.write(name, 0);
  b.write(mode.toString(8).padStart(7, '0') + '\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(size.toString(8).padStart(11, '0') + '\0', 124);
  b.write('00000000001\0', 136);
  b.fill(0x20, 148, 156);
  b.write(type, 156);
  b.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return b;
}

function* layerTar(seed, bytes) {
  const rand = prng(`layer-${seed}`);
  const pool = textPool(rand);
  const dirs = new Set();
  for (const [name, kind, size, mode] of planFiles(rand, `opt/app${seed}/`, bytes)) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/') + '/';
      if (!dirs.has(d)) dirs.add(d), yield ustarHeader(d, 0, 0o755, '5');
    }
    yield ustarHeader(name, size, mode);
    yield fileData(rand, pool, kind, size);
    if (size % 512) yield Buffer.alloc(512 - (size % 512));
  }
  yield Buffer.alloc(1024);
}

const tap = (hash, counter) =>
  new Transform({
    transform(c, _e, cb) {
      hash.update(c);
      counter.n += c.length;
      cb(null, c);
    },
  });

/** Writes layer `seed` gzipped (level 6, like docker/skopeo) to `file`; returns digest, diffID and both sizes. */
export async function makeLayer(file, seed, bytes) {
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  const u = { n: 0 };
  const c = { n: 0 };
  await pipeline(Readable.from(layerTar(seed, bytes)), tap(diff, u), createGzip({ level: 6 }), tap(blob, c), createWriteStream(file));
  return { file, diffID: `sha256:${diff.digest('hex')}`, digest: `sha256:${blob.digest('hex')}`, size: c.n, usize: u.n };
}

/** The image: `layerCount` gzip layer files in `dir` (two generated at a time: zlib runs on the thread pool). */
export async function makeImageLayers(dir, totalBytes, layerCount) {
  const per = Math.floor(totalBytes / layerCount);
  const layers = new Array(layerCount);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < layerCount; i = next++) layers[i] = await makeLayer(join(dir, `layer-${i}.tar.gz`), i, per);
  };
  await Promise.all([worker(), worker()]);
  return layers;
}

/**
 * A closure of `pathCount` store paths under `root`/nix/store, sizes skewed like a real closure (a few big, many
 * small), about `totalBytes` in all; and a streamLayeredImage conf with one store path per layer.
 * Returns { conf, storePaths, files, bytes }.
 */
export function makeClosure(root, totalBytes, pathCount) {
  mkdirSync(join(root, 'nix/store'), { recursive: true });
  const weights = Array.from({ length: pathCount }, (_, i) => 1 / (1 + i) ** 0.8);
  const sum = weights.reduce((a, b) => a + b, 0);
  const storePaths = [];
  let files = 0;
  let bytes = 0;
  for (let i = 0; i < pathCount; i++) {
    const rand = prng(`path-${i}`);
    const pool = i === 0 || i % 8 === 0 ? textPool(rand) : storePaths.pool;
    storePaths.pool = pool;
    const hash = createHash('sha256')
      .update(`path${i}`)
      .digest('hex')
      .slice(0, 32)
      .replace(/[eotu]/g, 'a');
    const sp = `/nix/store/${hash}-bench-pkg-${i}`;
    const size = Math.max(8192, Math.floor((weights[i] / sum) * totalBytes));
    for (const [name, kind, n, mode] of planFiles(rand, '', size)) {
      const f = join(root, sp, name);
      mkdirSync(join(f, '..'), { recursive: true });
      writeFileSync(f, fileData(rand, pool, kind, n), { mode: mode & 0o555 });
      files++;
      bytes += n;
    }
    storePaths.push(sp);
  }
  delete storePaths.pool;
  // customisation layer: an empty tar (two zero blocks padded to 10240 like GNU tar) and its checksum
  const cust = `/nix/store/${'c'.repeat(32)}-bench-customisation-layer`;
  mkdirSync(join(root, cust), { recursive: true });
  const tar = Buffer.alloc(10240);
  writeFileSync(join(root, cust, 'layer.tar'), tar);
  writeFileSync(join(root, cust, 'checksum'), createHash('sha256').update(tar).digest('hex') + '\n');
  const conf = {
    architecture: 'amd64',
    config: { Cmd: [`${storePaths[0]}/lib/lib0.so`] },
    os: 'linux',
    store_dir: '/nix/store',
    from_image: null,
    store_layers: storePaths.map((p) => [p]),
    customisation_layer: cust,
    repo_tag: 'bench/app:1',
    created: '1970-01-01T00:00:01+00:00',
    mtime: '1970-01-01T00:00:01+00:00',
    uid: '0',
    gid: '0',
    uname: 'root',
    gname: 'root',
  };
  const confFile = join(root, 'conf.json');
  writeFileSync(confFile, JSON.stringify(conf, null, 2));
  return { conf: confFile, storePaths, files, bytes };
}
