#!/usr/bin/env node
// `nixreg push conf.json docker://…` against the path users take today: generate the archive (`nixreg stream` to a
// file, standing in for streamLayeredImage) then `skopeo copy docker-archive:F docker://…`. Cold (empty registry,
// empty caches) and warm (nothing changed, fresh process). Prints wall time and peak RSS of each step.
// Not part of npm test. Usage: npm run build && node bench/push.mjs [totalMiB=1024] [paths=100] [jobs=4]
// (BENCH_PUSH_ARGS="--compression-level 1" adds flags to the nixreg push runs.)
// Needs docker-registry and skopeo; /usr/bin/time (GNU) for peak RSS, else /proc polling.
// Goals (issue 6): warm push of 100 layers < 1 s and >= 10x faster than stream+skopeo; cold <= 0.7x of it; RSS < 150 MB.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MiB, measure, startRegistry } from './lib.mjs';

const [totalMiB = 1024, pathCount = 100, jobs = 4] = process.argv.slice(2).map(Number);
const ROOT = resolve(import.meta.dirname, '..');
const NIXREG = join(ROOT, 'bin/nixreg.js');
const work = mkdtempSync(join(tmpdir(), 'nixreg-bench-push-'));


/** File data like a closure's: half random (compiled code, compressed assets), half text; gzip ratio ~0.55. */
function fileData(seed, size) {
  const out = Buffer.allocUnsafe(size);
  const line = Buffer.from(`${seed}: the quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet 0123456789\n`);
  for (let off = 0; off < size; off += 64 * 1024) {
    const n = Math.min(32 * 1024, size - off);
    randomBytes(n).copy(out, off);
    for (let p = off + n; p < Math.min(off + 64 * 1024, size); p += line.length) line.copy(out, p, 0, Math.min(line.length, size - p));
  }
  return out;
}

/** A generated store: `pathCount` paths, sizes skewed like a real closure (a few big, many small), ~totalMiB. */
function makeStore(root) {
  const store = join(root, 'nix/store');
  mkdirSync(store, { recursive: true });
  const weights = Array.from({ length: pathCount }, (_, i) => 1 / (1 + i) ** 0.8);
  const sum = weights.reduce((a, b) => a + b, 0);
  const paths = [];
  for (let i = 0; i < pathCount; i++) {
    const hash = createHash('sha256').update(`path${i}`).digest('hex').slice(0, 32).replace(/[eotu]/g, 'a');
    const sp = `/nix/store/${hash}-bench-pkg-${i}`;
    const bytes = Math.max(4096, Math.floor((weights[i] / sum) * totalMiB * MiB));
    mkdirSync(join(root, sp, 'bin'), { recursive: true });
    mkdirSync(join(root, sp, 'share/doc'), { recursive: true });
    writeFileSync(join(root, sp, 'share/doc/README'), `package ${i}\n`.repeat(20));
    // a handful of files per path, biggest first
    let left = bytes;
    for (let f = 0; left > 0; f++) {
      const n = f < 4 ? Math.ceil(left / 2) : left;
      writeFileSync(join(root, sp, f === 0 ? 'bin/main' : `share/data-${f}.bin`), fileData(`${i}-${f}`, n));
      left -= n;
    }
    paths.push(sp);
  }
  // customisation layer: an empty tar (two zero blocks, padded to 10240 like GNU tar) + its checksum
  const cust = `/nix/store/${'c'.repeat(32)}-bench-customisation-layer`;
  mkdirSync(join(root, cust), { recursive: true });
  const tar = Buffer.alloc(10240);
  writeFileSync(join(root, cust, 'layer.tar'), tar);
  writeFileSync(join(root, cust, 'checksum'), createHash('sha256').update(tar).digest('hex') + '\n');
  const conf = {
    architecture: 'amd64',
    config: { Cmd: [`${paths[0]}/bin/main`] },
    os: 'linux',
    store_dir: '/nix/store',
    from_image: null,
    store_layers: paths.map((p) => [p]),
    customisation_layer: cust,
    repo_tag: 'bench/app:1',
    created: '1970-01-01T00:00:01+00:00',
    mtime: '1970-01-01T00:00:01+00:00',
    uid: '0',
    gid: '0',
    uname: 'root',
    gname: 'root',
  };
  writeFileSync(join(root, 'conf.json'), JSON.stringify(conf, null, 2));
  return join(root, 'conf.json');
}


const startRegistryIn = (name) => startRegistry(join(work, name));

const registries = [];
try {
  const t0 = Date.now();
  const storeRoot = join(work, 'root');
  const conf = makeStore(storeRoot);
  console.error(`generated ${pathCount} store paths, ~${totalMiB} MiB, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const rows = [];
  const row = (what, m) => {
    rows.push({ what, secs: m.secs, rssMiB: m.rssMiB });
    console.error(`${what.padEnd(48)} ${m.secs.toFixed(2).padStart(8)} s ${m.rssMiB.toFixed(0).padStart(6)} MiB`);
  };

  // nixreg push: cold (empty registry, empty XDG cache), then warm (fresh process, same cache and registry)
  const a = await startRegistryIn('reg-push');
  registries.push(a);
  const env = { ...process.env, XDG_CACHE_HOME: join(work, 'cache-push') };
  // BENCH_PUSH_ARGS: extra push flags, e.g. "--compression-level 1"
  const extra = (process.env.BENCH_PUSH_ARGS ?? '').split(' ').filter(Boolean);
  const pushArgs = [NIXREG, 'push', conf, `docker://${a.host}/bench/app:1`, '--store-root', storeRoot, '--tls-verify=false', '--quiet', '--jobs', String(jobs), ...extra];
  const cold = await measure('node', pushArgs, env);
  row('nixreg push (cold)', cold);
  const warm = await measure('node', pushArgs, env);
  row('nixreg push (warm)', warm);

  // today's path: nixreg stream to a file, then skopeo copy docker-archive → registry
  const b = await startRegistryIn('reg-skopeo');
  registries.push(b);
  const streamEnv = { ...process.env, XDG_CACHE_HOME: join(work, 'cache-stream') };
  const archive = join(work, 'image.tar');
  const streamArgs = [NIXREG, 'stream', conf, '--store-root', storeRoot, '-o', archive, '--force'];
  const skopeoArgs = ['copy', '--quiet', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${b.host}/bench/app:1`];
  const s1 = await measure('node', streamArgs, streamEnv);
  row('nixreg stream -o file (cold)', s1);
  const k1 = await measure('skopeo', skopeoArgs);
  row('skopeo copy docker-archive → registry (cold)', k1);
  const s2 = await measure('node', streamArgs, streamEnv);
  row('nixreg stream -o file (warm)', s2);
  const k2 = await measure('skopeo', skopeoArgs);
  row('skopeo copy docker-archive → registry (warm)', k2);

  const baseCold = s1.secs + k1.secs;
  const baseWarm = s2.secs + k2.secs;
  console.error('');
  console.error(`cold: push ${cold.secs.toFixed(2)} s vs stream+skopeo ${baseCold.toFixed(2)} s → ratio ${(cold.secs / baseCold).toFixed(2)} (goal <= 0.7)`);
  console.error(`warm: push ${warm.secs.toFixed(2)} s vs stream+skopeo ${baseWarm.toFixed(2)} s → ${(baseWarm / warm.secs).toFixed(1)}x faster (goal >= 10x, < 1 s)`);
  console.error(`peak RSS of nixreg push: ${Math.max(cold.rssMiB, warm.rssMiB).toFixed(0)} MiB (goal < 150 MB)`);
  process.stdout.write(JSON.stringify({ totalMiB, pathCount, jobs, rows, coldRatio: cold.secs / baseCold, warmSpeedup: baseWarm / warm.secs }) + '\n');
} finally {
  for (const r of registries) await r.stop();
  rmSync(work, { recursive: true, force: true });
}
