import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { startDistribution, type Distribution } from '../helpers/distribution.js';
import { startTokenServer } from '../helpers/token-server.js';
import { RegistryClient } from '../../src/registry/client.js';
import { MediaType } from '../../src/manifest/media-types.js';
import { parseImageReference } from '../../src/reference/reference.js';
import { loadPreviousLayers, previousImageRefs, previousLayersForPush, previousCandidate, type PreviousLayer } from '../../src/sink/registry/previous-image.js';
import { layerDiffID } from '../../src/nix/stream/layer-diffid.js';
import { placePreviousBlob } from '../../src/sink/registry/write.js';
import { NixregError } from '../../src/errors.js';
import { pushBlob } from '../helpers/images.js';

// loadPreviousLayers / placePreviousBlob against Debian's distribution 2.8 on loopback, with images pushed through
// the registry API; a token server that grants only push stands in for "auth that only allows push".
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let reg: Distribution;
const clients = new Map<string, RegistryClient>();
const clientFor = (repository: string) => {
  let c = clients.get(repository);
  if (!c) clients.set(repository, (c = new RegistryClient({ registry: reg.host, repository, pushScope: true })));
  return c;
};

interface Layer {
  tar: Buffer;
  diffID: string;
}
const layer = (seed: string): Layer => {
  const tar = Buffer.from(`layer ${seed} `.repeat(200));
  return { tar, diffID: sha(tar) };
};

/** Push an image (its layers compressed by `compress`) and return its manifest digest and the layer descriptors. */
async function pushImage(
  repository: string,
  tag: string | undefined,
  layers: Layer[],
  o: { mediaType?: string; compress?: (b: Buffer) => Buffer; diffIDs?: string[]; oci?: boolean; arch?: string } = {},
) {
  const client = clientFor(repository);
  const compress = o.compress ?? ((b: Buffer) => gzipSync(b, { level: 1 }));
  const descs = [];
  for (const l of layers) {
    const blob = compress(l.tar);
    await pushBlob(reg.url, repository, blob);
    descs.push({ mediaType: o.mediaType ?? MediaType.dockerLayerGzip, digest: sha(blob), size: blob.length });
  }
  const config = Buffer.from(
    JSON.stringify({ architecture: o.arch ?? 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: o.diffIDs ?? layers.map((l) => l.diffID) } }),
  );
  await pushBlob(reg.url, repository, config);
  const mt = o.oci ? MediaType.ociManifest : MediaType.dockerManifest;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mt,
      config: { mediaType: o.oci ? MediaType.ociConfig : MediaType.dockerConfig, digest: sha(config), size: config.length },
      layers: descs,
    }),
  );
  const digest = await client.putManifest(tag ?? sha(manifest), manifest, mt);
  return { digest, size: manifest.length, mediaType: mt, layers: descs };
}

beforeAll(async () => {
  reg = await startDistribution();
}, 60_000);
afterAll(async () => {
  for (const c of clients.values()) await c.close();
  await reg?.stop();
});

describe('loadPreviousLayers', () => {
  it('maps each config diff_id to its manifest layer, with the repository it was found in', async () => {
    const ls = [layer('a'), layer('b')];
    const img = await pushImage('prev/one', '1', ls);
    const map = await loadPreviousLayers(clientFor, [{ repository: 'prev/one', reference: '1' }]);
    expect([...map.keys()]).toEqual(ls.map((l) => l.diffID));
    expect(map.get(ls[1]!.diffID)).toEqual({ ...img.layers[1], repository: 'prev/one' });
  });

  it('reads every platform of an index', async () => {
    const amd = [layer('amd')];
    const arm = [layer('arm')];
    const a = await pushImage('prev/multi', undefined, amd);
    const b = await pushImage('prev/multi', undefined, arm, { arch: 'arm64' });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifestList,
        manifests: [
          { mediaType: a.mediaType, digest: a.digest, size: a.size, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: b.mediaType, digest: b.digest, size: b.size, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    );
    await clientFor('prev/multi').putManifest('1', index, MediaType.dockerManifestList);
    const map = await loadPreviousLayers(clientFor, [{ repository: 'prev/multi', reference: '1' }]);
    expect([...map.keys()].sort()).toEqual([amd[0]!.diffID, arm[0]!.diffID].sort());
  });

  it('leaves out, with one log line each, a config whose diff_ids count differs and a tag that does not exist', async () => {
    const ls = [layer('c'), layer('d')];
    await pushImage('prev/bad', '1', ls, { diffIDs: [ls[0]!.diffID] });
    const good = [layer('e')];
    await pushImage('prev/good', '1', good);
    const lines: string[] = [];
    const map = await loadPreviousLayers(
      clientFor,
      [
        { repository: 'prev/bad', reference: '1' },
        { repository: 'prev/none', reference: 'nope' },
        { repository: 'prev/good', reference: '1' },
      ],
      { log: (l) => lines.push(l) },
    );
    expect([...map.keys()]).toEqual([good[0]!.diffID]);
    expect(lines.filter((l) => l.includes('prev/bad:1'))).toEqual([expect.stringMatching(/2 layers but 1 diff_ids/)]);
    expect(lines.filter((l) => l.includes('prev/none:nope'))).toEqual([expect.stringMatching(/not read .*not found/)]);
  });

  it('the first image naming a diffID wins, unless a later one has the wanted media type', async () => {
    const shared = layer('shared');
    const zstdLike = (b: Buffer) => Buffer.concat([Buffer.from('not gzip '), b]);
    await pushImage('prev/zst', '1', [shared], { mediaType: MediaType.ociLayerZstd, compress: zstdLike, oci: true });
    const gz = await pushImage('prev/gz', '1', [shared], { mediaType: MediaType.ociLayerGzip, oci: true });
    const refs = [
      { repository: 'prev/zst', reference: '1' },
      { repository: 'prev/gz', reference: '1' },
    ];
    expect((await loadPreviousLayers(clientFor, refs)).get(shared.diffID)?.mediaType).toBe(MediaType.ociLayerZstd);
    expect((await loadPreviousLayers(clientFor, refs, { mediaType: MediaType.ociLayerGzip })).get(shared.diffID)).toEqual({
      ...gz.layers[0],
      repository: 'prev/gz',
    });
  });

  it('a token that only allows push is not a failure: one log line, an empty map', async () => {
    const ts = await startTokenServer({ allowedActions: ['push'] });
    const secured = await startDistribution({ token: { realm: ts.realm, service: ts.service, issuer: ts.issuer, rootCertBundle: ts.rootCertBundle } });
    try {
      const lines: string[] = [];
      const map = await previousLayersForPush(
        { ref: parseImageReference(`${secured.host}/app/x:1`), client: new RegistryClient({ registry: secured.host, repository: 'app/x' }) },
        previousImageRefs(parseImageReference(`${secured.host}/app/x:1`), ['1'], [`docker://${secured.host}/other/y:2`]),
        { log: (l) => lines.push(l) },
      );
      expect(map.size).toBe(0);
      // both images are read in parallel: their lines come in either order
      expect(lines.filter((l) => l.startsWith('previous image')).sort()).toEqual([
        expect.stringMatching(/^previous image app\/x:1 not read \(401 .*\)/),
        expect.stringMatching(/^previous image other\/y:2 not read \(401 .*\)/),
      ]);
    } finally {
      await secured.stop();
      await ts.stop();
    }
  }, 60_000);
});

describe('previousImageRefs', () => {
  it('the destination tags first, then --cache-from on the same registry; another registry is a usage error', () => {
    const dest = parseImageReference('127.0.0.1:5000/a/b:1');
    expect(previousImageRefs(dest, ['1', 'latest'], ['docker://127.0.0.1:5000/c/d:7', '127.0.0.1:5000/a/b:1'])).toEqual([
      { repository: 'a/b', reference: '1' },
      { repository: 'a/b', reference: 'latest' },
      { repository: 'c/d', reference: '7' },
    ]);
    const err = (() => {
      try {
        previousImageRefs(dest, ['1'], ['docker://quay.io/x/y:1']);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NixregError);
    expect((err as NixregError).exitCode).toBe(2);
    expect((err as NixregError).message).toMatch(/^--cache-from docker:\/\/quay.io\/x\/y:1: not on the destination registry 127.0.0.1:5000/);
  });
});

describe('placePreviousBlob (the writer) and previousCandidate', () => {
  it('HEAD in the destination, a mount from another repository, or undefined when the blob is gone', async () => {
    const ls = [layer('r1'), layer('r2')];
    const img = await pushImage('reuse/src', '1', ls);
    const known = await loadPreviousLayers(clientFor, [{ repository: 'reuse/src', reference: '1' }]);
    const hit = (i: number) => known.get(ls[i]!.diffID)!;
    expect(hit(0)).toEqual({ mediaType: MediaType.dockerLayerGzip, digest: img.layers[0]!.digest, size: img.layers[0]!.size, repository: 'reuse/src' });
    expect(await placePreviousBlob(clientFor('reuse/src'), 'reuse/src', hit(0))).toEqual({ status: 'exists' });
    expect(await placePreviousBlob(clientFor('reuse/dst'), 'reuse/dst', hit(0))).toEqual({ status: 'mounted', from: 'reuse/src' });
    expect(await placePreviousBlob(clientFor('reuse/dst'), 'reuse/dst', hit(0))).toEqual({ status: 'exists' }); // mounted now
    // a size the registry contradicts is not the blob the map named
    expect(await placePreviousBlob(clientFor('reuse/src'), 'reuse/src', { ...hit(0), size: hit(0).size + 1 })).toBeUndefined();
    const del = await fetch(`${reg.url}/v2/reuse/src/blobs/${img.layers[1]!.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(await placePreviousBlob(clientFor('reuse/src'), 'reuse/src', hit(1))).toBeUndefined();
  });

  it('previousCandidate hashes a layer without a diffID, matches the media type, and never reads the map twice', async () => {
    const ls = [layer('h1')];
    const img = await pushImage('reuse/hash', '1', ls);
    let loads = 0;
    let map: Promise<ReadonlyMap<string, PreviousLayer>> | undefined;
    const known = (): Promise<ReadonlyMap<string, PreviousLayer>> => {
      loads++;
      return (map ??= loadPreviousLayers(clientFor, [{ repository: 'reuse/hash', reference: '1' }]));
    };
    const open = async () => Readable.from([ls[0]!.tar.subarray(0, 100), ls[0]!.tar.subarray(100)]);
    const r = await previousCandidate({ known, mediaType: MediaType.dockerLayerGzip }, { inputsKey: 'k', open });
    expect(r).toEqual({
      diffID: ls[0]!.diffID,
      size: ls[0]!.tar.length,
      blob: { mediaType: MediaType.dockerLayerGzip, digest: img.layers[0]!.digest, size: img.layers[0]!.size, repository: 'reuse/hash' },
    });
    expect(loads).toBe(1);
    expect(await previousCandidate({ known, mediaType: MediaType.ociLayerGzip }, { inputsKey: 'k', open })).toBeUndefined();
    expect(await previousCandidate({ known, mediaType: MediaType.dockerLayerGzip }, { diffID: sha(Buffer.from('unknown')), size: 7, open })).toBeUndefined();
    expect(
      await previousCandidate(
        { known: async () => new Map(), mediaType: MediaType.dockerLayerGzip },
        { open: () => Promise.reject(new Error('must not be read')) },
      ),
    ).toBeUndefined();
  });
});

describe('layerDiffID', () => {
  it('is the sha256 and length of the stream; a failing stream is one NixregError', async () => {
    const parts = [Buffer.from('abc'), Buffer.alloc(70_000, 7), Buffer.from('xyz')];
    expect(await layerDiffID(Readable.from(parts))).toEqual({ diffID: sha(Buffer.concat(parts)), size: 70_006 });
    const broken = new Readable({
      read() {
        this.destroy(Object.assign(new Error('EIO'), { code: 'EIO' }));
      },
    });
    await expect(layerDiffID(broken, 'layer 3')).rejects.toThrow(NixregError);
  });
});
