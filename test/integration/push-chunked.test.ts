import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type LogEntry, type Registry } from '../../mock-registry/index.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { pushConf, type PushResult } from '../../src/sink/registry/push-conf.js';
import { parseChunkSize } from '../../src/cli/commands/push.js';
import { uploadInChunks } from '../../src/sink/registry/chunked-upload.js';
import type { RegistryClientApi, UploadChunkResult } from '../../src/registry/types.js';
import { Readable } from 'node:stream';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';
import { requireTool } from '../helpers/tools.js';

// Chunked blob uploads (OCI "push in chunks": PATCH with Content-Range + Content-Length, OCI-Chunk-Min-Length):
// the automatic fallback when a registry refuses the streamed PATCH, --chunk-size forcing it, 416 recovery, and
// the same image (same digests) as a streamed push, against the mock and against Debian's real distribution.
const repoRoot = join(import.meta.dirname, '../..');
const CASE = join(FIXTURES, 'cases/a-defaults');
const MIN = 4096;

let storeRoot: string;
let tmp: string;
let cacheN = 0;
const freshCache = () => new PushCache(join(tmp, `cache-${cacheN++}`));
const push = (host: string, repoTag: string, extra: Partial<Parameters<typeof pushConf>[0]> = {}) =>
  pushConf({ confFile: join(CASE, 'conf.json'), destination: `docker://${host}/${repoTag}`, storeRoot, tlsVerify: false, cache: freshCache(), ...extra });

const blobPatches = (log: LogEntry[], repo: string) => log.filter((e) => e.method === 'PATCH' && e.name === repo);
const header = (e: LogEntry, h: string) => (e.headers as Record<string, string | undefined>)[h];
const uploadId = (e: LogEntry) => e.url.split('?')[0]!.split('/').pop()!;

/**
 * Every accepted chunk PATCH of each upload: in order, contiguous, and all but the last at least `min` bytes. The
 * config blob (bytes in memory) goes as one PATCH with Content-Length; nothing goes without a length.
 */
function checkChunks(log: LogEntry[], repo: string, min: number): number {
  const byUpload = new Map<string, Array<[number, number]>>();
  for (const e of blobPatches(log, repo).filter((e) => e.status === 202)) {
    expect(header(e, 'content-length'), `PATCH without Content-Length: ${e.url}`).toBeDefined();
    if (header(e, 'content-range') === undefined) continue;
    const m = /^(\d+)-(\d+)$/.exec(header(e, 'content-range')!);
    expect(m, `bad Content-Range: ${header(e, 'content-range')}`).not.toBeNull();
    expect(Number(header(e, 'content-length'))).toBe(Number(m![2]) - Number(m![1]) + 1);
    const list = byUpload.get(uploadId(e)) ?? [];
    list.push([Number(m![1]), Number(m![2])]);
    byUpload.set(uploadId(e), list);
  }
  for (const chunks of byUpload.values()) {
    chunks.forEach(([start, end], i) => {
      expect(start).toBe(i === 0 ? 0 : chunks[i - 1]![1] + 1);
      if (i < chunks.length - 1) expect(end - start + 1).toBeGreaterThanOrEqual(min);
    });
  }
  return [...byUpload.values()].reduce((n, c) => n + c.length, 0);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-chunked-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('chunked uploads against the mock registry', () => {
  let reference: PushResult;
  let plain: Registry;
  beforeAll(async () => {
    plain = await startRegistry();
    reference = await push(plain.host, 'ref/app:1');
  });
  afterAll(() => plain.close());

  it('--chunk-size sends chunks of at least OCI-Chunk-Min-Length, never a streamed PATCH; same digests', async () => {
    const reg = await startRegistry({ rejectStreamedPatch: 415, chunkMinLength: MIN, enforceChunkMinLength: true });
    try {
      const r = await push(reg.host, 'app/x:1', { chunkSize: 1 }); // 1 byte: raised to the registry's minimum
      expect(r.digest).toBe(reference.digest);
      expect(r.layers.map((l) => l.digest)).toEqual(reference.layers.map((l) => l.digest));
      const chunks = checkChunks(reg.log, 'app/x', MIN);
      // more chunks than layers: the larger layers went in several pieces
      expect(chunks).toBeGreaterThan(reference.layers.length);
      expect(blobPatches(reg.log, 'app/x').filter((e) => e.status !== 202)).toEqual([]); // forced: no streamed try
      expect((await fetch(`${reg.url}/v2/app/x/manifests/${r.digest}`)).status).toBe(200);
    } finally {
      await reg.close();
    }
  });

  it('falls back from a refused streamed PATCH (411) to chunks by itself, and stays chunked for that registry', async () => {
    const reg = await startRegistry({ rejectStreamedPatch: 411, chunkMinLength: MIN, enforceChunkMinLength: true });
    try {
      const lines: string[] = [];
      const r = await push(reg.host, 'app/y:1', { log: (l) => lines.push(l), jobs: 1 });
      expect(r.digest).toBe(reference.digest);
      expect(r.stats.uploaded).toBe(reference.layers.length);
      const refused = blobPatches(reg.log, 'app/y').filter((e) => e.status === 411);
      expect(refused.length).toBe(1); // jobs 1: only the first layer tried streaming
      expect(header(refused[0]!, 'content-range')).toBeUndefined();
      expect(lines.some((l) => l.includes('using chunked uploads'))).toBe(true);
      // the refused session was cancelled
      expect(reg.log.some((e) => e.method === 'DELETE' && e.url.includes(uploadId(refused[0]!)))).toBe(true);
      checkChunks(reg.log, 'app/y', MIN);
      // a later push in the same run to the same registry goes chunked at once
      const before = reg.log.length;
      const again = await push(reg.host, 'app/z:1', { jobs: 1 });
      expect(again.digest).toBe(reference.digest);
      const later = reg.log.slice(before);
      expect(blobPatches(later, 'app/z').length).toBeGreaterThan(0);
      expect(blobPatches(later, 'app/z').filter((e) => e.status !== 202)).toEqual([]);
      checkChunks(later, 'app/z', MIN);
    } finally {
      await reg.close();
    }
  });

  it("a 416 on a chunk: asks the upload's status and continues from the registry's offset", async () => {
    const reg = await startRegistry({ chunkMinLength: MIN, faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 416, skip: 1, times: 1 }] });
    try {
      const r = await push(reg.host, 'app/r:1', { chunkSize: MIN, jobs: 1 });
      expect(r.digest).toBe(reference.digest);
      expect(reg.counters.faultsInjected).toBe(1);
      expect(reg.log.filter((e) => e.method === 'GET' && e.route === 'upload').length).toBe(1);
    } finally {
      await reg.close();
    }
  });

  it('--chunk-size parses byte sizes', () => {
    expect(parseChunkSize('4096')).toBe(4096);
    expect(parseChunkSize('8M')).toBe(8 << 20);
    expect(parseChunkSize('64k')).toBe(64 << 10);
    expect(parseChunkSize('1GiB')).toBe(1 << 30);
    expect(() => parseChunkSize('0')).toThrow(/--chunk-size/);
    expect(() => parseChunkSize('lots')).toThrow(/--chunk-size/);
  });
});

/**
 * A registry that stores what it accepts; `onChunk` may answer 416 or 413, apply only part of a chunk first, or
 * accept it with an answer that has no `Range`.
 */
function fakeUploads(onChunk: (n: number, start: number, chunk: Buffer, stored: Buffer[]) => 'ok' | '416' | '413' | 'no-range' | { applied: number }) {
  const stored: Buffer[] = [];
  const size = () => stored.reduce((n, b) => n + b.length, 0);
  let n = 0;
  const calls: string[] = [];
  const client = {
    async uploadChunk(_loc: string, chunk: Buffer, start: number): Promise<UploadChunkResult> {
      calls.push(`PATCH ${start}-${start + chunk.length - 1}`);
      if (start !== size()) return { outOfRange: true };
      const what = onChunk(n++, start, chunk, stored);
      if (what === '416') return { outOfRange: true };
      if (what === '413') return { tooLarge: true };
      if (what === 'no-range') {
        stored.push(Buffer.from(chunk));
        return { location: `/up/${n}` };
      }
      if (what !== 'ok') {
        stored.push(chunk.subarray(0, what.applied)); // e.g. a proxy cut the body, the registry kept a prefix
        return { outOfRange: true };
      }
      stored.push(Buffer.from(chunk));
      return { location: `/up/${n}`, rangeEnd: size() - 1 };
    },
    async uploadStatus(loc: string) {
      calls.push(`GET ${size()}`);
      return { location: loc, offset: size() };
    },
  } as unknown as RegistryClientApi;
  return { client, stored: () => Buffer.concat(stored), calls };
}
const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7) % 251));
const pieces = () => Readable.from([data.subarray(0, 3000), data.subarray(3000, 3100), data.subarray(3100)], { objectMode: false });

describe('uploadInChunks (fake registry)', () => {
  it('sends chunks of at least the chunk size, contiguous, last one short', async () => {
    const f = fakeUploads(() => 'ok');
    expect(await uploadInChunks(f.client, '/up/0', pieces(), 4000)).toBe('/up/1');
    expect(f.stored().equals(data)).toBe(true);
    expect(f.calls).toEqual(['PATCH 0-9999']); // 3000+100 < 4000, then the rest arrives as one piece
  });

  it('continues from the offset the registry reports after a 416 on a partly applied chunk', async () => {
    const f = fakeUploads((n) => (n === 0 ? { applied: 1234 } : 'ok'));
    await uploadInChunks(f.client, '/up/0', pieces(), 3000);
    expect(f.stored().equals(data)).toBe(true);
    // the untaken tail leads the next chunk instead of going alone (it would be shorter than the minimum)
    expect(f.calls).toEqual(['PATCH 0-2999', 'GET 1234', 'PATCH 1234-9999']);
  });

  it('a chunk the registry had already applied (replayed PATCH) is not sent twice', async () => {
    const f = fakeUploads((n, _s, chunk, stored) => {
      if (n === 0) {
        stored.push(Buffer.from(chunk)); // applied, but the answer got lost: 416 on the replay
        return '416';
      }
      return 'ok';
    });
    await uploadInChunks(f.client, '/up/0', pieces(), 3000);
    expect(f.stored().equals(data)).toBe(true);
    expect(f.calls).toEqual(['PATCH 0-2999', 'GET 3000', 'PATCH 3000-9999']);
  });

  it('a 413 on a chunk halves the chunk size and sends the same bytes again in smaller chunks', async () => {
    const f = fakeUploads((_n, _s, chunk) => (chunk.length > 70_000 ? '413' : 'ok'));
    const big = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 13) % 251));
    await uploadInChunks(f.client, '/up/0', Readable.from([big], { objectMode: false }), 256 * 1024);
    expect(f.stored().equals(big)).toBe(true);
    // 256 KiB refused, 128 KiB refused, then 64 KiB chunks (the floor) and the short last one
    expect(f.calls.slice(0, 3)).toEqual(['PATCH 0-299999', 'PATCH 0-131071', 'PATCH 0-65535']);
    expect(f.calls.slice(2).every((c) => /^PATCH (\d+)-(\d+)$/.test(c))).toBe(true);
  });

  it('a 413 at the floor fails with one line naming --chunk-size', async () => {
    const f = fakeUploads(() => '413');
    await expect(uploadInChunks(f.client, '/up/0', pieces(), 3000)).rejects.toThrow(/too large \(HTTP 413\); pass a smaller --chunk-size/);
  });

  it('an accepted chunk whose answer has no Range is checked against the upload status', async () => {
    const f = fakeUploads((n) => (n === 0 ? 'no-range' : 'ok'));
    await uploadInChunks(f.client, '/up/0', pieces(), 3000);
    expect(f.stored().equals(data)).toBe(true);
    expect(f.calls).toEqual(['PATCH 0-2999', 'GET 3000', 'PATCH 3000-9999']);
  });

  it('gives up (one line) when the registry keeps refusing', async () => {
    const f = fakeUploads(() => '416');
    await expect(uploadInChunks(f.client, '/up/0', pieces(), 3000)).rejects.toThrow(/kept refusing chunk 0-2999 \(HTTP 416\)/);
  });
});

describe('forced chunked push to the real distribution (CLI)', () => {
  let reg: Distribution;
  beforeAll(async () => {
    requireTool('skopeo');
    reg = await startDistribution();
  });
  afterAll(() => reg?.stop());

  function nixreg(args: string[], cache: string) {
    return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn('node', [join(repoRoot, 'bin/nixreg.js'), ...args], { env: { ...process.env, XDG_CACHE_HOME: join(tmp, cache) } });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }
  const args = (dest: string, ...extra: string[]) => [
    'push',
    join(CASE, 'conf.json'),
    `docker://${reg.host}/${dest}`,
    '--store-root',
    storeRoot,
    '--tls-verify=false',
    '--json',
    ...extra,
  ];

  it('pushes in Content-Range chunks; same manifest digest as a streamed push; skopeo pulls it back', async () => {
    const streamed = await nixreg(args('stream/app:1'), 'cache-s');
    expect(streamed.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
    expect(streamed.status).toBe(0);
    const before = readFileSync(reg.logFile, 'utf8').length;
    const chunked = await nixreg(args('chunked/app:1', '--chunk-size', '2k'), 'cache-c');
    expect(chunked.stderr.split('\n').filter((l) => l.startsWith('nixreg:'))).toEqual([]);
    expect(chunked.status).toBe(0);
    const s = JSON.parse(streamed.stdout) as PushResult;
    const c = JSON.parse(chunked.stdout) as PushResult;
    expect(c.digest).toBe(s.digest);
    expect(c.stats.uploaded).toBe(s.layers.length);
    const patches = readFileSync(reg.logFile, 'utf8')
      .slice(before)
      .split('\n')
      .filter((l) => /"PATCH \/v2\/chunked\/app\/blobs\/uploads\//.test(l));
    // more PATCHes than blobs (layers + config): the layers went in 2 KiB pieces
    expect(patches.length).toBeGreaterThan(s.layers.length + 1 + 3);
    const out = join(tmp, 'pulled');
    const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/chunked/app:1`, `dir:${out}`], { encoding: 'utf8' });
    expect(copy.stderr).not.toMatch(/error|fatal/i);
    expect(copy.status).toBe(0);
    // dir: keeps the manifest as stored: the bytes we pushed, every blob verified by skopeo on the way
    expect(
      `sha256:${createHash('sha256')
        .update(readFileSync(join(out, 'manifest.json')))
        .digest('hex')}`,
    ).toBe(c.digest);
  });
});
