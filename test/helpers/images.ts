import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { goTarFile, TAR_TRAILER } from '../../src/tar/go-ustar.js';

/**
 * Deterministic small test images (the cases of the pullImage issue), and a minimal pusher that speaks the
 * registry API with plain fetch (POST + monolithic PUT ?digest=, then PUT manifest) so these tests depend on
 * nothing but a real distribution.
 */

export const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** Pseudo-random but reproducible bytes (sha256 counter mode). */
export function prng(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0, off = 0; off < n; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

/** An uncompressed layer tar built in memory. */
export function layerTar(files: Record<string, Buffer | string>): Buffer {
  const parts = Object.entries(files).map(([name, data]) => goTarFile(name, Buffer.isBuffer(data) ? data : Buffer.from(data)));
  return Buffer.concat([...parts, TAR_TRAILER]);
}

/** 'zstd-as-gzip': zstd bytes under the gzip media type (tools detect compression by magic; skopeo 1.9.3 refuses
 * the real tar+zstd type when writing a docker-archive, so this is how a zstd layer is compared with it). */
export type Compression = 'gzip' | 'gzip-1' | 'zstd' | 'zstd-as-gzip' | 'none';

export function compress(tar: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(tar, { level: 9 });
  if (c === 'gzip-1') return gzipSync(tar, { level: 1 });
  if (c === 'zstd' || c === 'zstd-as-gzip') return execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 1 << 30 });
  return tar;
}

export const LAYERS = {
  L1: () => layerTar({ 'bin/hi': prng('hi', 70_000), 'etc/motd': 'hello\n' }),
  L2: () => layerTar({ 'usr/share/data.bin': prng('data', 150_000), 'usr/share/empty': '' }),
  L3: () => layerTar({ 'etc/plain.conf': 'uncompressed layer\n' }),
  L4: () => layerTar({ 'opt/z/zst.bin': prng('zstd', 40_000) }),
};

/** A pretty-printed config with unsorted keys, `<>&`, non-ASCII, kept escapes and U+2028: what Go's encoding/json escapes and sorts. */
export function prettyConfig(diffIDs: string[], arch = 'amd64', variant?: string): Buffer {
  const ids = diffIDs.map((d) => `      "${d}"`).join(',\n');
  return Buffer.from(`{
  "rootfs": {
    "type": "layers",
    "diff_ids": [
${ids}
    ]
  },
  "os": "linux",
  "architecture": "${arch}",${variant ? `\n  "variant": "${variant}",` : ''}
  "created": "2024-01-02T03:04:05Z",
  "config": {
    "Env": [
      "PATH=/usr/bin:/bin",
      "X=a<b&c>d",
      "U=caf\\u00e9 ü"
    ],
    "Cmd": [ "/bin/hi" ],
    "Labels": { "z.last": "1", "a.first": "2", "sep": "line\u2028sep", "n": "x" },
    "StopTimeout": 1.50
  },
  "history": [ { "created": "2024-01-02T03:04:05Z", "created_by": "nixreg test" } ]
}
`);
}

export interface TestImage {
  config: Buffer;
  layers: { blob: Buffer; mediaType: string }[];
  manifestMediaType: 'docker' | 'oci';
}

const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  tar: 'application/vnd.docker.image.rootfs.diff.tar',
};
const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  tar: 'application/vnd.oci.image.layer.v1.tar',
};

export function makeImage(layers: { tar: Buffer; c: Compression }[], kind: 'docker' | 'oci', opts: { arch?: string; variant?: string } = {}): TestImage {
  const config = prettyConfig(
    layers.map((l) => sha(l.tar)),
    opts.arch,
    opts.variant,
  );
  const types = kind === 'docker' ? DOCKER : OCI;
  return {
    config,
    manifestMediaType: kind,
    layers: layers.map(({ tar, c }) => ({
      blob: compress(tar, c),
      mediaType: c === 'none' ? types.tar : c === 'zstd' ? OCI.zstd : types.gzip,
    })),
  };
}

export function manifestOf(img: TestImage): { bytes: Buffer; mediaType: string; digest: string } {
  const t = img.manifestMediaType === 'docker' ? DOCKER : OCI;
  const m = {
    schemaVersion: 2,
    mediaType: t.manifest,
    config: { mediaType: t.config, size: img.config.length, digest: sha(img.config) },
    layers: img.layers.map((l) => ({ mediaType: l.mediaType, size: l.blob.length, digest: sha(l.blob) })),
  };
  const bytes = Buffer.from(JSON.stringify(m, null, 3)); // pretty: manifest bytes are pinned by digest as-is
  return { bytes, mediaType: t.manifest, digest: sha(bytes) };
}

/** Optional request headers for every push request (e.g. Basic authorization for an htpasswd registry). */
export type PushHeaders = Record<string, string>;
export const basicAuth = (user: string, pass: string): PushHeaders => ({
  authorization: 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64'),
});

export async function pushBlob(url: string, repo: string, blob: Buffer, headers: PushHeaders = {}): Promise<string> {
  const digest = sha(blob);
  const head = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers });
  if (head.ok) return digest;
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (post.status !== 202) throw new Error(`POST upload: ${post.status}`);
  const loc = new URL(post.headers.get('location')!, url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(blob), headers: { ...headers, 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushManifest(url: string, repo: string, ref: string, bytes: Buffer, mediaType: string, headers: PushHeaders = {}): Promise<string> {
  const r = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body: new Uint8Array(bytes),
    headers: { ...headers, 'content-type': mediaType },
  });
  if (r.status !== 201) throw new Error(`PUT manifest ${repo}:${ref}: ${r.status} ${await r.text()}`);
  return sha(bytes);
}

/** Push config, layers and manifest; returns the manifest digest. */
export async function pushTestImage(url: string, repo: string, img: TestImage, tag?: string, headers: PushHeaders = {}): Promise<string> {
  await pushBlob(url, repo, img.config, headers);
  for (const l of img.layers) await pushBlob(url, repo, l.blob, headers);
  const m = manifestOf(img);
  await pushManifest(url, repo, tag ?? m.digest, m.bytes, m.mediaType, headers);
  return m.digest;
}

/** Push an OCI index over already-pushed manifests; returns its digest. */
export async function pushTestIndex(
  url: string,
  repo: string,
  entries: { img: TestImage; platform: { os: string; architecture: string; variant?: string } }[],
  tag?: string,
): Promise<string> {
  const idx = {
    schemaVersion: 2,
    mediaType: OCI.index,
    manifests: entries.map(({ img, platform }) => {
      const m = manifestOf(img);
      return { mediaType: m.mediaType, size: m.bytes.length, digest: m.digest, platform };
    }),
  };
  const bytes = Buffer.from(JSON.stringify(idx));
  return pushManifest(url, repo, tag ?? sha(bytes), bytes, OCI.index);
}

/**
 * Push a linux/amd64 and a linux/arm64/v8 image and an index over them (tagged `indexTag`; the amd64 image also
 * under `amdTag` when given): the multi-platform repository most prefetch and pull tests read.
 */
export async function pushAmdArmIndex(
  url: string,
  repo: string,
  amd: TestImage,
  arm: TestImage,
  tags: { amd?: string; index: string },
): Promise<{ amd: string; arm: string; index: string }> {
  const amdDigest = await pushTestImage(url, repo, amd, tags.amd);
  const armDigest = await pushTestImage(url, repo, arm);
  const index = await pushTestIndex(
    url,
    repo,
    [
      { img: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { img: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
    tags.index,
  );
  return { amd: amdDigest, arm: armDigest, index };
}
