import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePythonPaxHeader, endOfArchive } from '../../src/tar/python-pax.js';
import { NIXREG_BIN } from '../helpers/cli.js';

/**
 * `nixreg export` of one layer with 10^6 entries (empty files in 1000 directories) under a memory cap: the bundled
 * CLI runs with a 64 MiB V8 heap and must stay below 192 MiB peak RSS (VmHWM from /proc/self/status, written
 * at exit by a preloaded module), write every entry and leave nothing in its temp dir. Measured here: ~155 MiB,
 * the same as for 10^5 entries (about 60 MiB of it is Node and the CLI, ~40 MiB stream buffers); before the path
 * index could move to disk this layer took 242 MiB and grew with every entry.
 */
const N = 1_000_000;
const PER_DIR = 1000;
const PEAK_RSS_LIMIT_KIB = 192 * 1024;

let tmp: string;
let archive: string;

/** The layer tar, chunk by chunk (a directory header every PER_DIR files). */
function* layerTar(): Generator<Buffer> {
  let off = 0;
  let batch: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    const dir = `usr/share/d${Math.floor(i / PER_DIR)}`;
    if (i % PER_DIR === 0) batch.push(encodePythonPaxHeader({ name: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 0 }));
    batch.push(encodePythonPaxHeader({ name: `${dir}/f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 0 }));
    if (batch.length >= 512) {
      const b = Buffer.concat(batch);
      off += b.length;
      batch = [];
      yield b;
    }
  }
  const b = Buffer.concat(batch);
  yield b;
  yield endOfArchive(off + b.length);
}

const member = (name: string, size: number) => encodePythonPaxHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size });
const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** A gzip'd docker-archive holding the layer (generated twice: once for its diffID and size, once to write). */
async function writeArchive(file: string): Promise<void> {
  const h = createHash('sha256');
  let size = 0;
  for (const b of layerTar()) h.update(b), (size += b.length);
  const diffID = `sha256:${h.digest('hex')}`;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } }));
  const manifest = Buffer.from(JSON.stringify([{ Config: 'config.json', RepoTags: ['big:1'], Layers: ['layer.tar'] }]));
  const gz = createGzip({ level: 1 });
  const done = new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    out.on('finish', resolve).on('error', reject);
    gz.pipe(out);
  });
  const write = (b: Buffer) => (gz.write(b) ? Promise.resolve() : new Promise<void>((r) => gz.once('drain', () => r())));
  let off = 0;
  const put = async (b: Buffer) => ((off += b.length), write(b));
  await put(Buffer.concat([member('manifest.json', manifest.length), manifest, pad(manifest.length)]));
  await put(Buffer.concat([member('config.json', config.length), config, pad(config.length)]));
  await put(member('layer.tar', size));
  for (const b of layerTar()) await put(b);
  await put(pad(size));
  await put(endOfArchive(off));
  gz.end();
  await done;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-export-memory-'));
  archive = join(tmp, 'big.tar.gz');
  await writeArchive(archive);
}, 600_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('export memory', () => {
  it(`exports a ${N}-entry layer with a 64 MiB heap below 192 MiB peak RSS, nothing left in the temp dir`, async () => {
    const hwmFile = join(tmp, 'hwm');
    const preload = join(tmp, 'hwm-preload.mjs');
    writeFileSync(
      preload,
      `import { readFileSync, writeFileSync } from 'node:fs';\n` +
        `process.on('exit', () => writeFileSync(process.env.NIXREG_TEST_HWM_FILE, /VmHWM:\\s*(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]));\n`,
    );
    const runTmp = join(tmp, 'run-tmp');
    mkdirSync(runTmp);
    const run = await new Promise<{ status: number | null; bytes: number; stderr: string }>((resolve, reject) => {
      const p = spawn(process.execPath, ['--max-old-space-size=64', '--import', pathToFileURL(preload).href, NIXREG_BIN, 'export', archive, '-o', '-'], {
        env: { ...process.env, NIXREG_DEBUG: '', TMPDIR: runTmp, NIXREG_TEST_HWM_FILE: hwmFile, XDG_CACHE_HOME: join(tmp, 'cache') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let bytes = 0;
      const err: Buffer[] = [];
      p.stdout.on('data', (d: Buffer) => (bytes += d.length));
      p.stderr.on('data', (d: Buffer) => err.push(d));
      p.on('error', reject);
      p.on('close', (status) => resolve({ status, bytes, stderr: Buffer.concat(err).toString('utf8') }));
    });
    expect(run.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
    expect(run.status).toBe(0);
    // every file and directory header (512 bytes each, empty files) and the end of archive
    const dirs = N / PER_DIR + 2; // usr, usr/share, usr/share/dK
    expect(run.bytes).toBe(endOfArchive((N + dirs) * 512).length + (N + dirs) * 512);
    const peakKiB = Number(readFileSync(hwmFile, 'utf8'));
    console.log(`export of ${N} entries: peak RSS ${Math.round(peakKiB / 1024)} MiB`);
    expect(peakKiB).toBeLessThan(PEAK_RSS_LIMIT_KIB);
    expect(readdirSync(runTmp)).toEqual([]);
  }, 900_000);
});
