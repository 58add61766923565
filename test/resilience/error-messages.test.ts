import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinnedErrorFailures } from '../helpers/cli.js';

/**
 * Error wording (every error message a user can hit has a test that pins its wording): a table of
 * CLI invocations, each pinning the exact one-line stderr and the exit code, and that no output file is left.
 * Registry failures come from a purpose-built loopback registry whose repositories each misbehave one way.
 * Needs dist/ built (npx tsc -p tsconfig.json).
 */
const BIN = join(resolve(import.meta.dirname, '../..'), 'bin/nixreg.js');
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

// ---------------------------------------------------------------- a registry that fails on purpose

function tar(name: string, data: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(Buffer.byteLength(data).toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('0', 156);
  h.write('ustar\x0000', 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const body = Buffer.from(data);
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512), Buffer.alloc(1024)]);
}

interface Image {
  manifest: Buffer;
  config: Buffer;
  layer: Buffer;
}
function image(diffIds?: string[]): Image {
  const raw = tar('hello', 'hello\n');
  const layer = gzipSync(raw);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds ?? [sha(raw)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    }),
  );
  return { manifest, config, layer };
}
const OK = image();
const TWO_DIFF_IDS = image([sha(Buffer.from('a')), sha(Buffer.from('b'))]);
const INDEX = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest: sha(OK.manifest), size: OK.manifest.length, platform: { os: 'linux', architecture: 'amd64' } }],
  }),
);
const blobs = new Map<string, Buffer>([OK.config, OK.layer, TWO_DIFF_IDS.config].map((b) => [sha(b), b]));

function registryError(res: ServerResponse, status: number, code: string, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code, message }] }));
}

/** One repository per failure: `/v2/<ns>/<repo>/...`. */
function fakeRegistry(req: IncomingMessage, res: ServerResponse) {
  const url = req.url ?? '';
  if (url === '/v2/') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  const m = /^\/v2\/([a-z0-9]+\/[a-z0-9]+)\/(manifests|blobs)\/(.*)$/.exec(url);
  if (!m) return registryError(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry');
  const [, repo, kind, ref] = m;
  if (repo === 'bad/denied') return registryError(res, 403, 'DENIED', 'requested access to the resource is denied');
  const manifest = (body: Buffer, type = OCI_MANIFEST) =>
    res
      .writeHead(200, { 'content-type': type, 'content-length': String(body.length), 'docker-content-digest': sha(body) })
      .end(req.method === 'HEAD' ? undefined : body);
  if (kind === 'blobs') {
    const b = blobs.get(ref!);
    if (!b) return registryError(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
    const out = repo === 'bad/flip' && ref === sha(OK.layer) ? Buffer.from(b).fill(0x42, 20, 21) : b;
    return res.writeHead(200, { 'content-length': String(out.length) }).end(out);
  }
  switch (repo) {
    case 'ok/img':
    case 'bad/flip':
      return manifest(OK.manifest);
    case 'ok/index':
      return ref === sha(OK.manifest) ? manifest(OK.manifest) : manifest(INDEX, OCI_INDEX);
    case 'bad/diffids':
      return manifest(TWO_DIFF_IDS.manifest);
    case 'bad/schema1':
      return manifest(Buffer.from('{"schemaVersion":1,"name":"bad/schema1","fsLayers":[]}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws');
    case 'bad/json':
      return manifest(Buffer.from('<html>not a manifest</html>'));
    case 'bad/shape':
      return manifest(
        Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: 'md5:1', size: 1 }, layers: [] })),
      );
    case 'bad/big':
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(5 * 1024 * 1024) });
      return res.end(Buffer.alloc(5 * 1024 * 1024, 0x20));
    case 'bad/denied':
      return registryError(res, 403, 'DENIED', 'requested access to the resource is denied');
    case 'bad/broken':
      return registryError(res, 500, 'UNKNOWN', 'storage backend unavailable');
    default:
      return registryError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
  }
}

// ---------------------------------------------------------------- harness

let root: string;
const servers: Server[] = [];
let REG = ''; // the fake registry
let NOV2 = ''; // /v2/ answers 404
let V2FAIL = ''; // /v2/ answers 503
let BASIC = ''; // wants Basic credentials for everything
let CLOSED = ''; // nothing listens

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(s.address() as { port: number }).port}`;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nixreg-errors-'));
  mkdirSync(join(root, 'out'));
  mkdirSync(join(root, 'home'));
  writeFileSync(join(root, 'exists.tar'), 'x');
  writeFileSync(join(root, 'bad.json'), '{');
  writeFileSync(join(root, 'empty.json'), '{}');
  writeFileSync(join(root, 'notjson-auth.json'), '{"auths": {');
  writeFileSync(join(root, 'typed-auth.json'), '{"auths": {"x": {"auth": 5}}}');
  writeFileSync(join(root, 'conf-notag.json'), JSON.stringify({ ...validConf(), repo_tag: null }));
  writeFileSync(join(root, 'conf-nocust.json'), JSON.stringify({ ...validConf(), customisation_layer: '/nix/store/cccccccccccccccccccccccccccccccc-missing' }));
  writeFileSync(join(root, 'conf-uid.json'), JSON.stringify({ ...validConf(), uid: 'root' }));
  writeFileSync(join(root, 'conf-outside.json'), JSON.stringify({ ...validConf(), store_layers: [['/usr/lib/x']] }));
  copyFileSync(join(resolve(import.meta.dirname, '..'), 'fixtures/docker-archive/skopeo-tiny.tar'), join(root, 'tiny.tar'));
  mkdirSync(join(root, 'nix', 'store'), { recursive: true });
  writeFileSync(join(root, 'nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-base.tar'), 'not a tar\n');
  writeFileSync(join(root, 'conf-nobase.json'), JSON.stringify({ ...validConf(), from_image: '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-missing.tar' }));
  writeFileSync(join(root, 'conf-badbase.json'), JSON.stringify({ ...validConf(), from_image: '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-base.tar' }));
  writeFileSync(join(root, 'conf-time.json'), JSON.stringify({ ...validConf(), created: 'yesterday' }));
  REG = await serve(fakeRegistry);
  NOV2 = await serve((_q, r) => r.writeHead(404).end());
  V2FAIL = await serve((_q, r) => r.writeHead(503).end());
  BASIC = await serve((_q, r) => r.writeHead(401, { 'www-authenticate': 'Basic realm="errors"' }).end());
  const c = await serve(() => {});
  CLOSED = c;
  await new Promise((r) => servers.pop()!.close(r));
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(root, { recursive: true, force: true });
});

function validConf() {
  return {
    architecture: 'amd64',
    config: {},
    store_dir: '/nix/store',
    from_image: null,
    store_layers: [],
    customisation_layer: '/nix/store/cccccccccccccccccccccccccccccccc-c',
    repo_tag: 'a:b',
    created: '1970-01-01T00:00:01+00:00',
    mtime: '1970-01-01T00:00:01+00:00',
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
  };
}

function nixreg(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn('node', [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: join(root, 'home'), XDG_RUNTIME_DIR: join(root, 'home'), NIXREG_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

// ---------------------------------------------------------------- the table

const D = 'sha256:' + 'b'.repeat(64);
/** `$R` etc. are replaced at run time (ports are only known then); `$T` is the temp dir. */
type Case = [args: string, code: number, stderr: string];
const O = '-o $T/out/$I.tar'; // one output per case: none may appear

const CASES: Case[] = [
  // command line
  ['', 2, 'name a command (see nixreg --help)'],
  ['frobnicate', 2, 'Unknown argument: frobnicate (see nixreg --help)'],
  ['pull', 2, 'missing argument; usage: nixreg pull <imageName> (see nixreg pull --help)'],
  ['pull a --jobs 0', 2, '--jobs must be a positive integer'], // no -o: the default file name, checked before any request
  [`pull a ${O} --sha256 x --hash y`, 2, 'give either --sha256 or --hash, not both'],
  ['pull a --json -o -', 2, '--json prints to stdout, so it cannot be combined with -o -'],
  [`pull a ${O} --jobs 0`, 2, '--jobs must be a positive integer'],
  [`pull a ${O} --timeout 5parsecs`, 2, '--timeout takes a duration like 30s, 500ms or 2m, got "5parsecs"'],
  [`pull a ${O} --timeout 0`, 2, '--timeout must be more than 0'],
  [`pull a ${O} --retry-max-time soon`, 2, '--retry-max-time takes a duration like 30s, 500ms or 2m, got "soon"'],
  [`pull a ${O} --retry-times -1`, 2, '--retry-times must be a whole number, 0 or more'],
  [`pull a ${O} --creds :pw`, 2, '--creds must be USERNAME[:PASSWORD]'],
  ['prefetch a b c', 2, 'prefetch takes at most 2 positionals (IMAGE_NAME [IMAGE_TAG|IMAGE_DIGEST]), got 3'],
  ['prefetch', 2, 'prefetch: no image name; give IMAGE_NAME or --image-name'],
  ['prefetch a --platform foo', 2, '--platform takes "all" or os/arch[/variant] like linux/arm64/v8, got "foo"'],
  ['push a', 2, 'give a source and a destination: nixreg push conf.json docker://REGISTRY/REPO:TAG'],
  ['push a docker://h/r --jobs 0', 2, '--jobs must be a positive integer'],
  ['push a docker://h/r:1 --chunk-size 8Q', 2, '--chunk-size must be a size in bytes like 8M or 1048576, got "8Q"'],
  ['hash', 2, 'missing argument; usage: nixreg hash <input> (see nixreg hash --help)'],
  // references, digests, hashes
  [`pull Bad_Name! ${O}`, 2, 'invalid image reference "Bad_Name!": repository name must be lowercase'],
  [
    `pull a:b:c ${O}`,
    2,
    'invalid image reference "a:b:c": repository "library/a:b" must be lowercase [a-z0-9] components separated by "/", ".", "_", "__" or "-"',
  ],
  [`pull a_b.c:1/x ${O}`, 2, 'invalid image reference "a_b.c:1/x": registry "a_b.c:1" is not a valid host[:port]'],
  [
    `pull a:${'t'.repeat(129)} ${O}`,
    2,
    `invalid image reference "a:${'t'.repeat(129)}": tag "${'t'.repeat(129)}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`,
  ],
  [
    `pull ${'a'.repeat(64).replace(/a/g, 'f')} ${O}`,
    2,
    `invalid image reference "${'f'.repeat(64)}": a 64-character hex string is an image ID, not a name; use name@sha256:<hex>`,
  ],
  [`pull a@sha256:12 ${O}`, 2, 'invalid image reference "a@sha256:12": digest "sha256:12" is not sha256:<64 lowercase hex>'],
  [
    `pull a-${'b'.repeat(40)}! ${O}`,
    2,
    `invalid image reference "a-${'b'.repeat(40)}!": repository "library/a-${'b'.repeat(40)}!" must be lowercase [a-z0-9] components separated by "/", ".", "_", "__" or "-"`,
  ],
  [`pull $R/ok/img --digest sha256:xyz ${O}`, 2, '--digest "sha256:xyz" is not a valid digest; expected sha256:<64 lowercase hex>'],
  [`pull $R/ok/img --digest sha512:abc ${O}`, 2, '--digest "sha512:abc" uses sha512, which nixreg does not support'],
  [`pull $R/ok/img@${D} --digest sha256:${'c'.repeat(64)} ${O}`, 2, `$R/ok/img@${D} names digest ${D} but --digest is sha256:${'c'.repeat(64)}`],
  [`pull a ${O} --sha256 zzz`, 2, '"zzz" is not a sha256 hash (expected nix base32, hex or SRI sha256-...)'],
  [`pull a ${O} --hash sha256-AAAA`, 2, '"sha256-AAAA" is not a valid SRI sha256 hash'],
  ['hash sha1-abc', 2, '"sha1-abc": only sha256 hashes are supported'],
  [`hash ${'e'.repeat(52)}`, 2, `invalid character "e" in nix base32 hash "${'e'.repeat(52)}"`],
  [`hash ${'z'.repeat(52)}`, 2, `nix base32 hash "${'z'.repeat(52)}" has bits set past its length`],
  ['hash --file $T/nonexistent', 1, 'cannot read $T/nonexistent: no such file or directory'],
  // files: outputs, confs, auth files
  [`pull $R/ok/img -o $T/exists.tar`, 2, 'output $T/exists.tar already exists; remove it or pass --force'],
  [`pull $R/ok/img -o $T/nodir/o.tar`, 1, 'cannot write output $T/nodir/o.tar: no such file or directory'],
  ['stream $T/nonexistent.json', 2, 'cannot read conf $T/nonexistent.json: no such file or directory'],
  ['stream $T/out', 2, 'cannot read conf $T/out: is a directory'],
  ['stream $T/bad.json', 2, '$T/bad.json: not valid JSON (expected a string key at offset 1)'],
  ['stream $T/empty.json', 2, '$T/empty.json: missing key "config"'],
  ['stream $T/conf-notag.json', 2, 'conf has no repo_tag; pass -t NAME:TAG'],
  ['stream $T/conf-uid.json', 2, '$T/conf-uid.json: key "uid" must be an integer or a string holding one, got "root"'],
  ['stream $T/conf-outside.json', 2, '$T/conf-outside.json: store_layers[0]: "/usr/lib/x" is not under store_dir /nix/store'],
  ['stream $T/conf-time.json', 2, '$T/conf-time.json: key "created": "yesterday" is not an ISO 8601 time (e.g. 1970-01-01T00:00:01+00:00) or "now"'],
  [
    'stream $T/conf-nocust.json --store-root $T',
    2,
    'customisation_layer /nix/store/cccccccccccccccccccccccccccccccc-missing: cannot read its checksum file (no such file or directory)',
  ],
  // (credentials are looked up when a registry asks for them)
  [`pull $B/a/b:1 ${O} --authfile $T/none.json`, 2, 'auth file $T/none.json does not exist'],
  [`pull $B/a/b:1 ${O} --authfile $T/notjson-auth.json`, 2, 'auth file $T/notjson-auth.json is not valid JSON'],
  [`pull $B/a/b:1 ${O} --authfile $T/typed-auth.json`, 2, 'auth file $T/typed-auth.json: "auth" of "x" must be a string'],
  [`pull $B/a/b:1 ${O} --creds u:p`, 3, '401 from $B for manifest $B/a/b:1 with credentials from --creds: check the username, password and access to a/b'],
  // registries
  [`pull $C/a:1 ${O}`, 1, 'cannot reach registry $C: connection refused'],
  [`pull $N/a:1 ${O}`, 1, '$N does not speak the registry API v2 (GET /v2/ → 404)'],
  [`pull $V/a:1 ${O} --retry-times 0`, 1, 'registry $V answered HTTP 503 to GET /v2/'],
  [`pull $B/a/b:1 ${O}`, 3, '401 from $B for manifest $B/a/b:1 (anonymous): log in (auth file) or pass --creds'],
  [`pull $R/no/such:1 ${O}`, 4, 'manifest $R/no/such:1 not found on $R: MANIFEST_UNKNOWN: manifest unknown'],
  [
    `pull $R/bad/denied:1 ${O}`,
    3,
    '403 from $R for manifest $R/bad/denied:1 (anonymous): log in (auth file) or pass --creds: DENIED: requested access to the resource is denied',
  ],
  [`pull $R/bad/broken:1 ${O} --retry-times 0`, 1, 'manifest $R/bad/broken:1: HTTP 500 from $R: UNKNOWN: storage backend unavailable'],
  [
    `pull $R/bad/schema1:1 ${O}`,
    1,
    'manifest $R/bad/schema1:1 is a Docker schema1 manifest, which is not supported (deprecated since 2017; re-push the image with a current tool)',
  ],
  [`pull $R/bad/json:1 ${O}`, 1, 'invalid manifest $R/bad/json:1: not valid JSON'],
  [`pull $R/bad/shape:1 ${O}`, 1, 'invalid manifest $R/bad/shape:1: config has an invalid or non-sha256 digest'],
  [`pull $R/bad/big:1 ${O}`, 1, 'manifest $R/bad/big:1 is 5242880 bytes, more than the 4194304-byte limit; raise the limit with --max-manifest-size'],
  [`pull $R/no/such@${D} ${O}`, 4, `manifest $R/no/such@${D} not found on $R: MANIFEST_UNKNOWN: manifest unknown`],
  [`pull $R/ok/img@${D} ${O}`, 5, `manifest $R/ok/img@${D}: digest mismatch: expected ${D}, got ${sha(OK.manifest)}`],
  [`pull $R/ok/index:1 ${O} --arch s390x`, 4, 'no image for platform linux/s390x in the index; available: linux/amd64 (use --platform os/arch[/variant])'],
  [
    `pull $R/bad/flip:1 ${O}`,
    5,
    `blob $R/bad/flip@${sha(OK.layer)}: digest mismatch: expected ${sha(OK.layer)}, got ${sha(Buffer.from(OK.layer).fill(0x42, 20, 21))}`,
  ],
  [`pull $R/bad/diffids:1 ${O}`, 5, `$R/bad/diffids@${sha(TWO_DIFF_IDS.manifest)}: the manifest has 1 layers but the config lists 2 diff_ids`],
  [
    `pull $R/ok/img:1 ${O} --sha256 ${'0'.repeat(64)}`,
    5,
    'hash mismatch for $R/ok/img:1: specified: sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= got: $HASH',
  ],
  ['stream $T/conf-nobase.json --store-root $T', 2, 'from_image /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-missing.tar does not exist under --store-root $T'],
  [
    'stream $T/conf-badbase.json --store-root $T',
    2,
    'from_image /nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-base.tar is not a tar archive (empty or shorter than one header)',
  ],
  ['layers', 2, 'missing argument; usage: nixreg layers <graph> (see nixreg layers --help)'],
  ['build', 2, 'Missing required arguments: name, path (see nixreg build --help)'],
  ['push $T/exists.tar docker://h/r:1', 2, 'source $T/exists.tar is not a tar archive (nor gzip/zstd)'],
  ['push $T/tiny.tar foo', 2, 'destination must be docker://REGISTRY/REPOSITORY[:TAG], got "foo"'],
  ['push $T/tiny.tar docker://h/r:1 --additional-tag bad!tag', 2, 'invalid --additional-tag "bad!tag"'],
  ['push $T/tiny.tar docker://$C/a/b:1', 1, 'cannot reach registry $C: connection refused'],
  ['push $T/tiny.tar docker://$B/a/b:1', 3, '401 from $B for blob upload to $B/a/b (anonymous): log in (auth file) or pass --creds'],
  [
    'push $T/tiny.tar docker://$R/bad/denied:1',
    3,
    '403 from $R for blob upload to $R/bad/denied (anonymous): log in (auth file) or pass --creds: DENIED: requested access to the resource is denied',
  ],
  ['prefetch $R/no/such 1', 4, 'manifest $R/no/such:1 not found on $R: MANIFEST_UNKNOWN: manifest unknown'],
  ['prefetch $R/ok/index 1 --arch s390x', 4, 'no image for platform linux/s390x in the index; available: linux/amd64 (use --platform os/arch[/variant])'],
  [
    'push $T/tiny.tar docker://h/r@sha256:' + 'a'.repeat(64),
    2,
    `destination docker://h/r@sha256:${'a'.repeat(64)} names a digest; push to a tag (the digest is printed after the push)`,
  ],
];

describe('every error message, pinned', () => {
  let okHash = '';
  beforeAll(async () => {
    // The archive's SRI hash (needed to pin the --sha256 mismatch message) from a successful pull.
    const r = await nixreg(['pull', `${REG}/ok/img:1`, '-o', join(root, 'ok.tar'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    okHash = (JSON.parse(r.stdout) as { hash: string }).hash;
  });

  it(`${CASES.length} invocations print exactly their one line and exit code, and leave no output`, async () => {
    const sub = (s: string) =>
      s
        .replace(/\$T/g, root)
        .replace(/\$R/g, REG)
        .replace(/\$N/g, NOV2)
        .replace(/\$V/g, V2FAIL)
        .replace(/\$B/g, BASIC)
        .replace(/\$C/g, CLOSED)
        .replace(/\$HASH/g, okHash);
    // A few at a time: each is a process start (~0.3 s); the servers live in this process.
    const failures = await pinnedErrorFailures(CASES, (args, i) => sub(args).replace('$I', String(i)).split(' ').filter(Boolean), sub, nixreg);
    expect(failures.join('\n')).toBe('');
    expect(readdirSync(join(root, 'out'))).toEqual([]); // no partial or temp file from any failure
  }, 120_000);
});
