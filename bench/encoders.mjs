// Measures the layer compressors push can use, single core, over one generated layer tar of the bench's content
// mix (bench/gen.mjs): MiB/s of input, compressed/input ratio, and whether repeated runs give the same bytes.
// Also a pigz-style parallel deflate prototype (fixed 128 KiB blocks, each deflated with the previous 32 KiB as
// preset dictionary, joined with sync flushes into one gzip member) on 1 and 2 worker threads.
//
//   node bench/encoders.mjs [--mib 128] [--runs 3] [--only NAME-SUBSTRING]   (after `npm run build`)
// The rows "nixreg ..." run the compressors push uses (dist/src/compression/compress.js): gzip through each engine
// that writes the reference bytes (node:zlib, the native encoder, pako), zstd as 4 MiB WebAssembly frames.
//
// Rounds are interleaved (every encoder once per round), so each encoder sees the same machine load; the table
// gives the median of the rounds.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import zlib from 'node:zlib';
import { MiB, makeLayer } from './gen.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SIZE_MIB = arg('mib', 128);
const RUNS = arg('runs', 3);
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : '';
const SLOW_PREFIX_MIB = 32; // zstd -19 runs over this prefix only (it is ~50x slower than -3)

const BLOCK = 128 * 1024;
const DICT = 32 * 1024;

/** Consumes a stream of compressed bytes: counts and hashes them. */
function sink(out) {
  const hash = createHash('sha256');
  out.bytes = 0;
  return new Writable({
    write(chunk, _e, cb) {
      out.bytes += chunk.length;
      hash.update(chunk);
      cb();
    },
    final(cb) {
      out.sha = hash.digest('hex');
      cb();
    },
  });
}

function slices(buf, n = MiB) {
  return Readable.from(
    (function* () {
      for (let o = 0; o < buf.length; o += n) yield buf.subarray(o, o + n);
    })(),
  );
}

/** node:zlib exactly as src/compression/compress.ts configures it. */
async function nodeGzip(buf, level) {
  const out = {};
  const gz = zlib.createGzip({ level, strategy: zlib.constants.Z_DEFAULT_STRATEGY, windowBits: 15, memLevel: 8, chunkSize: 256 * 1024 });
  await pipeline(slices(buf), gz, sink(out));
  return out;
}

/** A CLI compressor reading the tar file on stdin. */
function cli(cmd, args, file) {
  return new Promise((resolve, reject) => {
    const out = {};
    const child = spawn(cmd, args, { stdio: [readFileFd(file), 'pipe', 'inherit'] });
    const s = sink(out);
    child.stdout.pipe(s);
    let exited = null;
    let finished = false;
    const done = () => exited !== null && finished && (exited === 0 ? resolve(out) : reject(new Error(`${cmd} exit ${exited}`)));
    child.on('exit', (code) => {
      exited = code ?? 1;
      done();
    });
    s.on('finish', () => {
      finished = true;
      done();
    });
    child.on('error', reject);
  });
}

const fds = [];
function readFileFd(file) {
  const fd = openSync(file, 'r');
  fds.push(fd);
  return fd;
}

/** Deflates blocks index, index+count, ... of the shared input (worker side of parallelGzip). */
function deflateBlocks({ sab, length, level, index, count }) {
  const buf = Buffer.from(sab, 0, length);
  const n = Math.ceil(length / BLOCK);
  for (let i = index; i < n; i += count) {
    const start = i * BLOCK;
    const opts = { level, windowBits: 15, memLevel: 8, finishFlush: i === n - 1 ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH };
    if (start > 0) opts.dictionary = buf.subarray(start - DICT, start);
    const out = zlib.deflateRawSync(buf.subarray(start, start + BLOCK), opts);
    parentPort.postMessage({ i, out }, [out.buffer]);
  }
  parentPort.close();
}

/**
 * pigz-style: fixed 128 KiB blocks, each raw-deflated with the previous 32 KiB as dictionary and ended by a sync
 * flush (the last by Z_FINISH), joined in order into one gzip member. Block i's bytes depend only on the input and
 * the level, never on which worker ran it, so the output is the same for any worker count.
 */
async function parallelGzip(shared, level, workers, verify = false) {
  const { sab, length } = shared;
  const n = Math.ceil(length / BLOCK);
  const parts = new Array(n);
  await Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { sab, length, level, index, count: workers } });
      w.on('message', ({ i, out }) => (parts[i] = Buffer.from(out.buffer, out.byteOffset, out.byteLength)));
      return new Promise((resolve, reject) => w.on('error', reject).on('exit', resolve));
    }),
  );
  const buf = Buffer.from(sab, 0, length);
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(buf) >>> 0, 0);
  trailer.writeUInt32LE(length % 2 ** 32, 4);
  const whole = Buffer.concat([header, ...parts, trailer]);
  if (verify && !zlib.gunzipSync(whole).equals(buf)) throw new Error('parallel gzip does not round-trip');
  return digestOf(whole);
}

function loadPako() {
  const req = createRequire(import.meta.url);
  return { pako: req('pako'), version: req('pako/package.json').version };
}

const dist = (rel) => import(new URL(`../dist/src/compression/${rel}`, import.meta.url).href);

/** push's compressor for `kind`, with NIXREG_DEFLATE / NIXREG_NO_NATIVE as given (the engine is chosen per call). */
async function nixregCompress(buf, kind, level, env = {}) {
  const { compressorStages } = await dist('compress.js');
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const out = {};
    await pipeline(slices(buf), ...compressorStages(kind, level), sink(out));
    return out;
  } finally {
    for (const k of Object.keys(env))
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'nixreg-encoders-'));
  try {
    const gzFile = join(work, 'layer.tar.gz');
    const tarFile = join(work, 'layer.tar');
    await makeLayer(gzFile, 'encoders', SIZE_MIB * MiB);
    const tar = zlib.gunzipSync(readFileSync(gzFile));
    writeFileSync(tarFile, tar);
    const prefixFile = join(work, 'prefix.tar');
    writeFileSync(prefixFile, tar.subarray(0, SLOW_PREFIX_MIB * MiB));
    const has = (bin) => ['/usr/bin', '/usr/local/bin', '/bin'].some((d) => existsSync(join(d, bin)));
    const pako = loadPako();
    const sab = new SharedArrayBuffer(tar.length);
    tar.copy(Buffer.from(sab));
    const shared = { sab, length: tar.length };

    for (const l of [1, 6]) await parallelGzip(shared, l, 2, true); // round-trip check, outside the timed runs
    const encoders = [];
    for (const l of [1, 3, 6, 9]) encoders.push({ name: `node:zlib gzip ${l}`, input: tar.length, run: () => nodeGzip(tar, l) });
    for (const l of [1, 6])
      for (const w of [1, 2])
        encoders.push({ name: `pigz-style node:zlib ${l}, ${w} worker${w > 1 ? 's' : ''}`, input: tar.length, run: () => parallelGzip(shared, l, w) });
    encoders.push({
      name: `pako ${pako.version} gzip 1, classic hash (the reference)`,
      input: tar.length,
      run: async () => digestOf(pako.pako.gzip(tar, { level: 1, legacyHash: true })),
    });
    encoders.push({ name: `pako ${pako.version} gzip 1, Chromium's hash`, input: tar.length, run: async () => digestOf(pako.pako.gzip(tar, { level: 1 })) });
    const { deflateEngine } = await dist('gzip-encoder.js');
    encoders.push({ name: `nixreg gzip 1 (engine: ${deflateEngine(1)})`, input: tar.length, run: () => nixregCompress(tar, 'gzip', 1) });
    encoders.push({
      name: 'nixreg gzip 1 (engine: pako, NIXREG_DEFLATE=pako)',
      input: tar.length,
      run: () => nixregCompress(tar, 'gzip', 1, { NIXREG_DEFLATE: 'pako' }),
    });
    encoders.push({ name: `nixreg gzip 6 (engine: ${deflateEngine(6)})`, input: tar.length, run: () => nixregCompress(tar, 'gzip', 6) });
    for (const l of [1, 3, 9])
      encoders.push({ name: `nixreg zstd ${l} (4 MiB WebAssembly frames, worker threads)`, input: tar.length, run: () => nixregCompress(tar, 'zstd', l) });
    if (has('gzip'))
      for (const l of [1, 6]) encoders.push({ name: `gzip -${l} (CLI)`, input: tar.length, run: () => cli('gzip', [`-${l}`, '-n', '-c'], tarFile) });
    if (has('pigz')) encoders.push({ name: 'pigz -1 -p 2 (CLI)', input: tar.length, run: () => cli('pigz', ['-1', '-p', '2', '-n', '-c'], tarFile) });
    if (has('zstd')) {
      for (const l of [1, 3, 6, 9])
        encoders.push({ name: `zstd -${l} -T1 (as push)`, input: tar.length, run: () => cli('zstd', [`-${l}`, '-T1', '-q', '-c', '--no-progress'], tarFile) });
      encoders.push({
        name: `zstd -3 -T1 (first ${SLOW_PREFIX_MIB} MiB)`,
        input: SLOW_PREFIX_MIB * MiB,
        run: () => cli('zstd', ['-3', '-T1', '-q', '-c', '--no-progress'], prefixFile),
      });
      encoders.push({
        name: `zstd -19 -T1 (first ${SLOW_PREFIX_MIB} MiB)`,
        input: SLOW_PREFIX_MIB * MiB,
        run: () => cli('zstd', ['-19', '-T1', '-q', '-c', '--no-progress'], prefixFile),
      });
      encoders.push({
        name: 'zstd -3 -T2 (CLI, not used: split-dependent)',
        input: tar.length,
        run: () => cli('zstd', ['-3', '-T2', '-q', '-c', '--no-progress'], tarFile),
      });
    }

    if (ONLY) encoders.splice(0, encoders.length, ...encoders.filter((e) => ONLY.split(',').some((o) => e.name.includes(o))));
    const results = encoders.map(() => ({ secs: [], cpu: [], bytes: 0, shas: new Set() }));
    for (let r = 0; r < RUNS; r++) {
      for (const [i, e] of encoders.entries()) {
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const out = await e.run();
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        const c = process.cpuUsage(c0);
        results[i].secs.push(secs);
        results[i].cpu.push((c.user + c.system) / 1e6);
        results[i].bytes = out.bytes;
        results[i].shas.add(out.sha);
        process.stderr.write(`round ${r + 1}/${RUNS} ${e.name}: ${secs.toFixed(2)} s\n`);
      }
      while (fds.length) closeSync(fds.pop());
    }

    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(`input: ${(tar.length / MiB).toFixed(0)} MiB layer tar (bench/gen.mjs content mix); ${RUNS} interleaved rounds, median`);
    console.log(`node ${process.versions.node}, zlib ${process.versions.zlib}; load average before/after in the caller`);
    console.log('| encoder | MiB/s of input (wall) | CPU s per GiB | ratio | same bytes every run |');
    console.log('| ------- | --------------------- | ------------- | ----- | -------------------- |');
    for (const [i, e] of encoders.entries()) {
      const r = results[i];
      const mibs = e.input / MiB / median(r.secs);
      const cpuPerGiB = e.name.includes('CLI') || e.name.startsWith('zstd') ? '(child)' : ((median(r.cpu) * 1024 * MiB) / e.input).toFixed(1);
      console.log(`| ${e.name} | ${mibs.toFixed(1)} | ${cpuPerGiB} | ${(r.bytes / e.input).toFixed(4)} | ${r.shas.size === 1 ? 'yes' : 'NO'} |`);
    }
    const same = (a, b) => [...results[a].shas][0] === [...results[b].shas][0];
    const idx = (name) => encoders.findIndex((e) => e.name === name);
    for (const l of [1, 6]) {
      const a = idx(`pigz-style node:zlib ${l}, 1 worker`);
      const b = idx(`pigz-style node:zlib ${l}, 2 workers`);
      if (a < 0 || b < 0) continue;
      console.log(`pigz-style level ${l}: 1 vs 2 workers give ${same(a, b) ? 'the same' : 'DIFFERENT'} bytes`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function digestOf(buf) {
  return { bytes: buf.length, sha: createHash('sha256').update(buf).digest('hex') };
}

if (isMainThread) await main();
else deflateBlocks(workerData);
