import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { NixregError } from '../../src/errors.js';
import { MAX_MANIFEST_BYTES, MediaType } from '../../src/manifest/media-types.js';
import { parseStreamConf } from '../../src/nix/stream/conf.js';
import { streamImageToFile } from '../../src/nix/stream/index.js';
import { TarArchive } from '../../src/nix/stream/tar-reader.js';

/**
 * Limits: manifest bodies are capped (4 MiB default, configurable) and a registry that declares 1 GiB
 * or streams without end is cut off without buffering; blobs of any size stream with flat memory; a conf with
 * thousands of layers works. Everything against purpose-built loopback servers.
 */
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

let server: Server;
let host: string;
/** Bytes each route managed to send before the client hung up (proves "cut off", not "read to the end"). */
const sent: Record<string, number> = {};

/** Write CHUNK until `total` bytes (or forever), respecting backpressure; stop when the client goes away. */
function pour(res: ServerResponse, key: string, total = Infinity): void {
  sent[key] = 0;
  let closed = false;
  res.on('close', () => (closed = true));
  const more = () => {
    while (!closed && sent[key]! < total) {
      const n = Math.min(CHUNK.length, total - sent[key]!);
      sent[key]! += n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void res.once('drain', more);
    }
    if (!closed) res.end();
  };
  more();
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const m = /^\/v2\/limits\/(\w+)\/(manifests|blobs)\//.exec(url);
    switch (m?.[1]) {
      case 'declared': // claims 1 GiB up front
        res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': String(GiB) });
        return pour(res, 'declared', GiB);
      case 'endless': // chunked, no Content-Length, never ends
        res.writeHead(200, { 'content-type': MediaType.ociManifest });
        return pour(res, 'endless');
      case 'fivek': {
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: 'sha256:' + 'a'.repeat(64), size: 2 },
          layers: [],
          annotations: { pad: 'x'.repeat(5000) },
        });
        return res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': String(Buffer.byteLength(body)) }).end(body);
      }
      case 'hugeblob': // 512 MiB of one byte value
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(512 * MiB) });
        return pour(res, 'hugeblob', 512 * MiB);
      case 'endlessblob':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return pour(res, 'endlessblob');
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const client = (repo: string, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) =>
  new RegistryClient({ registry: host, repository: `limits/${repo}`, retry: { times: 0 }, timeoutMs: 10_000, ...extra });

async function failure(p: Promise<unknown>): Promise<NixregError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NixregError);
  return err as NixregError;
}

describe('manifest size cap', () => {
  it('a declared 1 GiB manifest is refused from its Content-Length', async () => {
    const c = client('declared');
    const err = await failure(c.getManifest('v1'));
    expect(err.message).toBe(
      `manifest ${host}/limits/declared:v1 is ${GiB} bytes, more than the ${MAX_MANIFEST_BYTES}-byte limit; raise the limit with --max-manifest-size`,
    );
    await c.close();
    expect(sent.declared).toBeLessThan(16 * MiB);
  });

  it('an endless manifest body without Content-Length is cut off at the limit', async () => {
    const before = process.memoryUsage().rss;
    const c = client('endless');
    const err = await failure(c.getManifest('v1'));
    expect(err.message).toBe(
      `manifest ${host}/limits/endless:v1 is larger than the ${MAX_MANIFEST_BYTES}-byte limit; raise the limit with --max-manifest-size`,
    );
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(sent.endless).toBeLessThan(MAX_MANIFEST_BYTES + 32 * MiB); // socket buffers, not the whole stream
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * MiB);
  });

  it('the limit is configurable (maxManifestBytes)', async () => {
    const small = client('fivek', { maxManifestBytes: 4096 });
    expect((await failure(small.getManifest('v1'))).message).toMatch(
      /^manifest 127\.0\.0\.1:\d+\/limits\/fivek:v1 is \d+ bytes, more than the 4096-byte limit; raise the limit with --max-manifest-size$/,
    );
    await small.close();
    const dflt = client('fivek');
    expect((await dflt.getManifest('v1')).bytes.length).toBeGreaterThan(5000);
    await dflt.close();
  });
});

describe('blobs stream with flat memory', () => {
  it('512 MiB of blob pass through with bounded RSS growth, then fail verification naming both digests', async () => {
    const c = client('hugeblob');
    const fake = 'sha256:' + 'f'.repeat(64);
    const stream = await c.getBlob(fake, { size: 512 * MiB });
    let n = 0;
    let baseline = 0;
    let peak = 0;
    const hash = createHash('sha256');
    const err = await (async () => {
      for await (const chunk of stream) {
        n += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
        if (!baseline && n >= 16 * MiB) baseline = process.memoryUsage().rss; // after buffers and JIT warm up
        if (baseline && (n & (8 * MiB - 1)) < (chunk as Buffer).length) peak = Math.max(peak, process.memoryUsage().rss);
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    await c.close();
    expect(n).toBe(512 * MiB);
    expect(err).toBeInstanceOf(NixregError);
    expect((err as Error).message).toBe(`blob ${host}/limits/hugeblob@${fake}: digest mismatch: expected ${fake}, got sha256:${hash.digest('hex')}`);
    // Growth while 496 MiB more flowed: a buffered blob would be >= 496 MiB.
    console.info(`limits: RSS growth while streaming 496 MiB of blob: ${((peak - baseline) / MiB).toFixed(1)} MiB`);
    expect(peak - baseline).toBeLessThan(96 * MiB);
  }, 120_000);

  it('a blob body longer than its descriptor is cut off as soon as it passes the size', async () => {
    const c = client('endlessblob');
    const d = 'sha256:' + 'e'.repeat(64);
    const err = await failure(
      (async () => {
        for await (const _ of await c.getBlob(d, { size: MiB }));
      })(),
    );
    expect(err.message).toBe(`blob ${host}/limits/endlessblob@${d}: size mismatch: expected ${MiB} bytes, got more`);
    expect(err.exitCode).toBe(5);
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(sent.endlessblob).toBeLessThan(64 * MiB);
  });
});

describe('confs with thousands of layers', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'nixreg-limits-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('streams a 2000-layer conf into a valid archive listing every layer in order', async () => {
    const LAYERS = 2000;
    const store = join(root, 'nix', 'store');
    mkdirSync(store, { recursive: true });
    const hashPart = (i: number) =>
      i
        .toString(32)
        .padStart(32, '0')
        .replace(/[eotu]/g, 'a');
    const paths: string[] = [];
    for (let i = 0; i < LAYERS; i++) {
      const name = `${hashPart(i)}-p${i}`;
      writeFileSync(join(store, name), `file ${i}\n`);
      paths.push(`/nix/store/${name}`);
    }
    const cust = join(store, `${'c'.repeat(32)}-customisation`);
    mkdirSync(cust);
    const emptyTar = Buffer.alloc(1024);
    writeFileSync(join(cust, 'layer.tar'), emptyTar);
    writeFileSync(join(cust, 'checksum'), createHash('sha256').update(emptyTar).digest('hex'));
    const conf = parseStreamConf(
      JSON.stringify({
        architecture: 'amd64',
        config: {},
        store_dir: '/nix/store',
        from_image: null,
        store_layers: paths.map((p) => [p]),
        customisation_layer: `/nix/store/${'c'.repeat(32)}-customisation`,
        repo_tag: 'many:layers',
        created: '1970-01-01T00:00:01+00:00',
        mtime: '1970-01-01T00:00:01+00:00',
        uid: 0,
        gid: 0,
        uname: 'root',
        gname: 'root',
      }),
    );
    const out = join(root, 'image.tar');
    await streamImageToFile(conf, out, { storeRoot: root });
    const archive = await TarArchive.open(out, (m) => m.name.endsWith('.json'));
    const manifest = JSON.parse(archive.getMember('manifest.json')!.data!.toString()) as [{ Layers: string[]; Config: string }];
    expect(manifest[0].Layers.length).toBe(LAYERS + 1);
    const config = JSON.parse(archive.getMember(manifest[0].Config)!.data!.toString()) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids.length).toBe(LAYERS + 1);
    // Layer 1234 holds exactly store path 1234, and its diff_id is the sha256 of its bytes.
    const layer = archive.getMember(manifest[0].Layers[1234]!)!;
    const bytes = await archive.readMember(layer);
    expect(bytes.includes(Buffer.from(paths[1234]!.slice(1)))).toBe(true);
    expect(bytes.includes(Buffer.from(paths[1235]!.slice(1)))).toBe(false);
    expect(bytes.includes(Buffer.from('file 1234\n'))).toBe(true);
    expect('sha256:' + createHash('sha256').update(bytes).digest('hex')).toBe(config.rootfs.diff_ids[1234]);
    await archive.close();
    expect(readFileSync(out).subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
  }, 120_000);
});
