import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type Registry } from '../../mock-registry/index.js';
import { NixregError } from '../../src/errors.js';
import { PushCache } from '../../src/sink/registry/push-cache.js';
import { codecId } from '../../src/compression/compress.js';
import { loadConfImage } from '../../src/sink/registry/conf-source.js';
import { loadStreamConf } from '../../src/nix/stream/index.js';
import { pushConf, type PushResult } from '../../src/sink/registry/push-conf.js';
import { pushSource } from '../../src/sink/registry/source-push.js';
import { wantedPlatform } from '../../src/cli/source-flags.js';
import { copyRegistryImage } from '../../src/sink/registry/registry-copy.js';
import { buildStoreTree, removeStoreTree, FIXTURES } from '../helpers/store-tree.js';

// Push paths that need a registry misbehaving on purpose (the mock's fault injection and grants), and
// registry-to-registry copies counted with the mock's counters.
const CASE = join(FIXTURES, 'cases/a-defaults');
const expected = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { layers: Array<{ diffID: string }>; config: { sha256: string } };
const LAYERS = expected.layers.length;
const expectedA = JSON.parse(readFileSync(join(CASE, 'expected.json'), 'utf8')) as { output: { sha256: string } };
const expectedF = JSON.parse(readFileSync(join(FIXTURES, 'cases/f-from-image/expected.json'), 'utf8')) as {
  output: { sha256: string };
  layers: Array<{ diffID: string }>;
};
const sha256File = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
async function fetchBlob(reg: Registry, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`);
  return Buffer.from(await res.arrayBuffer());
}

let storeRoot: string;
let tmp: string;
let cacheN = 0;
const freshCache = () => new PushCache(join(tmp, `cache-${cacheN++}`));
const push = (reg: Registry, repoTag: string, extra: Partial<Parameters<typeof pushConf>[0]> = {}) =>
  pushConf({ confFile: join(CASE, 'conf.json'), destination: `docker://${reg.host}/${repoTag}`, storeRoot, tlsVerify: false, cache: freshCache(), ...extra });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nixreg-push-mock-'));
  storeRoot = await buildStoreTree(join(tmp, 'store'));
});
afterAll(async () => {
  if (storeRoot) await removeStoreTree(storeRoot);
  rmSync(tmp, { recursive: true, force: true });
});

describe('push against the mock registry', () => {
  let reference: PushResult;
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry();
    reference = await push(reg, 'ref/app:1');
  });
  afterAll(() => reg.close());

  it('without --store-root a cached push never touches /nix/store (the paths need not even exist here)', async () => {
    const conf = await loadStreamConf(join(CASE, 'conf.json'));
    expect(existsSync(conf.storeLayers[0]![0]!)).toBe(false); // this machine's /nix/store lacks the fixture paths
    const image = await loadConfImage(conf); // no walk: describing the layers reads nothing
    const cache = freshCache();
    const repo = `${reg.host}/ref/app`;
    for (const [i, l] of image.layers.entries()) {
      const r = reference.layers[i]!;
      await cache.recordBlob(
        { diffID: r.diffID, size: r.size, ...(l.inputsKey ? { inputsKey: l.inputsKey } : {}) },
        codecId('gzip'),
        { digest: r.digest, size: r.blobSize },
        repo,
      );
    }
    const warm = await pushConf({ confFile: join(CASE, 'conf.json'), destination: `docker://${reg.host}/ref/app:1`, tlsVerify: false, cache });
    expect(warm.digest).toBe(reference.digest);
    expect(warm.stats).toMatchObject({ exists: LAYERS, uploaded: 0, layersGenerated: 0 });
    // and with an empty cache the missing store is reported in one line
    const err = await pushConf({
      confFile: join(CASE, 'conf.json'),
      destination: `docker://${reg.host}/ref/app:1`,
      tlsVerify: false,
      cache: freshCache(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NixregError);
    expect((err as NixregError).message).toMatch(/store path \/nix\/store\/\S+ does not exist|customisation_layer/);
  });

  it('--precompute-digests: a fresh runner uploads nothing the registry has, and what it lacks once', async () => {
    reg.resetCounters();
    const r = await push(reg, 'ref/app:1', { precomputeDigests: true, registryCache: false });
    expect(r.digest).toBe(reference.digest);
    expect(r.stats).toMatchObject({ exists: LAYERS, uploaded: 0, layersGenerated: LAYERS });
    expect(reg.counters.blobUploadsStarted).toBe(0);
    const empty = await startRegistry();
    try {
      const cache = freshCache();
      const first = await push(empty, 'x/app:1', { precomputeDigests: true, cache });
      expect(first.digest).toBe(reference.digest);
      expect(first.stats).toMatchObject({ uploaded: LAYERS, layersGenerated: 2 * LAYERS });
      expect(empty.counters.blobUploadsCompleted).toBe(LAYERS + 1);
      const again = await push(empty, 'x/app:1', { precomputeDigests: true, cache }); // now cached: HEADs only
      expect(again.stats).toMatchObject({ exists: LAYERS, layersGenerated: 0 });
    } finally {
      await empty.close();
    }
  });

  it('recovers from failed PATCHes by regenerating the layer', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 500, times: 2 }] });
    try {
      const r = await push(faulty, 'app:1', { jobs: 1 });
      expect(r.digest).toBe(reference.digest);
      expect(r.layers.map((l) => l.diffID)).toEqual(expected.layers.map((l) => l.diffID));
      expect(faulty.counters.faultsInjected).toBe(2);
      expect(faulty.counters.byRoute['PATCH upload']).toBe(LAYERS + 1 + 2);
      expect(faulty.counters.byRoute['DELETE upload']).toBe(2); // each failed session is cancelled
      expect(faulty.counters.blobUploadsCompleted).toBe(LAYERS + 1);
    } finally {
      await faulty.close();
    }
  });

  it('a failed closing PUT regenerates the layer and uploads it again (same digest)', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PUT', status: 400, skip: 6, times: 1 }] });
    try {
      const r = await push(faulty, 'app:1', { jobs: 1 });
      expect(r.digest).toBe(reference.digest);
      expect(faulty.counters.faultsInjected).toBe(1);
      expect(faulty.counters.byRoute['POST upload']).toBe(LAYERS + 1 + 1);
      expect(faulty.counters.byRoute['DELETE upload']).toBe(1);
    } finally {
      await faulty.close();
    }
  });

  it('recovers from a connection reset during the PATCH', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'reset', route: 'upload', method: 'PATCH', times: 1 }] });
    try {
      const r = await push(faulty, 'app:1', { jobs: 2 });
      expect(r.digest).toBe(reference.digest);
      expect(faulty.counters.faultsInjected).toBe(1);
    } finally {
      await faulty.close();
    }
  });

  it('gives up with one line after repeated failures, writing no tag', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 500 }] });
    try {
      const err = await push(faulty, 'app:1', { jobs: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      expect((err as NixregError).message).toMatch(/HTTP 500/);
      expect((err as NixregError).message).not.toContain('\n');
      expect(faulty.counters.manifestPuts).toBe(0);
    } finally {
      await faulty.close();
    }
  });

  it('a pull-only token fails with an auth error (exit 3) and no tag', async () => {
    const secured = await startRegistry({
      auth: { mode: 'bearer', users: { bob: 'pw' }, grants: [{ user: 'bob', repo: '*', actions: ['pull'] }] },
    });
    try {
      const err = await push(secured, 'app:1', { creds: { username: 'bob', password: 'pw' } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NixregError);
      expect((err as NixregError).exitCode).toBe(3);
      expect((err as NixregError).message).toMatch(/^(401|403) from .* for blob upload/);
      expect(secured.counters.manifestPuts).toBe(0);
      expect(secured.counters.blobUploadsCompleted).toBe(0);
    } finally {
      await secured.close();
    }
  });

  it('pushes with bearer auth and a push grant; the second push only HEADs', async () => {
    const secured = await startRegistry({ auth: { mode: 'bearer', users: { bob: 'pw' } } });
    try {
      const cache = freshCache();
      const creds = { username: 'bob', password: 'pw' };
      const first = await push(secured, 'team/app:1', { creds, cache });
      expect(first.digest).toBe(reference.digest);
      secured.resetCounters();
      const second = await push(secured, 'team/app:1', { creds, cache });
      expect(second.stats).toMatchObject({ exists: LAYERS, uploaded: 0, layersGenerated: 0 });
      expect(secured.counters.blobUploadsStarted).toBe(0);
      expect(secured.counters.patchRequests).toBe(0);
    } finally {
      await secured.close();
    }
  });

  it('--mount-from mounts cached blobs, falls back to upload when the registry refuses', async () => {
    const r2 = await startRegistry({ anonymousMount: true });
    try {
      const cache = freshCache();
      await push(r2, 'src/app:1', { cache });
      r2.resetCounters();
      const m = await push(r2, 'dst/app:1', { cache: new PushCache(join(tmp, 'mount-cache')), mountFrom: [] });
      expect(m.stats.uploaded).toBe(LAYERS); // nothing cached: no digest to mount with
      r2.resetCounters();
      // a cache that knows the digests, but only from a repository that does not have them: 202 → cancel → upload
      const third = await push(r2, 'third/app:1', { cache, mountFrom: ['nowhere/app'] });
      expect(third.stats).toMatchObject({ exists: 0, mounted: LAYERS, uploaded: 0 });
      expect(r2.counters.mountFallbacks).toBe(LAYERS); // nowhere/app: 202, session cancelled
      expect(r2.counters.blobUploadsCancelled).toBe(LAYERS);
      expect(r2.counters.mounts).toBe(LAYERS); // then src/app, which the cache saw them pushed to
      expect(third.digest).toBe(reference.digest);
    } finally {
      await r2.close();
    }
  });

  it('copies registry to registry keeping digests, streaming every blob once', async () => {
    const other = await startRegistry();
    try {
      const r = await copyRegistryImage({ source: `docker://${reg.host}/ref/app:1`, destination: `docker://${other.host}/copy/app:7`, tlsVerify: false });
      expect(r.digest).toBe(reference.digest);
      expect(r.config.digest).toBe(`sha256:${expected.config.sha256}`);
      expect(other.counters.blobUploadsCompleted).toBe(LAYERS + 1);
      const patched = other.log.filter((e) => e.method === 'PATCH').map((e) => Number(e.headers['content-length']));
      expect(patched.reduce((a, b) => a + b, 0)).toBe(reference.layers.reduce((n, l) => n + l.blobSize, 0) + r.config.size);
      // again: everything is present
      other.resetCounters();
      const again = await copyRegistryImage({ source: `docker://${reg.host}/ref/app:1`, destination: `docker://${other.host}/copy/app:8`, tlsVerify: false });
      expect(again.digest).toBe(reference.digest);
      expect(other.counters.blobUploadsStarted).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('--output writes the exact nixreg stream archive in the same run, each layer generated once', async () => {
    const fresh = await startRegistry();
    try {
      const cache = freshCache();
      const out = join(tmp, 'out-a.tar');
      const r = await push(fresh, 'tee/app:1', { cache, output: out });
      expect(sha256File(out)).toBe(expectedA.output.sha256);
      expect(r.digest).toBe(reference.digest);
      expect(r.stats).toMatchObject({ uploaded: LAYERS, layersGenerated: LAYERS });
      // warm: nothing uploaded, the archive is still written (and still exact)
      const out2 = join(tmp, 'out-a2.tar');
      const again = await push(fresh, 'tee/app:1', { cache, output: out2 });
      expect(again.stats).toMatchObject({ uploaded: 0, exists: LAYERS, layersGenerated: LAYERS });
      expect(sha256File(out2)).toBe(expectedA.output.sha256);
    } finally {
      await fresh.close();
    }
  });

  it('--output stays exact when an upload is retried, and for a from_image conf', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'status', route: 'upload', method: 'PATCH', status: 500, skip: 3, times: 1 }] });
    try {
      const out = join(tmp, 'out-f.tar');
      const r = await push(faulty, 'tee/from:1', { output: out, confFile: join(FIXTURES, 'cases/f-from-image/conf.json') });
      expect(faulty.counters.faultsInjected).toBe(1);
      expect(sha256File(out)).toBe(expectedF.output.sha256);
      expect(r.layers.map((l) => l.diffID)).toEqual(expectedF.layers.map((l) => l.diffID));
    } finally {
      await faulty.close();
    }
  });

  it('pushes a docker-archive source: the stream archive gives the same manifest digest as the conf', async () => {
    const a = await startRegistry();
    // as `nixreg push image.tar docker://…` does: the archive read through openSource
    const pushArchive = (o: { archive: string; destination: string; tlsVerify: boolean; cache: PushCache }) =>
      pushSource({ ...o, source: o.archive, sourceOptions: { platform: wantedPlatform({ os: 'linux' }), tlsVerify: o.tlsVerify } });
    try {
      const out = join(tmp, 'for-archive.tar');
      const cache = freshCache();
      await push(a, 'tee/app:1', { output: out, cache: null });
      const r = await pushArchive({ archive: out, destination: `docker://${a.host}/arch/app:1`, tlsVerify: false, cache });
      expect(r.digest).toBe(reference.digest);
      expect(r.config.digest).toBe(`sha256:${expected.config.sha256}`);
      expect(r.stats.uploaded).toBe(LAYERS); // a fresh cache cannot know the compressed digests
      a.resetCounters();
      const again = await pushArchive({ archive: out, destination: `docker://${a.host}/arch/app:2`, tlsVerify: false, cache });
      expect(again.digest).toBe(reference.digest);
      expect(again.stats).toMatchObject({ exists: LAYERS, uploaded: 0, layersGenerated: 0 });
      expect(a.counters.patchRequests).toBe(0);
    } finally {
      await a.close();
    }
  });

  it('no archive is left behind when the push fails', async () => {
    const faulty = await startRegistry({ faults: [{ kind: 'status', route: 'manifest', method: 'PUT', status: 400 }] });
    try {
      const out = join(tmp, 'out-fail.tar');
      await expect(push(faulty, 'tee/app:1', { output: out })).rejects.toThrow(NixregError);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(tmp).filter((f) => f.includes('out-fail'))).toEqual([]);
    } finally {
      await faulty.close();
    }
  });

  it('zstd (OCI): deterministic blobs that decompress to the diffIDs', async () => {
    const z = await startRegistry();
    try {
      const a = await push(z, 'z/app:1', { compression: 'zstd', format: 'oci' });
      const b = await push(z, 'z/app:2', { compression: 'zstd', format: 'oci' }); // fresh cache: regenerated
      expect(b.layers.map((l) => l.digest)).toEqual(a.layers.map((l) => l.digest));
      expect(a.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      for (const [i, l] of a.layers.entries()) {
        expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
        const raw = await fetchBlob(z, 'z/app', l.digest);
        const tar = execFileSync('zstd', ['-d', '-c', '-q'], { input: raw, maxBuffer: 1 << 28 });
        expect('sha256:' + createHash('sha256').update(tar).digest('hex')).toBe(expected.layers[i]!.diffID);
      }
      expect(a.layers.map((l) => l.digest)).not.toEqual(reference.layers.map((l) => l.digest));
    } finally {
      await z.close();
    }
  });

  it('gzip --compression-level gives other digests, cached separately', async () => {
    const g = await startRegistry();
    try {
      const cache = freshCache();
      const six = await push(g, 'g/app:1', { compressionLevel: 6, cache });
      expect(six.layers.map((l) => l.diffID)).toEqual(expected.layers.map((l) => l.diffID));
      expect(six.layers[6]!.digest).not.toBe(reference.layers[6]!.digest);
      const dflt = await push(g, 'g/app:1', { cache, registryCache: false }); // default level (1): not confused with level 6's cache entries
      expect(dflt.digest).toBe(reference.digest);
      expect(dflt.stats.uploaded).toBe(LAYERS);
    } finally {
      await g.close();
    }
  });

  it('copies within one registry by mounting', async () => {
    reg.resetCounters();
    const r = await copyRegistryImage({ source: `docker://${reg.host}/ref/app:1`, destination: `docker://${reg.host}/mirror/app:1`, tlsVerify: false });
    expect(r.digest).toBe(reference.digest);
    expect(reg.counters.mounts).toBe(LAYERS + 1);
    expect(reg.counters.patchRequests).toBe(0);
  });
});
