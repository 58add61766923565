import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, pinnedErrorFailures, runCli } from '../helpers/cli.js';
import { layer } from '../helpers/export-layers.js';
import { buildStoreTree, FIXTURES, removeStoreTree } from '../helpers/store-tree.js';

/**
 * Error wording of the commands reading any source (every error message a user can hit has a test that pins
 * its wording), in the style of error-messages.test.ts: a table of CLI invocations, each pinning the
 * exact `nixreg: …` line, the exit code, that it is the only error line, and that no output file is left.
 * Covers every source kind (docker-archive, OCI layout/archive, conf), inspect, export (hostile layers), merge,
 * stream/build output formats, build --single-layer refusals, push sources and the size/network flags; and
 * --max-manifest-size against a loopback registry serving a 5 MiB manifest. Needs dist/ built.
 */
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
/** A tar of whole files (the export-layers helper writes any entries; archives are just tars of files). */
const tarOf = (files: Record<string, Buffer | string>) => layer(...Object.entries(files).map(([f, data]) => ({ f, data })));

function config(layers: Buffer[]): Buffer {
  return json({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map(sha) } });
}

/** A docker-archive (docker save / skopeo shape) holding `images`, each its own layers and RepoTags. */
function dockerArchive(images: Array<{ tags: string[]; layers: Buffer[] }>): Buffer {
  const files: Record<string, Buffer> = {};
  const manifest = images.map(({ tags, layers }) => {
    const cfg = config(layers);
    files[`${hex(cfg)}.json`] = cfg;
    for (const l of layers) files[`${hex(l)}.tar`] = l;
    return { Config: `${hex(cfg)}.json`, RepoTags: tags, Layers: layers.map((l) => `${hex(l)}.tar`) };
  });
  return tarOf({ 'manifest.json': json(manifest), ...files });
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** The files of an OCI layout holding one image under each of `refs` (layers uncompressed). */
function ociLayoutFiles(refs: string[], layers = [layer({ f: 'hello', data: 'hello\n' })]): Record<string, Buffer> {
  const cfg = config(layers);
  const manifest = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(l), size: l.length })),
  });
  const index = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: refs.map((r) => ({
      mediaType: OCI_MANIFEST,
      digest: sha(manifest),
      size: manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': r },
    })),
  });
  const files: Record<string, Buffer> = { 'oci-layout': json({ imageLayoutVersion: '1.0.0' }), 'index.json': index };
  for (const b of [cfg, manifest, ...layers]) files[`blobs/sha256/${hex(b)}`] = b;
  return files;
}
function writeTree(dir: string, files: Record<string, Buffer>) {
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
}

// ---------------------------------------------------------------- a registry whose manifest is 5 MiB

const BIG = 5 * 1024 * 1024;
const bigLayer = layer({ f: 'big', data: 'big\n' });
const bigConfig = config([bigLayer]);
/** A valid manifest padded with JSON whitespace to 5 MiB: only the size limit can refuse it. */
const bigManifest = (() => {
  const m = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(bigConfig), size: bigConfig.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(bigLayer), size: bigLayer.length }],
  });
  return Buffer.concat([m, Buffer.alloc(BIG - m.length, 0x20)]);
})();

function bigRegistry(req: IncomingMessage, res: ServerResponse) {
  const url = req.url ?? '';
  if (url === '/v2/') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  const blob = [bigConfig, bigLayer].find((b) => url === `/v2/big/img/blobs/${sha(b)}`);
  if (blob) return res.writeHead(200, { 'content-length': String(blob.length) }).end(req.method === 'HEAD' ? undefined : blob);
  if (/^\/v2\/big\/img\/manifests\//.test(url))
    return res
      .writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(bigManifest.length), 'docker-content-digest': sha(bigManifest) })
      .end(req.method === 'HEAD' ? undefined : bigManifest);
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
}

// ---------------------------------------------------------------- harness

let root: string;
let store: string;
let server: Server;
let BIGREG = '';
let CLOSED = '';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-errors-src-'));
  const T = (p: string) => join(root, p);
  for (const d of ['out', 'home', 'emptydir', 'existsdir']) mkdirSync(T(d));
  // a directory that holds something but is not an OCI layout: an OCI output refuses it (skopeo's oci:DIR adds to a layout)
  writeFileSync(join(T('existsdir'), 'notes.txt'), 'mine\n');
  writeFileSync(T('exists.tar'), 'x');
  writeFileSync(T('notar.bin'), 'this is not an archive\n');
  writeFileSync(T('bad.json'), '{');
  copyFileSync(join(FIXTURES, 'docker-archive/skopeo-tiny.tar'), T('tiny.tar'));
  const hello = layer({ f: 'hello', data: 'hello\n' });
  const world = layer({ f: 'world', data: 'world\n' });
  writeFileSync(
    T('two.tar'),
    dockerArchive([
      { tags: ['a/one:1'], layers: [hello] },
      { tags: ['a/two:1'], layers: [world] },
    ]),
  );
  writeFileSync(
    T('untagged.tar'),
    dockerArchive([
      { tags: [], layers: [hello] },
      { tags: [], layers: [world] },
    ]),
  );
  writeFileSync(T('nomanifest.tar'), tarOf({ repositories: '{}' }));
  writeFileSync(T('notlist.tar'), tarOf({ 'manifest.json': '{}' }));
  writeFileSync(T('emptylist.tar'), tarOf({ 'manifest.json': '[]' }));
  writeFileSync(
    T('nodiffids.tar'),
    tarOf({ 'manifest.json': json([{ Config: 'c.json', RepoTags: [], Layers: ['l.tar'] }]), 'c.json': json({ rootfs: { diff_ids: [] } }), 'l.tar': hello }),
  );
  // OCI layouts: good (two refs), broken index.json, missing index.json, unknown version, missing manifest blob
  const oci = ociLayoutFiles(['one', 'two']);
  writeTree(T('layout'), oci);
  writeTree(T('badindex'), { ...oci, 'index.json': Buffer.from('{') });
  writeTree(T('noindex'), Object.fromEntries(Object.entries(oci).filter(([n]) => n !== 'index.json')));
  writeTree(T('badversion'), { ...oci, 'oci-layout': json({ imageLayoutVersion: '9.9.9' }) });
  const manifestBlob = Object.keys(oci).find((n) => n.startsWith('blobs/') && oci[n]!.toString().includes(OCI_MANIFEST))!;
  writeTree(T('noblob'), Object.fromEntries(Object.entries(oci).filter(([n]) => n !== manifestBlob)));
  writeFileSync(T('layout.tar'), tarOf(oci));
  // hostile layers (the export-hostile cases), each in a docker-archive
  const hostile: Record<string, Buffer[]> = {
    dotdot: [layer({ f: '../../escaped-by-dotdot', data: 'x' })],
    symparent: [layer({ s: 'a', to: '/tmp' }), layer({ f: 'a/escaped-by-symlink', data: 'x' })],
    symsame: [layer({ s: 'a', to: '..' }, { f: 'a/escaped-by-symlink', data: 'x' })],
    hardlink: [layer({ f: 'ok', data: 'x' }, { h: 'l', to: '../../../etc/passwd' })],
  };
  for (const [name, layers] of Object.entries(hostile)) writeFileSync(T(`hostile-${name}.tar`), dockerArchive([{ tags: [`hostile/${name}:1`], layers }]));
  store = await buildStoreTree();

  server = createServer(bigRegistry);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  BIGREG = `127.0.0.1:${(server.address() as { port: number }).port}`;
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  CLOSED = `127.0.0.1:${(closed.address() as { port: number }).port}`;
  await new Promise((r) => closed.close(r));
}, 60_000);
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  if (store) await removeStoreTree(store);
  if (root) rmSync(root, { recursive: true, force: true });
});

const env = () => ({ HOME: join(root, 'home'), XDG_RUNTIME_DIR: join(root, 'home'), XDG_CACHE_HOME: join(root, 'home', 'cache') });
const sub = (s: string) => s.replace(/\$T/g, root).replace(/\$S/g, store).replace(/\$BIG/g, BIGREG).replace(/\$C/g, CLOSED);

// ---------------------------------------------------------------- the table

/** `$T` temp dir, `$S` store root, `$BIG` the 5 MiB-manifest registry, `$C` a closed port; `$O` one output per case. */
type Case = [args: string, code: number, stderr: string];
const O = '-o $T/out/$I';
const CONF = join(FIXTURES, 'cases/a-defaults/conf.json');
const HOSTILE = 'export: layer 1/1 (sha256:';

const CASES: Case[] = [
  // every source kind: bare paths (sniffed)
  [`inspect $T/missing.tar`, 2, 'source $T/missing.tar does not exist (for a registry image write docker://$T/missing.tar)'],
  [`inspect $T/notar.bin`, 2, 'source $T/notar.bin is not a tar archive (nor gzip/zstd)'],
  [`inspect $T/emptydir`, 2, 'source $T/emptydir is a directory without an oci-layout file (not an OCI image layout)'],
  [`inspect $T/bad.json`, 2, '$T/bad.json: not valid JSON (expected a string key at offset 1)'],
  [`inspect ''`, 2, 'empty source: give a path, docker://REF, docker-archive:PATH, oci:DIR, oci-archive:PATH or conf:PATH'],
  // docker-archive:
  [`inspect docker-archive:$T/missing.tar`, 2, 'docker-archive $T/missing.tar does not exist'],
  [`inspect docker-archive:$T/notar.bin`, 2, 'docker-archive $T/notar.bin is not a tar archive (nor gzip/zstd)'],
  [`inspect docker-archive:$T/emptydir`, 2, 'docker-archive $T/emptydir is a directory, not an image archive'],
  [`inspect docker-archive:`, 2, 'source "docker-archive:" has no path'],
  [`inspect $T/nomanifest.tar`, 2, 'docker-archive $T/nomanifest.tar is not a valid image: member manifest.json is missing'],
  [`inspect $T/notlist.tar`, 2, 'docker-archive $T/notlist.tar is not a valid image: manifest.json is not a list'],
  [`inspect $T/emptylist.tar`, 2, 'docker-archive $T/emptylist.tar holds no image (manifest.json is empty)'],
  [`inspect $T/nodiffids.tar`, 2, 'docker-archive $T/nodiffids.tar is not a consistent image: 1 layers but 0 diff_ids'],
  [`inspect $T/two.tar`, 2, 'docker-archive $T/two.tar holds 2 images; name one as docker-archive:PATH:NAME:TAG or :@N (tags: a/one:1, a/two:1)'],
  [`inspect $T/untagged.tar`, 2, 'docker-archive $T/untagged.tar holds 2 images; name one as docker-archive:PATH:NAME:TAG or :@N (tags: none)'],
  [`inspect docker-archive:$T/two.tar:a/three:1`, 4, 'docker-archive $T/two.tar has no image tagged docker.io/a/three:1 (tags: a/one:1, a/two:1)'],
  [`inspect docker-archive:$T/two.tar:@2`, 4, 'docker-archive $T/two.tar has no image @2 (it holds 2)'],
  [`inspect docker-archive:$T/two.tar:Bad!`, 2, 'docker-archive $T/two.tar: "Bad!" is not a valid NAME:TAG'],
  // oci: / oci-archive:
  [`inspect oci:$T/missing`, 2, 'oci $T/missing does not exist'],
  [`inspect oci:$T/emptydir`, 2, 'oci $T/emptydir is not an OCI image layout (no oci-layout file)'],
  [`inspect oci:$T/layout`, 2, 'oci $T/layout holds 2 images; name one as oci:PATH:REF (refs: one, two)'],
  [`inspect $T/layout`, 2, 'oci $T/layout holds 2 images; name one as oci:PATH:REF (refs: one, two)'],
  [`inspect oci:$T/layout:three`, 4, 'oci $T/layout has no image named three (refs: one, two)'],
  [`inspect oci:$T/layout:@5`, 4, 'oci $T/layout has no image @5 (it holds 2)'],
  [`inspect oci:$T/badindex:one`, 1, 'oci $T/badindex: index.json: invalid manifest: not valid JSON'],
  [`inspect oci:$T/noindex:one`, 2, 'oci $T/noindex is not an OCI image layout (index.json: no such file or directory)'],
  [`inspect oci:$T/badversion:one`, 2, 'oci $T/badversion: unsupported imageLayoutVersion "9.9.9"'],
  [`inspect oci:$T/noblob:one`, 4, 'oci $T/noblob has no blob $MANIFEST'],
  [`inspect oci-archive:$T/missing.tar`, 2, 'oci-archive $T/missing.tar does not exist'],
  [`inspect oci-archive:$T/tiny.tar`, 2, 'oci-archive $T/tiny.tar is not an OCI archive (no oci-layout member)'],
  [`inspect oci-archive:$T/notar.bin`, 2, 'oci-archive $T/notar.bin is not a tar archive (nor gzip/zstd)'],
  [`inspect $T/layout.tar`, 2, 'oci-archive $T/layout.tar holds 2 images; name one as oci-archive:PATH:REF (refs: one, two)'],
  [`inspect oci-archive:$T/layout.tar:three`, 4, 'oci-archive $T/layout.tar has no image named three (refs: one, two)'],
  // conf:
  [`inspect conf:$T/missing.json`, 2, 'cannot read conf $T/missing.json: no such file or directory'],
  [`inspect conf:$T/bad.json`, 2, '$T/bad.json: not valid JSON (expected a string key at offset 1)'],
  [`inspect conf:$T/notar.bin`, 2, '$T/notar.bin: not valid JSON (unexpected character at offset 0)'],
  // inspect flags
  [`inspect $T/tiny.tar --raw --json`, 2, 'give at most one of --json, --raw, --config'],
  ['inspect', 2, 'missing argument; usage: nixreg inspect <source> (see nixreg inspect --help)'],
  [`export $T/tiny.tar`, 2, 'Missing required argument: output (see nixreg export --help)'],
  ['merge', 2, 'missing argument; usage: nixreg merge <inputs..> (see nixreg merge --help)'],
  [`inspect $T/tiny.tar --timeout 5parsecs`, 2, '--timeout takes a duration like 30s, 500ms or 2m, got "5parsecs"'],
  [`inspect docker://$C/a/b:1`, 1, 'cannot reach registry $C: connection refused'],
  // export: hostile layers, existing output
  [`export $T/hostile-dotdot.tar ${O}`, 1, `${HOSTILE}$L:dotdot): entry "../../escaped-by-dotdot" has a ".." component (path traversal)`],
  [
    `export $T/hostile-symparent.tar ${O}`,
    1,
    `export: layer 1/2 (sha256:$L0:symparent): entry "a" is a symlink, but "a/escaped-by-symlink" (layer 2/2 (sha256:$L:symparent)) lies under it (entry under a symlinked or non-directory parent)`,
  ],
  [
    `export $T/hostile-symsame.tar ${O}`,
    1,
    `${HOSTILE}$L:symsame): entry "a/escaped-by-symlink" lies under "a", which is a symlink, not a directory (refusing to write through it)`,
  ],
  [
    `export $T/hostile-hardlink.tar ${O}`,
    1,
    `${HOSTILE}$L:hardlink): entry "l" is a hard link to "../../../etc/passwd", which has a ".." component (path traversal)`,
  ],
  [`export $T/tiny.tar -o $T/exists.tar`, 2, 'output $T/exists.tar already exists; remove it or pass --force'],
  [`export $T/tiny.tar -o $T/nodir/fs.tar`, 1, 'cannot write output $T/nodir/fs.tar: no such file or directory'],
  [`export $T/missing.tar ${O}`, 2, 'source $T/missing.tar does not exist (for a registry image write docker://$T/missing.tar)'],
  // merge
  [`merge $T/missing.tar $T/tiny.tar ${O}`, 2, 'merge input $T/missing.tar does not exist'],
  [`merge $T/notar.bin ${O}`, 2, 'merge input $T/notar.bin is not a tar archive (nor gzip/zstd)'],
  [`merge $T/tiny.tar -o $T/exists.tar`, 2, 'output $T/exists.tar already exists; remove it or pass --force'],
  [`merge $T/tiny.tar ${O} --compress xz`, 2, '--compress "xz" is not one of "none", "gz", "gzip", "zstd" (see nixreg merge --help)'],
  // stream / build output formats
  [
    `stream ${CONF} --store-root $S --format oci -o $T/existsdir`,
    2,
    'output $T/existsdir is a non-empty directory that is not an OCI layout (no oci-layout and index.json); choose another directory',
  ],
  [`stream ${CONF} --store-root $S --format oci-archive -o $T/exists.tar`, 2, 'output $T/exists.tar already exists; remove it or pass --force'],
  [`stream ${CONF} --store-root $S -o $T/exists.tar`, 2, 'output $T/exists.tar already exists; remove it or pass --force'],
  [`stream ${CONF} --format oci`, 2, '--format oci writes a directory: give -o DIR'],
  [`stream ${CONF} ${O} --compression lz4`, 2, '--compression "lz4" is not one of "gzip", "zstd", "none" (see nixreg stream --help)'],
  [
    `stream ${CONF} ${O} --compression zstd`,
    2,
    '--compression applies to --format oci/oci-archive (layers); for a compressed docker-archive use --compress gz|zstd',
  ],
  [`stream ${CONF} --format oci ${O} --compress gz`, 2, '--compress applies to docker-archive outputs; --format oci compresses each layer (--compression)'],
  [`stream ${CONF} --format oci ${O} --compression-level 99`, 2, '--compression-level for gzip must be an integer from 1 to 9'],
  [`stream ${CONF} --format oci-archive ${O} --compression zstd --compression-level 0`, 2, '--compression-level for zstd must be an integer from 1 to 19'],
  [`stream ${CONF} ${O} --compress xz`, 2, '--compress must be none, gz or zstd (got xz)'],
  [`build --name a:1 --path /nix/store/x --format oci -o -`, 2, '--format oci writes a directory: give -o DIR'],
  // build --single-layer refusals
  [
    `build --name a:1 --path /nix/store/x --single-layer ${O} --format oci`,
    2,
    '--format/--compression/--compress are not supported with --single-layer yet: it writes an uncompressed docker-archive (convert it with nixreg push or skopeo copy)',
  ],
  [`build --name a:1 --path /nix/store/x --single-layer ${O} --from-image $T/tiny.tar`, 2, '--from-image cannot be used with --single-layer'],
  [`build --name a:1 --path /nix/store/x ${O} --overlay $T/emptydir`, 2, '--overlay/--uid/--gid need --single-layer'],
  [
    `build --name a:1 --path /nix/store/x --single-layer ${O} --write-conf $T/out/c.json`,
    2,
    '--write-conf is for layered builds; --single-layer writes the image only (-o)',
  ],
  [`build --name a:1 --path /nix/store/x --single-layer`, 2, 'give -o FILE (or - for stdout) for the image'],
  [`build --name a:1 --path /nix/store/x --single-layer ${O} --overlay $T/nope`, 2, '--overlay $T/nope: no such file or directory'],
  [`build --name a:1 --path /nix/store/x --single-layer ${O} --overlay $T/exists.tar`, 2, '--overlay $T/exists.tar is not a directory'],
  [
    `build --name a:1 --path /nix/store/x --single-layer ${O} --store-root $T`,
    2,
    '--store-root needs --graph: the closure of a store that is not /nix/store cannot be asked from Nix',
  ],
  [`build --name a:1 --path /nix/store/x --single-layer ${O} --graph $T/nograph.json`, 2, 'cannot read graph $T/nograph.json: no such file or directory'],
  [`build --name a:1 --path /nix/store/x --single-layer ${O} --uid -1`, 2, '--uid: expected a non-negative integer, got -1'],
  // push: what the source is, and the flags
  [`push $T/missing.tar docker://h/r:1`, 2, 'source $T/missing.tar: no such file or directory'],
  [`push conf:$T/missing.json docker://h/r:1`, 2, 'cannot read conf $T/missing.json: no such file or directory'],
  [`push $T/missing.json docker://h/r:1`, 2, 'cannot read conf $T/missing.json: no such file or directory'],
  [`push $T/emptydir docker://h/r:1`, 2, 'source $T/emptydir is a directory without an oci-layout file (not an OCI image layout)'],
  [`push docker-archive:$T/missing.tar docker://h/r:1`, 2, 'docker-archive $T/missing.tar does not exist'],
  [`push $T/two.tar docker://h/r:1`, 2, 'docker-archive $T/two.tar holds 2 images; name one as docker-archive:PATH:NAME:TAG or :@N (tags: a/one:1, a/two:1)'],
  [`push $T/layout docker://h/r:1`, 2, 'oci $T/layout holds 2 images; name one as oci:PATH:REF (refs: one, two)'],
  [`push $T/tiny.tar docker://h/r:1 --compression zstd`, 2, '--compression zstd needs --format oci (Docker schema2 has no zstd layer type)'],
  [`push ${CONF} docker://h/r:1 --compression zstd --format docker`, 2, '--compression zstd needs --format oci (Docker schema2 has no zstd layer type)'],
  [`push ${CONF} docker://h/r:1 --compression-level 42`, 2, '--compression-level for gzip must be an integer from 1 to 9'],
  [`push $T/tiny.tar docker://h/r:1 -o $T/out/x.tar`, 2, '--output, --store-root and -t apply to a conf.json source, not an image archive'],
  [`push $T/tiny.tar docker://h/r:1 --chunk-size 0`, 2, '--chunk-size must be a size in bytes like 8M or 1048576, got "0"'],
  [`push $T/tiny.tar docker://h/r:1 --chunk-size 1.5M`, 2, '--chunk-size must be a size in bytes like 8M or 1048576, got "1.5M"'],
  [`push $T/tiny.tar docker://h/r:1 --chunk-size=-4k`, 2, '--chunk-size must be a size in bytes like 8M or 1048576, got "-4k"'],
  [`push $T/tiny.tar docker://h/r:1 --timeout 0`, 2, '--timeout must be more than 0'],
  [`push $T/tiny.tar docker://h/r:1 --timeout soon`, 2, '--timeout takes a duration like 30s, 500ms or 2m, got "soon"'],
  [`push $T/tiny.tar docker://h/r:1 --retry-times 1.5`, 2, '--retry-times must be a whole number, 0 or more'],
  [`push $T/tiny.tar docker://h/r:1 --retry-times -1`, 2, '--retry-times must be a whole number, 0 or more'],
  [`push $T/tiny.tar docker://h/r:1 --retry-max-time 5y`, 2, '--retry-max-time takes a duration like 30s, 500ms or 2m, got "5y"'],
  [`push $T/tiny.tar docker://h/r:1 --max-manifest-size 0`, 2, '--max-manifest-size must be a size in bytes like 8M or 1048576, got "0"'],
  [`pull a ${O} --max-manifest-size lots`, 2, '--max-manifest-size must be a size in bytes like 8M or 1048576, got "lots"'],
  // --max-manifest-size: the default 4 MiB refuses the 5 MiB manifest everywhere a manifest is read
  [`pull $BIG/big/img:1 ${O}`, 1, 'manifest $BIG/big/img:1 is 5242880 bytes, more than the 4194304-byte limit; raise the limit with --max-manifest-size'],
  [
    `pull $BIG/big/img:1 ${O} --max-manifest-size 5000000`,
    1,
    'manifest $BIG/big/img:1 is 5242880 bytes, more than the 5000000-byte limit; raise the limit with --max-manifest-size',
  ],
  [
    `prefetch $BIG/big/img 1 --tls-verify=false`,
    1,
    'manifest $BIG/big/img:1 is 5242880 bytes, more than the 4194304-byte limit; raise the limit with --max-manifest-size',
  ],
  [
    `inspect docker://$BIG/big/img:1 --tls-verify=false`,
    1,
    'manifest $BIG/big/img:1 is 5242880 bytes, more than the 4194304-byte limit; raise the limit with --max-manifest-size',
  ],
  [
    `push docker://$BIG/big/img:1 docker://$C/x/y:1 --tls-verify=false`,
    1,
    'manifest $BIG/big/img:1 is 5242880 bytes, more than the 4194304-byte limit; raise the limit with --max-manifest-size',
  ],
  // (with the flag the manifest is read, and the push gets as far as the destination)
  [`push docker://$BIG/big/img:1 docker://$C/x/y:1 --tls-verify=false --max-manifest-size 8M`, 1, 'cannot reach registry $C: connection refused'],
];

describe('every error of the source-reading commands, pinned', () => {
  it(`${CASES.length} invocations print exactly their one line and exit code, and leave no output`, async () => {
    const manifestBlob = readdirSync(join(root, 'layout/blobs/sha256')).find((h) =>
      readFileSync(join(root, 'layout/blobs/sha256', h))
        .toString()
        .includes(OCI_MANIFEST),
    )!;
    // the hostile archives' layer digests as the export messages name them: $L0:name the first, $L:name the last
    const layersOf = (name: string) => /"Layers":\[([^\]]*)\]/.exec(readFileSync(join(root, `hostile-${name}.tar`), 'latin1'))![1]!.match(/[0-9a-f]{64}/g)!;
    const expand = (s: string) =>
      sub(s)
        .replace('$MANIFEST', `sha256:${manifestBlob}`)
        .replace(/\$L0:(\w+)/g, (_x, n: string) => layersOf(n)[0]!)
        .replace(/\$L:(\w+)/g, (_x, n: string) => layersOf(n).at(-1)!);
    const failures = await pinnedErrorFailures(
      CASES,
      (args, i) =>
        sub(args)
          .replace('$I', String(i))
          .split(' ')
          .filter(Boolean)
          .map((a) => (a === "''" ? '' : a)),
      expand,
      (argv) => runCli(argv, { env: env() }),
    );
    expect(failures.join('\n')).toBe('');
    expect(readdirSync(join(root, 'out'))).toEqual([]); // no partial or temp file from any failure
    expect(readdirSync(join(root, 'existsdir'))).toEqual(['notes.txt']); // an existing non-layout directory is left alone
    expect(readFileSync(join(root, 'exists.tar'), 'utf8')).toBe('x');
    expect(existsSync(join(root, 'escaped-by-dotdot')) || existsSync('/tmp/escaped-by-symlink')).toBe(false);
  }, 120_000);

  it('--max-manifest-size 8M accepts the 5 MiB manifest on pull, prefetch and docker:// sources', async () => {
    const out = join(root, 'big.tar');
    const pull = await runCli(['pull', `${BIGREG}/big/img:1`, '-o', out, '--max-manifest-size', '8M'], { env: env() });
    expect(errorLines(pull.stderr)).toEqual([]);
    expect(pull.status).toBe(0);
    // the archive holds the served layer, byte for byte
    const { stdoutBytes } = await runCli(['inspect', `docker-archive:${out}`, '--raw'], { env: env() });
    expect(JSON.parse(stdoutBytes.toString()).layers[0].digest).toBe(sha(bigLayer));

    const inspect = await runCli(['inspect', `docker://${BIGREG}/big/img:1`, '--tls-verify=false', '--max-manifest-size', '8M', '--raw'], { env: env() });
    expect(inspect.status, inspect.stderr).toBe(0);
    expect(inspect.stdoutBytes.equals(bigManifest)).toBe(true);

    const prefetch = await runCli(['prefetch', `${BIGREG}/big/img`, '1', '--tls-verify=false', '--max-manifest-size', '8M'], { env: env() });
    expect(prefetch.status, prefetch.stderr).toBe(0);
    expect(prefetch.stdout).toContain(sha(bigManifest));
  }, 60_000);

  it('an http_proxy that drops the CONNECT tunnel fails after the normal retries, in one line, not in an endless reconnect loop', async () => {
    // undici would reconnect at once, forever (333,000 connections in 90 s) when the proxy reads CONNECT and closes
    let connections = 0;
    const proxy = createTcpServer((sock) => {
      connections++;
      sock.once('data', () => sock.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const port = (proxy.address() as { port: number }).port;
      const started = Date.now();
      const r = await runCli(['inspect', 'docker://registry.invalid/a/b:1', '--retry-times', '1'], {
        env: { ...env(), http_proxy: `http://127.0.0.1:${port}`, HTTP_PROXY: '', https_proxy: '', HTTPS_PROXY: '', no_proxy: '', NO_PROXY: '' },
      });
      expect(r.stderr).toBe(
        'nixreg: cannot reach registry registry.invalid: the proxy closed the connection instead of opening a tunnel; check https_proxy / http_proxy / no_proxy\n',
      );
      expect(r.status).toBe(1);
      expect(connections).toBe(2); // the first attempt and its one retry
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  }, 30_000);
});
