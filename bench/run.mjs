#!/usr/bin/env node
// `npm run bench`: the one benchmark harness. Generates the test data deterministically (bench/gen.mjs),
// serves it from Debian's docker-registry on loopback, and measures nixreg next to what users run today, side by
// side in the same run, --runs times (median, min, max). Writes bench/RESULTS.md and prints the same table.
// Not part of npm test (test/bench-smoke runs it at --size tiny --runs 1 so it cannot rot).
//
//   node bench/run.mjs [--runs 5] [--size tiny|small|full] [--only startup,pull,prefetch,copy,stream,push]
//                      [--out bench/RESULTS.md] [--json FILE]
// Needs (after npm run build): docker-registry, skopeo, nix-hash, GNU time (/usr/bin/time), tar, gzip, sha256sum.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { floorSeconds, measureSpeeds } from './floors.mjs';
import { makeClosure, makeImageLayers, MiB } from './gen.mjs';
import { manifestDigest, measure, measureShell, putBlob, sameBytes, startRegistry, stats } from './lib.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const GROUPS = ['startup', 'pull', 'prefetch', 'copy', 'stream', 'push'];
const STARTUP_COMMANDS = ['pull', 'prefetch', 'push'];
const SIZES = {
  tiny: { image: 4 * MiB, layers: 4, closure: 6 * MiB, paths: 10 },
  small: { image: 64 * MiB, layers: 8, closure: 128 * MiB, paths: 100 },
  full: { image: 512 * MiB, layers: 8, closure: 1024 * MiB, paths: 100 },
};

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    size: { type: 'string', default: 'full' },
    only: { type: 'string', default: GROUPS.join(',') },
    out: { type: 'string', default: join(ROOT, 'bench/RESULTS.md') },
    json: { type: 'string' },
  },
});
const runs = Number(opt.runs);
const size = SIZES[opt.size];
const only = new Set(opt.only.split(',').map((s) => s.trim()));
if (!size || !(runs >= 1) || [...only].some((g) => !GROUPS.includes(g)))
  throw new Error(`usage: run.mjs [--runs N>=1] [--size ${Object.keys(SIZES).join('|')}] [--only ${GROUPS.join(',')}]`);
for (const tool of ['docker-registry', 'skopeo', 'nix-hash', '/usr/bin/time', 'gzip', 'tar', 'sha256sum'])
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`bench needs ${tool}`);

const log = (s) => process.stderr.write(`[bench] ${s}\n`);
const work = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), 'nixreg-bench-'));
let cliKind = ''; // set by snapshotCli
const NIXREG = snapshotCli();
// TMPDIR for every child (nixreg's layer spool, skopeo's tmp) inside the work dir, so nothing is left behind
const env = { ...process.env, TMPDIR: work, REGISTRY_AUTH_FILE: join(work, 'no-auth.json'), NIXREG_DEBUG: '' };
const cacheEnv = (name) => ({ ...env, XDG_CACHE_HOME: join(work, 'cache', name) });
const nixreg = (...args) => ['node', [NIXREG, ...args]];
const m = (pair, o) => measure(pair[0], pair[1], o);

/** results[id] = { what, other, nixreg: [measurement], base: [measurement], bytes, floor } */
const results = {};
const checks = []; // { what, ok }
/** CPU seconds both registries used during each copy run, per side: the part of the copy row's work that is not the client's */
const copyRegistriesCpu = {};
const record = (id, side, x) => (results[id][side] ??= []).push(x);
const check = (what, ok) => (checks.push({ what, ok }), ok || log(`IDENTITY CHECK FAILED: ${what}`));
const registries = [];
const registry = async (name) => {
  const r = await startRegistry(join(work, 'reg', `${name}-${registries.length}`));
  registries.push(r);
  return r;
};
const stopRegistry = async (r) => (await r.stop(), registries.splice(registries.indexOf(r), 1));

let image; // { layers, digest, ref, usize, ... } in the source registry
let closure; // { conf, root, storePaths, paths, bytes, realConf?, added?, ... }
let realStore; // benchPushRealStore's registry, cache and cold digest, kept across runs
const speeds = {}; // bench/floors.mjs measureSpeeds()
const loadStart = loadavg()[0];
const t0 = Date.now();
try {
  // ---- test data
  if (['startup', 'pull', 'prefetch', 'copy'].some((g) => only.has(g))) image = await setupImage();
  if (['stream', 'push'].some((g) => only.has(g))) closure = setupClosure();

  const define = (id, what, other, extra = {}) => (results[id] = { what, other, ...extra });
  if (only.has('startup')) {
    define('startup', '`nixreg --help` (start-up)', '`node -e 0` (bare Node)', { target: { abs: 0.15 } });
    // a command's --help: text rendered at build time (scripts/bundle.mjs), served by bin/nixreg.js without yargs
    for (const c of STARTUP_COMMANDS) define(`startup-${c}`, `\`nixreg ${c} --help\` (start-up)`, '`node -e 0` (bare Node)', { target: { abs: 0.15 } });
    // a whole command through yargs, no network: what every real command pays before its own work
    define('startup-hash', '`nixreg hash sha256:… --to nix32` (start-up, yargs parse, no I/O)', '`node -e 0` (bare Node)', { target: { abs: 0.15 } });
    define('startup-inspect', '`nixreg inspect docker://…` (start-up + 3 requests)', '`skopeo inspect docker://…`', { target: { ratio: 2 } });
  }
  // the passes each row cannot avoid (bench/floors.mjs): C compressed and U uncompressed image bytes, A archive,
  // T closure tar bytes, Z its deflate-1 size
  const C = () => image.csize;
  const U = () => image.usize;
  const pullPasses = () => [
    ['sha256', C()],
    ['inflate', U()],
    ['sha256', U()],
  ]; // blob digests, decode, diffIDs
  const T = () => closure.bytes;
  if (only.has('pull'))
    define('pull', 'pull → docker-archive', '`skopeo copy docker://…@digest docker-archive:` (pullImage)', {
      bytes: image.usize,
      floor: 'gunzip',
      passes: pullPasses,
      target: { ratio: 0.35 },
    });
  if (only.has('prefetch'))
    define('prefetch', 'prefetch', '`skopeo inspect` + `skopeo copy` + `nix-hash --flat` (nix-prefetch-docker)', {
      bytes: image.usize,
      floor: 'gunzip',
      passes: () => [...pullPasses(), ['sha256', image.archiveSize ?? U()]],
      target: { ratio: 0.3 },
    });
  if (only.has('copy'))
    define('copy', 'registry → registry copy', '`skopeo copy docker://a docker://b`', {
      bytes: image.usize,
      floor: 'gunzip',
      passes: () => [['sha256', C()]],
      target: { ratio: 0.8 },
    });
  if (only.has('stream'))
    define('stream', '`stream conf -o FILE` (cold cache)', '`tar -cf - paths | sha256sum` (floor)', {
      bytes: closure.bytes,
      floor: 'tar',
      passes: () => [['sha256', T()]],
      target: { ratio: 1.5 },
    });
  if (only.has('push')) {
    define('push-cold', 'push conf (cold: empty registry and cache)', '`nixreg stream -o F` + `skopeo copy docker-archive:F docker://…`', {
      bytes: closure.bytes,
      floor: 'tar',
      passes: (sp) => [
        ['sha256', T()],
        ['deflate1', T()],
        ['sha256', T() * sp.deflateRatio],
      ],
      target: { ratio: 0.5 },
    });
    define('push-warm', 'push conf (warm: nothing changed)', 'same, warm (skopeo blob-info cache, registry has the blobs)', {
      bytes: closure.bytes,
      floor: 'tar',
      target: { ratio: 0.1, abs: 1 },
    });
    define('push-fresh', 'push conf (fresh runner: empty cache, registry has the image)', 'same, fresh skopeo cache', {
      bytes: closure.bytes,
      floor: 'tar',
      passes: () => [['sha256', T()]],
    });
    define('push-fresh-changed', 'push conf (fresh runner, one store path changed)', 'same, fresh skopeo cache', {
      bytes: closure.bytes,
      floor: 'tar',
      passes: () => [['sha256', T()]],
      target: { ratio: 0.15 },
    });
    if (closure.realConf)
      define('push-warm-store', 'push conf (warm, paths in the real /nix/store: no tree walk)', 'same as the row above', {
        bytes: closure.bytes,
        floor: 'tar',
        target: { ratio: 0.1, abs: 1 },
      });
  }
  if (image) define('floor-gunzip', 'floor: `gzip -dc layers | sha256sum`', '', { bytes: image.usize });

  log('measuring codec and hash speeds for the floors');
  const tarSample = closure
    ? spawnSync('bash', ['-o', 'pipefail', '-c', `tar -C ${closure.root} -cf - ${closure.paths} | head -c ${48 * MiB}`], { maxBuffer: 64 * MiB }).stdout
    : image && gunzipSync(readFileSync(image.layers[0].file));
  // best of every measurement in the run (once before and after each run): on a shared machine the quiet moments
  // give the speeds the hardware has
  const measureBest = async () => {
    const now = await measureSpeeds({ root: ROOT, gzFiles: image?.layers.map((l) => l.file), tarSample });
    for (const [k, v] of Object.entries(now)) speeds[k] = k === 'deflateRatio' || k === 'cores' ? v : Math.max(speeds[k] ?? 0, v);
  };
  await measureBest();
  for (let run = 1; run <= runs; run++) {
    if (run > 1) await measureBest();
    log(`run ${run}/${runs}`);
    if (only.has('startup')) {
      record('startup', 'nixreg', m(nixreg('--help'), { env }));
      const bare = measure('node', ['-e', '0'], { env });
      record('startup', 'base', bare);
      for (const c of STARTUP_COMMANDS) {
        record(`startup-${c}`, 'nixreg', m(nixreg(c, '--help'), { env }));
        record(`startup-${c}`, 'base', bare);
      }
      record('startup-hash', 'nixreg', m(nixreg('hash', 'sha256:' + 'ab'.repeat(32), '--to', 'nix32'), { env }));
      record('startup-hash', 'base', bare);
      record('startup-inspect', 'nixreg', m(nixreg('inspect', `docker://${image.ref}:latest`, '--tls-verify=false', '--arch', 'amd64'), { env }));
      record(
        'startup-inspect',
        'base',
        measure('skopeo', ['--override-os', 'linux', '--override-arch', 'amd64', 'inspect', '--tls-verify=false', `docker://${image.ref}:latest`], { env }),
      );
    }
    if (image) record('floor-gunzip', 'nixreg', measureShell(`gzip -dc ${image.layers.map((l) => l.file).join(' ')} | sha256sum`, { env }));
    if (only.has('pull')) await benchPull(run);
    if (only.has('prefetch')) await benchPrefetch(run);
    if (only.has('copy')) await benchCopy(run);
    if (only.has('stream')) benchStream(run);
    if (only.has('push')) await benchPush(run);
  }
  const report = render({ image, closure, loadStart, loadEnd: loadavg()[0], minutes: (Date.now() - t0) / 60000 });
  process.stdout.write(report.text + '\n');
  if (opt.out) writeFileSync(opt.out, report.markdown);
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ size: opt.size, runs, rows: report.rows, checks }, null, 2));
  if (checks.some((c) => !c.ok)) process.exitCode = 1;
} finally {
  for (const r of [...registries]) await r.stop();
  if (closure?.added?.length) spawnSync('nix-store', ['--delete', ...closure.added], { stdio: 'ignore' }); // best effort: unrooted garbage anyway
  rmSync(work, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * The CLI to measure: a private copy of bin/nixreg.js + dist/bundle (self-contained: every npm dependency is in it)
 * when the bundle is current, so a rebuild during a long run cannot switch what is measured half-way; else the
 * repo's launcher on tsc's output (reported in the header).
 */
function snapshotCli() {
  const mtime = (f) => statSync(join(ROOT, f), { throwIfNoEntry: false })?.mtimeMs ?? -1;
  const stale = () => mtime('dist/bundle/main.js') < 0 || mtime('dist/bundle/main.js') < mtime('dist/src/cli/main.js');
  // tsc ran after the last bundle (the bundle is what ships): rebundle that output rather than measure the slower path
  // (not under the smoke test: rewriting dist/bundle there could break CLI tests running alongside)
  if (stale() && !process.env.BENCH_NO_REBUNDLE) spawnSync('node', [join(ROOT, 'scripts/bundle.mjs')], { stdio: 'inherit' });
  if (stale()) {
    cliKind = 'tsc output (dist/src; the bundle is missing or older: run npm run build)';
    return join(ROOT, 'bin/nixreg.js');
  }
  mkdirSync(join(work, 'cli/bin'), { recursive: true });
  cpSync(join(ROOT, 'bin/nixreg.js'), join(work, 'cli/bin/nixreg.js'));
  cpSync(join(ROOT, 'dist/bundle'), join(work, 'cli/dist/bundle'), { recursive: true });
  // packages the bundle loads at run time (the WebAssembly zstd and pako for the encoder worker threads)
  symlinkSync(join(ROOT, 'node_modules'), join(work, 'cli/node_modules'), 'dir');
  // the optional native decoders, found by the bundle at ../native/ (without them the fallbacks would be measured)
  if (statSync(join(ROOT, 'dist/native'), { throwIfNoEntry: false })) cpSync(join(ROOT, 'dist/native'), join(work, 'cli/dist/native'), { recursive: true });
  cliKind = `bundle (dist/bundle, snapshot taken at start; native decoders: ${statSync(join(work, 'cli/dist/native/codecs.node'), { throwIfNoEntry: false }) ? 'yes' : 'no'}${process.env.NIXREG_NO_NATIVE === '1' ? ', disabled by NIXREG_NO_NATIVE=1' : ''})`;
  return join(work, 'cli/bin/nixreg.js');
}

async function setupImage() {
  const dir = join(work, 'image');
  mkdirSync(dir, { recursive: true });
  log(`generating the image: ${size.image / MiB} MiB in ${size.layers} gzip layers`);
  const layers = await makeImageLayers(dir, size.image, size.layers);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } }),
  );
  const cfgDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const src = await registry('source');
  const repo = 'bench/img';
  await putBlob(src.url, repo, cfgDigest, config, config.length);
  for (const l of layers) await putBlob(src.url, repo, l.digest, createReadStream(l.file), l.size);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: cfgDigest },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: l.size, digest: l.digest })),
    }),
  );
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  // by digest and tagged: nix-prefetch-docker resolves the digest with `skopeo inspect` of the tag
  for (const ref of [digest, 'latest']) {
    const r = await fetch(`${src.url}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      body: manifest,
      headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    if (r.status !== 201) throw new Error(`PUT manifest ${r.status}`);
  }
  const usize = layers.reduce((s, l) => s + l.usize, 0);
  const csize = layers.reduce((s, l) => s + l.size, 0);
  return { layers, digest, repo, src, ref: `${src.host}/${repo}`, usize, csize };
}

function setupClosure() {
  const root = join(work, 'root');
  log(`generating the closure: ${size.closure / MiB} MiB in ${size.paths} store paths`);
  const c = makeClosure(root, size.closure, size.paths);
  const paths = c.storePaths.map((p) => p.slice(1)).join(' ');
  measureShell(`tar -C ${root} -cf - ${paths} >/dev/null`, { env }); // page cache warm: we measure CPU and pipes, not the disk
  return { ...c, root, paths, ...addToNixStore(c.conf, root) };
}

/**
 * --store-root trees may change, so a warm push must lstat every file to fingerprint them; paths in a real Nix
 * store are immutable and a warm push reads none of them. Measure that case too: add the closure to /nix/store
 * (nix-store --add; new store path names) and write a conf that names those paths. Skipped without a usable Nix.
 */
function addToNixStore(conf, root) {
  if (process.env.BENCH_NO_NIX_STORE || spawnSync('nix-store', ['--version'], { stdio: 'ignore' }).status !== 0) return {};
  const doc = JSON.parse(readFileSync(conf, 'utf8'));
  const local = [...doc.store_layers.flat(), doc.customisation_layer];
  // Store paths are named by content and name: a path identical to one another run (or the user) added would be
  // shared, and deleted by our clean-up. A per-run name prefix makes every added path ours; hard links make the
  // renamed copies free.
  const tag = `nixreg-bench-${process.pid}-${Date.now().toString(36)}`;
  const staged = join(work, 'to-add');
  mkdirSync(staged);
  const named = local.map((p) => {
    const to = join(
      staged,
      `${tag}-${p
        .split('/')
        .pop()
        .replace(/^[0-9a-z]{32}-/, '')}`,
    );
    if (spawnSync('cp', ['-al', join(root, p), to]).status !== 0) throw new Error(`cp -al ${p} failed`);
    return to;
  });
  const r = spawnSync('nix-store', ['--add', ...named], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) return (log(`nix-store --add failed, no real-store row: ${r.stderr.trim().split('\n').pop()}`), {});
  const added = r.stdout.trim().split('\n');
  const real = new Map(local.map((p, i) => [p, added[i]]));
  const swap = (p) => real.get(p) ?? p;
  doc.store_layers = doc.store_layers.map((l) => l.map(swap));
  doc.customisation_layer = swap(doc.customisation_layer);
  const realConf = join(work, 'real-store-conf.json');
  writeFileSync(realConf, JSON.stringify(doc));
  return { realConf, added };
}

async function benchPull(run) {
  const nr = join(work, 'pull-nixreg.tar');
  const sk = join(work, 'pull-skopeo.tar');
  const name = ['--final-image-name', 'bench/img', '--final-image-tag', 'latest'];
  record(
    'pull',
    'nixreg',
    m(nixreg('pull', image.ref, '--digest', image.digest, '-o', nr, '--tls-verify=false', '--arch', 'amd64', '--quiet', ...name), { env }),
  );
  record(
    'pull',
    'base',
    measure(
      'skopeo',
      [
        '--insecure-policy',
        `--tmpdir=${work}`,
        '--override-os',
        'linux',
        '--override-arch',
        'amd64',
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        `docker://${image.ref}@${image.digest}`,
        `docker-archive://${sk}:bench/img:latest`,
      ],
      { env },
    ),
  );
  if (run === 1) {
    check('pull: nixreg archive byte-identical to skopeo (cmp)', sameBytes(nr, sk));
    image.archiveSha256 = createHash('sha256').update(readFileSync(sk)).digest('base64');
    image.archiveSize = statSync(sk).size;
  }
  rmSync(nr, { force: true });
  rmSync(sk, { force: true });
}

async function benchPrefetch(run) {
  const pf = m(
    nixreg('prefetch', image.ref, image.digest, '--final-image-name', 'bench/img', '--final-image-tag', 'latest', '--tls-verify=false', '--quiet', '--json'),
    { env },
  );
  record('prefetch', 'nixreg', pf);
  const tmp = join(work, 'npd');
  const ref = `docker://${image.ref}`;
  const npd = measureShell(
    `set -e; mkdir -p ${tmp}
     skopeo --insecure-policy --override-os linux --override-arch amd64 --tmpdir=${tmp} inspect --tls-verify=false ${ref}:latest >/dev/null
     skopeo --insecure-policy --override-os linux --override-arch amd64 --tmpdir=${tmp} copy --quiet --src-tls-verify=false ${ref}@${image.digest} docker-archive://${tmp}/img.tar:bench/img:latest >/dev/null
     nix-hash --flat --type sha256 --base32 ${tmp}/img.tar; rm -rf ${tmp}`,
    { env },
  );
  record('prefetch', 'base', npd);
  if (run === 1) {
    const { fromNix32, toSRI } = await import('../dist/src/digest/nixhash.js');
    const ours = JSON.parse(pf.stdout).hash;
    const theirs = toSRI(fromNix32(npd.stdout.trim()));
    check("prefetch: nixreg hash equals nix-hash --flat of skopeo's archive", ours === theirs);
    if (image.archiveSha256) check('prefetch: hash equals sha256 of the pulled archive', ours === `sha256-${image.archiveSha256}`);
  }
}

async function benchCopy(run) {
  // a fresh destination registry per side and run: nothing to skip, no blob-info cache hits (new port)
  for (const side of ['nixreg', 'base']) {
    const dst = await registry(`copy-${side}`);
    const to = `docker://${dst.host}/bench/copy:1`;
    const from = `docker://${image.ref}@${image.digest}`;
    const registriesCpu = () => image.src.cpuSeconds() + dst.cpuSeconds();
    const cpu0 = registriesCpu();
    const x =
      side === 'nixreg'
        ? m(nixreg('push', from, to, '--tls-verify=false', '--quiet'), { env: cacheEnv(`copy-${run}`) })
        : measure('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', from, to], { env });
    record('copy', side, x);
    (copyRegistriesCpu[side] ??= []).push(registriesCpu() - cpu0);
    if (run === 1)
      check(
        `copy (${side === 'base' ? 'skopeo' : 'nixreg'}): destination manifest digest equals the source's`,
        (await manifestDigest(dst.url, 'bench/copy', '1')) === image.digest,
      );
    await stopRegistry(dst);
  }
}

function benchStream(run) {
  const out = join(work, 'stream.tar');
  rmSync(join(work, 'cache', `stream-${run}`), { recursive: true, force: true });
  record('stream', 'nixreg', m(nixreg('stream', closure.conf, '--store-root', closure.root, '-o', out, '--force'), { env: cacheEnv(`stream-${run}`) }));
  record('stream', 'base', measureShell(`tar -C ${closure.root} -cf - ${closure.paths} | sha256sum`, { env }));
  if (run === 1) closure.streamSha256 = createHash('sha256').update(readFileSync(out)).digest('hex');
  else if (run === 2) check('stream: output identical across runs', closure.streamSha256 === createHash('sha256').update(readFileSync(out)).digest('hex'));
  rmSync(out, { force: true });
}

async function benchPush(run) {
  const pushTo = await registry('push-nixreg');
  const pushArgs = ['push', closure.conf, `docker://${pushTo.host}/bench/app:1`, '--store-root', closure.root, '--tls-verify=false', '--quiet'];
  const pushEnv = cacheEnv(`push-${run}`);
  record('push-cold', 'nixreg', m(nixreg(...pushArgs), { env: pushEnv }));
  const coldDigest = await manifestDigest(pushTo.url, 'bench/app', '1');
  record('push-warm', 'nixreg', m(nixreg(...pushArgs), { env: pushEnv }));
  if (run === 1)
    check(
      'push: warm push leaves the same manifest as the cold one',
      coldDigest !== null && coldDigest === (await manifestDigest(pushTo.url, 'bench/app', '1')),
    );
  // a CI runner's first push: empty cache, the registry already holds the image (reused by its config's diff_ids)
  record('push-fresh', 'nixreg', m(nixreg(...pushArgs), { env: cacheEnv(`push-fresh-${run}`) }));
  if (run === 1)
    check(
      'push: a fresh-runner push leaves the same manifest as the cold one',
      coldDigest !== null && coldDigest === (await manifestDigest(pushTo.url, 'bench/app', '1')),
    );
  const restore = changeOneStorePath();
  try {
    record('push-fresh-changed', 'nixreg', m(nixreg(...pushArgs), { env: cacheEnv(`push-fresh-changed-${run}`) }));
    if (run === 1)
      check(
        'push: a fresh-runner push of one changed path leaves a new manifest',
        coldDigest !== null && coldDigest !== (await manifestDigest(pushTo.url, 'bench/app', '1')),
      );
  } finally {
    restore();
  }
  await stopRegistry(pushTo);

  const skTo = await registry('push-skopeo');
  const archive = join(work, 'push-archive.tar');
  const today =
    `node ${NIXREG} stream ${closure.conf} --store-root ${closure.root} -o ${archive} --force && ` +
    `skopeo --insecure-policy copy --quiet --dest-tls-verify=false docker-archive:${archive} docker://${skTo.host}/bench/app:1`;
  const skEnv = cacheEnv(`push-stream-${run}`);
  record('push-cold', 'base', measureShell(today, { env: skEnv }));
  record('push-warm', 'base', measureShell(today, { env: skEnv }));
  record('push-fresh', 'base', measureShell(today, { env: cacheEnv(`push-stream-fresh-${run}`) }));
  if (run === 1 && closure.streamSha256)
    check(
      'stream: output identical to the archive the push baseline streamed',
      closure.streamSha256 === createHash('sha256').update(readFileSync(archive)).digest('hex'),
    );
  const restoreBase = changeOneStorePath();
  try {
    record('push-fresh-changed', 'base', measureShell(today, { env: cacheEnv(`push-stream-fresh-changed-${run}`) }));
  } finally {
    restoreBase();
  }
  rmSync(archive, { force: true });
  await stopRegistry(skTo);
  if (closure.realConf) await benchPushRealStore(run);
}

/**
 * Appends bytes to the first file of the middle store path (one layer of the closure changes) and returns the
 * function that puts the original bytes back, so later rows and runs push the closure they measured before.
 */
function changeOneStorePath() {
  let dir = join(closure.root, closure.storePaths[Math.floor(closure.storePaths.length / 2)]);
  for (;;) {
    const first = readdirSync(dir).sort()[0];
    dir = join(dir, first);
    if (!statSync(dir).isDirectory()) break;
  }
  const file = dir;
  const original = readFileSync(file);
  writeFileSync(file, Buffer.concat([original, Buffer.from('one more line\n')]));
  return () => writeFileSync(file, original);
}

/** Warm push of the real-store conf: one unmeasured cold push fills the registry and the cache, once for all runs. */
async function benchPushRealStore(run) {
  if (!realStore) {
    const reg = await registry('push-real-store');
    const args = ['push', closure.realConf, `docker://${reg.host}/bench/real:1`, '--tls-verify=false', '--quiet'];
    const env = cacheEnv('push-real-store');
    m(nixreg(...args), { env });
    realStore = { args, env, digest: await manifestDigest(reg.url, 'bench/real', '1'), reg };
  }
  record('push-warm-store', 'nixreg', m(nixreg(...realStore.args), { env: realStore.env }));
  results['push-warm-store'].base = results['push-warm'].base; // the same baseline measurements
  if (run === 1)
    check(
      'push: warm push from /nix/store leaves the manifest of the cold one',
      !!realStore.digest && realStore.digest === (await manifestDigest(realStore.reg.url, 'bench/real', '1')),
    );
}

// ---------------------------------------------------------------------------------------------------------------

function fmtSpeed(x) {
  return x ? x.toFixed(0) : '—';
}

function render({ image, closure, loadStart, loadEnd, minutes }) {
  const f2 = (x) => x.toFixed(2);
  const mb = (mib) => mib * 1.048576; // GNU time reports KiB; targets are in MB
  const span = (s) => `${f2(s.median)} (${f2(s.min)}–${f2(s.max)})`;
  const floorRate = {
    gunzip: results['floor-gunzip'] && image.usize / MiB / stats(results['floor-gunzip'].nixreg.map((x) => x.wall)).median,
    tar: results.stream && closure.bytes / MiB / stats(results.stream.base.map((x) => x.wall)).median,
  };
  const rows = [];
  for (const [id, r] of Object.entries(results)) {
    const w = stats(r.nixreg.map((x) => x.wall));
    const row = {
      id,
      what: r.what,
      other: r.other,
      wall: w,
      cpu: stats(r.nixreg.map((x) => x.cpu)).median,
      rssMB: Math.max(...r.nixreg.map((x) => mb(x.rssMiB))),
    };
    if (r.base) {
      const b = stats(r.base.map((x) => x.wall));
      Object.assign(row, {
        baseWall: b,
        baseCpu: stats(r.base.map((x) => x.cpu)).median,
        baseRssMB: Math.max(...r.base.map((x) => mb(x.rssMiB))),
        ratio: w.median / b.median,
      });
    }
    if (r.bytes) row.mibps = r.bytes / MiB / w.median;
    const floor = floorSeconds(r.passes?.(speeds), speeds);
    if (floor) Object.assign(row, { floor, xFloor: w.median / floor });
    if (r.target) {
      const t = r.target;
      row.target = [t.ratio !== undefined && `≤ ${t.ratio}×`, t.abs !== undefined && `< ${t.abs} s`].filter(Boolean).join(', ');
      row.met = (t.ratio === undefined || row.ratio <= t.ratio) && (t.abs === undefined || w.median < t.abs);
    }
    rows.push(row);
  }
  const nixregRss = Math.max(...rows.filter((r) => !r.id.startsWith('floor')).map((r) => r.rssMB));
  const head = [
    `Date: ${new Date().toISOString()}; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); Node ${process.version}; load average ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end; ${minutes.toFixed(1)} min.`,
    `CLI measured: ${cliKind}.`,
    `Size \`${opt.size}\`, ${runs} run(s) per row, wall seconds as median (min–max); CPU = user+sys median; RSS = peak of any single process over all runs.`,
    image &&
      `Image: ${size.layers} gzip layers, ${(image.csize / MiB).toFixed(0)} MiB compressed, ${(image.usize / MiB).toFixed(0)} MiB uncompressed${image.archiveSize ? `, archive ${(image.archiveSize / MiB).toFixed(0)} MiB` : ''}.`,
    closure && `Closure: ${closure.storePaths.length} store paths, ${closure.files} files, ${(closure.bytes / MiB).toFixed(0)} MiB, one layer per path.`,
    '"ratio" compares wall times (the targets); "CPU ratio" compares CPU seconds, the steadier figure when other work loads the machine.',
    `Pipelines for reference: gunzip+sha256 ${floorRate.gunzip ? floorRate.gunzip.toFixed(0) + ' MiB/s' : '—'} (uncompressed bytes), tar|sha256sum ${floorRate.tar ? floorRate.tar.toFixed(0) + ' MiB/s' : '—'}.`,
    `Floor of this machine per row ("floor s"): the codec and hash passes the work cannot avoid, each at the best single-core speed measured in this run (before every run), summed and divided by ${speeds.cores ?? '?'} cores (bench/floors.mjs; pull: sha256 of the blobs, inflate, sha256 of the layers; prefetch: + sha256 of the archive; copy: sha256 of the blobs; stream: sha256 of the tar; cold push: sha256 of the tar, deflate level 1, sha256 of the blobs; warm pushes have no such pass). Speeds in MiB/s: sha256 ${fmtSpeed(speeds.sha256)}, inflate ${fmtSpeed(speeds.inflate)} (node:zlib ${fmtSpeed(speeds.inflateZlib)}, native ISA-L ${fmtSpeed(speeds.inflateNative)}), deflate-1 ${fmtSpeed(speeds.deflate1)} (ratio ${speeds.deflateRatio ? speeds.deflateRatio.toFixed(2) : '—'}). "× floor" = nixreg wall / floor.`,
  ].filter(Boolean);
  const cols = [
    'benchmark',
    'nixreg wall s',
    'compared with',
    'other wall s',
    'ratio',
    'CPU ratio',
    'target',
    'met',
    'CPU s nixreg / other',
    'peak RSS MB nixreg / other',
    'nixreg MiB/s',
    'floor s',
    '× floor',
  ];
  const cells = rows.map((r) => [
    r.what,
    span(r.wall),
    r.other || '—',
    r.baseWall ? span(r.baseWall) : '—',
    r.ratio !== undefined ? `${f2(r.ratio)}×` : '—',
    r.baseCpu ? `${f2(r.cpu / r.baseCpu)}×` : '—',
    r.target ?? '—',
    r.target ? (r.met ? 'yes' : 'NO') : '—',
    `${f2(r.cpu)}${r.baseCpu !== undefined ? ' / ' + f2(r.baseCpu) : ''}`,
    `${r.rssMB.toFixed(0)}${r.baseRssMB !== undefined ? ' / ' + r.baseRssMB.toFixed(0) : ''}`,
    r.mibps ? r.mibps.toFixed(0) : '—',
    r.floor ? r.floor.toFixed(2) : '—',
    r.xFloor ? `${r.xFloor.toFixed(1)}×` : '—',
  ]);
  const md = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...cells.map((c) => `| ${c.join(' | ')} |`)];
  const tail = [
    `Peak RSS of nixreg over every row: ${nixregRss.toFixed(0)} MB (target < 150 MB: ${nixregRss < 150 ? 'yes' : 'NO'}).`,
    ...copyCpuLines(),
    ...checks.map((c) => `- identity: ${c.what}: ${c.ok ? 'yes' : 'NO'}`),
  ];
  const markdown = [
    '# nixreg benchmarks',
    '',
    'Generated by `npm run bench` (bench/run.mjs); do not edit by hand.',
    '',
    ...head,
    '',
    ...md,
    '',
    ...tail,
    '',
  ].join('\n');
  return { markdown, text: [...head, '', ...md, '', ...tail].join('\n'), rows: rows.map((r) => ({ ...r, rssMB: Math.round(r.rssMB) })) };
}

/**
 * The copy row's other half: both registries run on the same cores (the destination hashes and writes every byte
 * it receives). What they used during the runs, and the CPU floor of the whole machine for that work.
 */
function copyCpuLines() {
  const c = copyRegistriesCpu;
  if (!c.nixreg?.length || !c.base?.length || !results.copy) return [];
  const med = (xs) => stats(xs).median;
  const cpuOf = (side) => med(results.copy[side].map((x) => x.cpu));
  const [rn, rb, cn, cb] = [med(c.nixreg), med(c.base), cpuOf('nixreg'), cpuOf('base')];
  const cores = cpus().length;
  return [
    `Copy row, both registries' CPU during the copy (median): ${rn.toFixed(2)} s with nixreg, ${rb.toFixed(2)} s with skopeo; client + registries ` +
      `${(cn + rn).toFixed(2)} s against ${(cb + rb).toFixed(2)} s, so on ${cores} cores no copy of this image finishes in less than ` +
      `${((cn + rn) / cores).toFixed(2)} s with nixreg's CPU, ${(rn / cores).toFixed(2)} s with none.`,
  ];
}
