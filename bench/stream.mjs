#!/usr/bin/env node
// Benchmark of `nixreg stream` (not part of npm test). Builds ~BENCH_MB MiB (default 1024) of store-like files in
// ~100 store paths under a temp --store-root, streams the image cold and warm (digest cache), to a pipe and to a
// file, and compares with the floor `tar -cf - <paths> | sha256sum` over the same tree.
// Usage: npm run -s build && BENCH_MB=256 node bench/stream.mjs
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const MB = Number(process.env.BENCH_MB ?? 1024);
const PATHS = Number(process.env.BENCH_PATHS ?? 100);
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'nixreg.js');
const work = mkdtempSync(join(tmpdir(), 'nixreg-bench-stream-'));
const root = join(work, 'root');
const store = join(root, 'nix', 'store');
mkdirSync(store, { recursive: true });

// --- the tree: per path a couple of big files and many small ones, random content (incompressible, no dedup)
const pool = randomBytes(32 << 20);
let poolOff = 0;
const take = (n) => {
  if (poolOff + n > pool.length) poolOff = (poolOff * 7 + 4093) % (pool.length - n);
  const b = Buffer.from(pool.subarray(poolOff, poolOff + n));
  b.writeUInt32LE(poolOff, 0); // make every file distinct
  poolOff += n;
  return b;
};
const perPath = Math.floor((MB << 20) / PATHS);
const storePaths = [];
let totalBytes = 0;
let files = 0;
for (let i = 0; i < PATHS; i++) {
  const hash = createHash('sha256').update(String(i)).digest('hex').slice(0, 32).replace(/[eotu]/g, 'a');
  const sp = `/nix/store/${hash}-bench-pkg-${i}`;
  const dir = join(root, sp);
  let left = perPath;
  let k = 0;
  for (const sub of ['bin', 'lib', 'share/doc', 'share/data']) mkdirSync(join(dir, sub), { recursive: true });
  while (left > 0) {
    const size = Math.min(left, k % 40 === 39 ? 4 << 20 : 1024 + ((k * 7919) % (64 << 10)));
    const sub = ['bin', 'lib', 'share/doc', 'share/data'][k % 4];
    writeFileSync(join(dir, sub, `file-${k}.bin`), take(size), { mode: k % 4 === 0 ? 0o555 : 0o444 });
    left -= size;
    totalBytes += size;
    files++;
    k++;
  }
  storePaths.push(sp);
}
const cust = '/nix/store/00000000000000000000000000000000-bench-customisation-layer';
mkdirSync(join(root, cust), { recursive: true });
const emptyTar = Buffer.alloc(10240);
writeFileSync(join(root, cust, 'layer.tar'), emptyTar);
writeFileSync(join(root, cust, 'checksum'), createHash('sha256').update(emptyTar).digest('hex') + '\n');
const layers = [];
for (let i = 0; i < storePaths.length; i += 2) layers.push(storePaths.slice(i, i + 2));
const conf = {
  architecture: 'amd64', config: {}, os: 'linux', variant: '', store_dir: '/nix/store', from_image: null,
  store_layers: layers, customisation_layer: cust, repo_tag: 'bench:latest',
  created: '1970-01-01T00:00:01+00:00', mtime: '1970-01-01T00:00:01+00:00', uid: '0', gid: '0', uname: 'root', gname: 'root',
};
const confFile = join(work, 'conf.json');
writeFileSync(confFile, JSON.stringify(conf, null, 2));
console.log(`tree: ${storePaths.length} store paths, ${files} files, ${(totalBytes / 2 ** 20).toFixed(0)} MiB, ${layers.length} layers`);

// --- runs (shell pipelines; /usr/bin/time -f %M gives the peak RSS of the measured command)
const cacheDir = join(work, 'cache');
const sh = (cmd) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, XDG_CACHE_HOME: cacheDir }, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd}\n${r.stderr}`);
  let rss;
  try {
    rss = /RSS=(\d+)/.exec(readFileSync(rssFile, 'utf8'))?.[1];
    rmSync(rssFile);
  } catch {}
  return { s, out: r.stdout.trim().split(/\s+/)[0], rssMiB: rss ? (Number(rss) / 1024).toFixed(0) : '?' };
};
const rssFile = join(work, 'rss');
const T = `/usr/bin/time -f RSS=%M -o ${rssFile}`;
const nixreg = `${T} node ${BIN} stream ${confFile} --store-root ${root}`;
const paths = storePaths.map((p) => p.slice(1)).join(' ');
sh(`cat $(find ${root} -type f) > /dev/null`); // warm the page cache: we measure CPU/pipeline, not the disk
const rows = [];
const row = (name, r) => {
  rows.push({ name, ...r });
  console.log(`${name.padEnd(44)} ${r.s.toFixed(2).padStart(7)} s ${((totalBytes / 2 ** 20) / r.s).toFixed(0).padStart(6)} MiB/s  peak RSS ${r.rssMiB} MiB`);
};
row('floor: tar -cf - | sha256sum', sh(`${T} tar -C ${root} -cf - ${paths} | sha256sum`));
row('floor: tar -cf - | cat >/dev/null (no hashing)', sh(`${T} tar -C ${root} -cf - ${paths} | cat >/dev/null`));
rmSync(cacheDir, { recursive: true, force: true });
const cold = sh(`${nixreg} 2>/dev/null | sha256sum`);
row('nixreg stream | sha256sum (cold cache)', cold);
const warm = sh(`${nixreg} 2>/dev/null | sha256sum`);
row('nixreg stream | sha256sum (warm cache)', warm);
row('nixreg stream | cat >/dev/null (warm cache)', sh(`${nixreg} 2>/dev/null | cat >/dev/null`));
const nocache = sh(`${nixreg} --no-cache 2>/dev/null | sha256sum`);
row('nixreg stream --no-cache | sha256sum', nocache);
rmSync(cacheDir, { recursive: true, force: true });
const out = join(work, 'out.tar');
const file = sh(`${nixreg} -o ${out} 2>/dev/null`);
row('nixreg stream -o FILE (cold cache, 1 pass)', file);
row('floor: tar -cf FILE', sh(`${T} tar -C ${root} -cf ${join(work, 'floor.tar')} ${paths}`));
const fileSum = sh(`sha256sum ${out}`).out;
if (new Set([cold.out, warm.out, nocache.out, fileSum]).size !== 1) throw new Error('outputs differ between runs!');
console.log(`all nixreg outputs identical: sha256 ${cold.out}`);
rmSync(work, { recursive: true, force: true });
