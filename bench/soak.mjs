#!/usr/bin/env node
// Resilience soak: the long version of test/resilience. For each fault kind of the mock registry at a
// per-request rate (default 20%), RUNS pulls (and pushes) with fresh seeds; prints a table of fault kind, runs, ok,
// identical, faults injected, retries (+ blob resumes), bytes re-fetched (or re-sent) and wall time.
//
//   npx tsc -p tsconfig.json && node bench/soak.mjs [--runs 50] [--rate 0.2] [--only pull|push]
//
// "identical": the pull wrote the fault-free archive byte for byte; the push produced the fault-free manifest
// digest, the repository holds exactly its blobs, no upload session is left open, and pulling it back gives the
// fault-free archive. "re-fetched": blob bytes served beyond a fault-free pull (0 = every interruption resumed
// where it stopped); "re-sent": upload bytes received beyond a fault-free push (layers regenerated after a failed
// PATCH). Backoff and timeouts are shortened (5 ms first retry, 400 ms read timeout) so stalls cost seconds.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { startRegistry } from '../dist/mock-registry/index.js';
import { PULL_FAULTS, PUSH_FAULTS } from '../dist/mock-registry/faults.js';
import { pullImage } from '../dist/src/image/pull.js';
import { pushConf } from '../dist/src/sink/registry/push-conf.js';
import { goTarFile, TAR_TRAILER } from '../dist/src/tar/go-ustar.js';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '50' }, rate: { type: 'string', default: '0.2' }, only: { type: 'string' } },
});
const RUNS = Number(args.runs);
const RATE = Number(args.rate);
const NET = { retry: { times: 8, baseDelayMs: 5, maxDelayMs: 40 }, timeoutMs: 400 };

const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const prng = (seed, n) => {
  const out = Buffer.alloc(n);
  for (let i = 0, off = 0; off < n; i++) off += createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  return out;
};
const tar = (files) => Buffer.concat([...Object.entries(files).map(([n, d]) => goTarFile(n, Buffer.from(d))), TAR_TRAILER]);

/** Four layers, ~300 KB of gzip blobs (the CI suite's image). */
function soakImage() {
  const tars = [
    tar({ 'bin/hi': prng('hi', 70_000), 'etc/motd': 'hello\n' }),
    tar({ 'usr/share/data.bin': prng('data', 150_000), 'usr/share/empty': '' }),
    tar({ 'etc/plain.conf': 'uncompressed layer\n' }),
    tar({ 'opt/z/zst.bin': prng('zstd', 40_000) }),
  ];
  const blobs = tars.map((t) => gzipSync(t, { level: 1 }));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: tars.map(sha) }, config: {} }));
  const gz = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha(config) },
      layers: blobs.map((b) => ({ mediaType: gz, size: b.length, digest: sha(b) })),
    }),
  );
  return { blobs, config, manifest };
}

/** A streamLayeredImage conf over a synthetic store (3 store layers + customisation layer), for push. */
function soakConf(dir) {
  const storeRoot = join(dir, 'root');
  const path = (h, name) => `/nix/store/${h.padEnd(32, '0')}-${name}`;
  const paths = [path('a1', 'soak-data'), path('b2', 'soak-lib'), path('c3', 'soak-app'), path('d4', 'soak-customisation-layer')];
  paths.slice(0, 3).forEach((p, i) => {
    mkdirSync(join(storeRoot, p, 'share'), { recursive: true });
    writeFileSync(join(storeRoot, p, 'share', 'data.bin'), prng(`store-${i}`, [400_000, 120_000, 60_000][i]));
  });
  // the customisation layer is a prebuilt layer.tar + its sha256 (what streamLayeredImage's builder leaves)
  const custom = tar({ 'etc/soak.conf': 'soak\n' });
  mkdirSync(join(storeRoot, paths[3]), { recursive: true });
  writeFileSync(join(storeRoot, paths[3], 'layer.tar'), custom);
  writeFileSync(join(storeRoot, paths[3], 'checksum'), sha(custom).slice(7) + '\n');
  const conf = {
    architecture: 'amd64',
    config: {},
    os: 'linux',
    variant: '',
    store_dir: '/nix/store',
    from_image: null,
    store_layers: [[paths[0]], [paths[1]], [paths[2]]],
    customisation_layer: paths[3],
    repo_tag: 'soak/app:v1',
    created: '1970-01-01T00:00:01+00:00',
    mtime: '1970-01-01T00:00:01+00:00',
    uid: '0',
    gid: '0',
    uname: 'root',
    gname: 'root',
  };
  const confFile = join(dir, 'conf.json');
  writeFileSync(confFile, JSON.stringify(conf));
  return { confFile, storeRoot };
}

function counter() {
  const c = { retries: 0, lines: [] };
  c.log = (l) => {
    c.lines.push(l);
    if (l.startsWith('retry ') || l.endsWith('; resuming') || l.startsWith('upload failed') || / upload failed \(/.test(l)) c.retries++;
  };
  return c;
}

const pull = (reg, ref, out, log) =>
  pullImage({
    imageName: `${reg.host}/${ref}`,
    output: out,
    platform: { os: 'linux', arch: 'amd64' },
    finalImageName: 'soak/app',
    tlsVerify: false,
    force: true,
    jobs: 4,
    ...NET,
    ...(log ? { log } : {}),
  }).then(() => readFileSync(out));

const rows = [];
const tmp = mkdtempSync(join(tmpdir(), 'nixreg-soak-'));
const reg = await startRegistry();
try {
  const img = soakImage();
  for (const b of [img.config, ...img.blobs]) await reg.putBlob('soak/app', b);
  await reg.putManifest('soak/app', 'v1', img.manifest, 'application/vnd.docker.distribution.manifest.v2+json');
  reg.resetCounters();
  const reference = await pull(reg, 'soak/app:v1', join(tmp, 'reference.tar'));
  const cleanServed = reg.counters.blobBytesServed;

  if (args.only !== 'push') {
    for (const kind of PULL_FAULTS) {
      const row = { op: 'pull', kind: kind.name, runs: RUNS, ok: 0, identical: 0, faults: 0, retries: 0, extraBytes: 0, wall: 0, failures: [] };
      const t0 = Date.now();
      for (let run = 0; run < RUNS; run++) {
        reg.setFaults({ seed: 50_000 + run, rules: kind.rules(RATE, run) });
        reg.resetCounters();
        const c = counter();
        try {
          const got = await pull(reg, 'soak/app:v1', join(tmp, 'pull.tar'), c.log);
          row.ok++;
          if (got.equals(reference)) row.identical++;
        } catch (e) {
          row.failures.push(`run ${run}: ${e.message}`);
        }
        row.faults += reg.counters.faultsInjected;
        row.retries += c.retries;
        row.extraBytes += reg.counters.blobBytesServed - cleanServed;
      }
      row.wall = (Date.now() - t0) / 1000;
      rows.push(row);
      process.stderr.write(`pull ${kind.name}: ${row.ok}/${RUNS}\n`);
    }
  }

  if (args.only !== 'pull') {
    reg.setFaults([]);
    const { confFile, storeRoot } = soakConf(tmp);
    const push = (repo, log) =>
      pushConf({
        confFile,
        destination: `docker://${reg.host}/${repo}:v1`,
        storeRoot,
        tlsVerify: false,
        cache: null,
        compressionLevel: 1,
        jobs: 4,
        ...NET,
        ...(log ? { log } : {}),
      });
    reg.resetCounters();
    const ref = await push('soak/push-reference');
    const cleanSent = reg.counters.patchBytes + reg.counters.putBytes;
    const refPull = await pull(reg, 'soak/push-reference:v1', join(tmp, 'push-reference.tar'));
    const refBlobs = JSON.stringify([ref.config.digest, ...ref.layers.map((l) => l.digest)].sort());
    let repoN = 0;
    for (const kind of PUSH_FAULTS) {
      const row = { op: 'push', kind: kind.name, runs: RUNS, ok: 0, identical: 0, faults: 0, retries: 0, extraBytes: 0, wall: 0, failures: [] };
      let wall = 0;
      for (let run = 0; run < RUNS; run++) {
        const repo = `soak/push-${repoN++}`;
        reg.setFaults({ seed: 60_000 + run, rules: kind.rules(RATE, run) });
        reg.resetCounters();
        const c = counter();
        const t0 = Date.now();
        let r;
        try {
          r = await push(repo, c.log);
          row.ok++;
        } catch (e) {
          row.failures.push(`run ${run}: ${e.message}`);
        }
        wall += Date.now() - t0;
        row.faults += reg.counters.faultsInjected;
        row.retries += c.retries;
        row.extraBytes += reg.counters.patchBytes + reg.counters.putBytes - cleanSent;
        reg.setFaults([]);
        if (r) {
          const exact = r.digest === ref.digest && JSON.stringify(reg.storage.repoBlobs(repo)) === refBlobs && reg.storage.openUploads === 0;
          const back = exact ? await pull(reg, `${repo}:v1`, join(tmp, 'push-back.tar')) : undefined;
          if (back?.equals(refPull)) row.identical++;
        }
      }
      row.wall = wall / 1000; // the pushes only, not the checks
      rows.push(row);
      process.stderr.write(`push ${kind.name}: ${row.ok}/${RUNS}\n`);
    }
  }
} finally {
  await reg.close();
  rmSync(tmp, { recursive: true, force: true });
}

const fmtBytes = (n) => (n === 0 ? '0' : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(2)} MiB`);
console.log(`\nnixreg resilience soak: ${RUNS} runs per fault kind at ${Math.round(RATE * 100)}% per request (mock registry, loopback)\n`);
console.log('| op | fault kind | runs | ok | identical | faults injected | retries + resumes | bytes re-fetched / re-sent | wall time |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.op} | ${r.kind} | ${r.runs} | ${r.ok} | ${r.identical} | ${r.faults} | ${r.retries} | ${fmtBytes(r.extraBytes)} | ${r.wall.toFixed(1)} s |`,
  );
const failures = rows.flatMap((r) => r.failures.map((f) => `${r.op} ${r.kind} ${f}`));
if (failures.length) {
  console.log(`\n${failures.length} failed runs:`);
  for (const f of failures.slice(0, 20)) console.log(`  ${f}`);
  process.exitCode = 1;
}
