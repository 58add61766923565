#!/usr/bin/env node
// Peak memory and wall time of `nixreg pull` next to skopeo running dockerTools.pullImage's command line, and of
// `nixreg prefetch` next to nix-prefetch-docker's steps (skopeo inspect + skopeo copy + nix-hash --flat), on a
// generated image (default ~512 MiB uncompressed in 8 gzip layers) in a local docker-registry (distribution).
// Not part of npm test. Usage: npm run build && node bench/pull-memory.mjs [totalMiB=512] [layers=8] [jobs=4]
// Needs docker-registry, skopeo and /usr/bin/time (or Linux /proc for the fallback). Target: nixreg peak RSS < 150 MB.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MiB, measure, startRegistry } from './lib.mjs';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';

const [totalMiB = 512, layerCount = 8, jobs = 4] = process.argv.slice(2).map(Number);
const ROOT = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'nixreg-bench-pull-'));


/** A layer tar of `size` bytes of file data: half random, half text, so gzip has realistic work (ratio ~0.55). */
function* layerTar(seed, size) {
  const header = (name, len) => {
    const b = Buffer.alloc(512);
    b.write(name, 0);
    b.write('0000644\0', 100);
    b.write('0000000\0', 108);
    b.write('0000000\0', 116);
    b.write(len.toString(8).padStart(11, '0') + '\0', 124);
    b.write('00000000000\0', 136);
    b[156] = 0x30;
    b.write('ustar\0' + '00', 257);
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of b) sum += x;
    b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return b;
  };
  const fileSize = 8 * MiB;
  const line = `layer ${seed}: the quick brown fox jumps over the lazy dog 0123456789\n`;
  const text = Buffer.from(line.repeat(Math.ceil(MiB / line.length))).subarray(0, MiB);
  for (let f = 0, left = size; left > 0; f++) {
    const n = Math.min(fileSize, left);
    left -= n;
    yield header(`data/${seed}/file-${f}`, n);
    for (let o = 0; o < n; o += MiB) {
      const len = Math.min(MiB, n - o);
      yield (o / MiB) % 2 ? text.subarray(0, len) : randomBytes(len);
    }
    if (n % 512) yield Buffer.alloc(512 - (n % 512));
  }
  yield Buffer.alloc(1024);
}

const hasher = (h, counter) =>
  new Transform({
    transform(c, _e, cb) {
      h.update(c);
      counter.n += c.length;
      cb(null, c);
    },
  });

async function makeLayer(i, size) {
  const file = join(work, `layer-${i}.tar.gz`);
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  const u = { n: 0 };
  const c = { n: 0 };
  await pipeline(Readable.from(layerTar(i, size)), hasher(diff, u), createGzip({ level: 1 }), hasher(blob, c), createWriteStream(file));
  return { file, diffID: 'sha256:' + diff.digest('hex'), digest: 'sha256:' + blob.digest('hex'), size: c.n, usize: u.n };
}

async function putBlob(url, repo, digest, body, length) {
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (post.status !== 202) throw new Error(`POST ${post.status}`);
  const loc = new URL(post.headers.get('location'), url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body, duplex: 'half', headers: { 'content-length': String(length), 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`PUT blob ${put.status} ${await put.text()}`);
}


const registry = await startRegistry(join(work, 'registry'));
const { port, url } = registry;
try {
  const per = Math.floor((totalMiB * MiB) / layerCount);
  console.error(`generating ${layerCount} gzip layers of ${(per / MiB).toFixed(0)} MiB ...`);
  const layers = [];
  for (let i = 0; i < layerCount; i++) layers.push(await makeLayer(i, per));
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } }),
  );
  const cfgDigest = 'sha256:' + createHash('sha256').update(config).digest('hex');
  const repo = 'bench/big';
  await putBlob(url, repo, cfgDigest, config, config.length);
  for (const l of layers) await putBlob(url, repo, l.digest, createReadStream(l.file), l.size);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: cfgDigest },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: l.size, digest: l.digest })),
    }),
  );
  const digest = 'sha256:' + createHash('sha256').update(manifest).digest('hex');
  const mr = await fetch(`${url}/v2/${repo}/manifests/${digest}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' } });
  if (mr.status !== 201) throw new Error(`PUT manifest ${mr.status}`);
  // tagged too: nix-prefetch-docker resolves the digest with `skopeo inspect` of the tag
  await fetch(`${url}/v2/${repo}/manifests/latest`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' } });
  for (const l of layers) rmSync(l.file);

  const env = { ...process.env, REGISTRY_AUTH_FILE: join(work, 'no-auth.json'), TMPDIR: work };
  const nrOut = join(work, 'nixreg.tar');
  const skOut = join(work, 'skopeo.tar');
  const nr = await measure(
    'node',
    [join(ROOT, 'bin/nixreg.js'), 'pull', `127.0.0.1:${port}/${repo}`, '--digest', digest, '-o', nrOut, '--tls-verify=false', '--arch', 'amd64', '--jobs', String(jobs), '--quiet', '--final-image-name', 'bench/big'],
    env,
  );
  const skTmp = mkdtempSync(join(work, 'sk-'));
  const sk = await measure(
    'skopeo',
    ['--insecure-policy', `--tmpdir=${skTmp}`, '--override-os', 'linux', '--override-arch', 'amd64', 'copy', '--src-tls-verify=false', `docker://127.0.0.1:${port}/${repo}@${digest}`, `docker-archive://${skOut}:bench/big:latest`],
    env,
  );
  // prefetch: nixreg (hash as a stream, no archive on disk) vs nix-prefetch-docker's pipeline run by hand
  const pf = await measure(
    'node',
    [join(ROOT, 'bin/nixreg.js'), 'prefetch', `127.0.0.1:${port}/${repo}`, digest, '--final-image-name', 'bench/big', '--final-image-tag', 'latest', '--tls-verify=false', '--quiet', '--json'],
    env,
  );
  const pfTmp = mkdtempSync(join(work, 'npd-'));
  const npd = await measure(
    'bash',
    ['-c', `set -e; skopeo --override-os linux --override-arch amd64 --insecure-policy --tmpdir=${pfTmp} inspect --tls-verify=false docker://127.0.0.1:${port}/${repo}:latest >/dev/null
      skopeo --insecure-policy --tmpdir=${pfTmp} --override-os linux --override-arch amd64 copy --src-tls-verify=false docker://127.0.0.1:${port}/${repo}@${digest} docker-archive://${pfTmp}/img.tar:bench/big:latest >/dev/null
      nix-hash --flat --type sha256 --base32 ${pfTmp}/img.tar; rm -f ${pfTmp}/img.tar`],
    env,
  );
  const same = spawnSync('cmp', [nrOut, skOut]).status === 0;
  const archive = statSync(nrOut).size;
  const compressed = layers.reduce((s, l) => s + l.size, 0);
  console.log(`image: ${layerCount} gzip layers, ${(compressed / MiB).toFixed(0)} MiB compressed, archive ${(archive / MiB).toFixed(0)} MiB; jobs=${jobs}`);
  console.log(`${'what'.padEnd(36)} wall (s)  peak RSS (MiB)  MB/s (archive)`);
  const rows = [['pull: nixreg', nr], ['pull: skopeo (pullImage)', sk], ['prefetch: nixreg', pf], ['prefetch: nix-prefetch-docker steps', npd]];
  for (const [name, m] of rows)
    console.log(`${name.padEnd(36)} ${m.secs.toFixed(2).padStart(8)}  ${m.rssMiB.toFixed(1).padStart(14)}  ${(archive / MiB / m.secs).toFixed(0).padStart(14)}`);
  console.log(`ratios: pull ${(nr.secs / sk.secs).toFixed(2)}x skopeo; prefetch ${(pf.secs / npd.secs).toFixed(2)}x the nix-prefetch-docker pipeline`);
  console.log(`archives byte-identical: ${same}`);
  if (!same) process.exitCode = 1;
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}
