import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { MT } from './manifests.js';

/**
 * A tiny, deterministic sample image (one gzip layer holding /hello and /etc/motd, Docker schema2 manifest) and
 * a plain-HTTP pusher, used by the demo and by tests. The tar is written by hand (ustar, fixed mtime/owner) so the
 * bytes never depend on a library version; gzip comes from Node's bundled zlib.
 */
export interface SampleImage {
  layer: Buffer; // gzip
  diffId: string; // sha256 of the uncompressed tar
  config: Buffer;
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
}

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

function tarHeader(name: string, size: number, mode: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0');
  put(name, 0, 100);
  put(oct(mode, 8), 100, 8);
  put(oct(0, 8), 108, 8); // uid
  put(oct(0, 8), 116, 8); // gid
  put(oct(size, 12), 124, 12);
  put(oct(1, 12), 136, 12); // mtime: 1970-01-01T00:00:01Z, as nixpkgs uses
  put('        ', 148, 8); // checksum placeholder
  put(type, 156, 1);
  put('ustar\u000000', 257, 8);
  put('root', 265, 32);
  put('root', 297, 32);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8);
  return h;
}

export function sampleTar(files: Array<{ name: string; data?: string; mode?: number }>): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    if (f.data === undefined) {
      parts.push(tarHeader(f.name.endsWith('/') ? f.name : f.name + '/', 0, f.mode ?? 0o755, '5'));
      continue;
    }
    const d = Buffer.from(f.data);
    parts.push(tarHeader(f.name, d.length, f.mode ?? 0o644, '0'), d, Buffer.alloc((512 - (d.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function sampleImage(text = 'Hello from the nixreg mock registry!'): SampleImage {
  const tar = sampleTar([
    { name: 'etc/' },
    { name: 'etc/motd', data: `${text}\n` },
    { name: 'hello', data: `#!/bin/sh\necho '${text.replace(/'/g, '')}'\n`, mode: 0o755 },
  ]);
  const layer = gzipSync(tar, { level: 9 });
  const diffId = sha(tar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:01Z',
      config: { Cmd: ['/hello'], Env: ['PATH=/'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: '1970-01-01T00:00:01Z', created_by: 'nixreg mock-registry sample image' }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha(config) },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha(layer) }],
    }),
  );
  return { layer, diffId, config, manifest, manifestDigest: sha(manifest), mediaType: MT.dockerManifest };
}

/**
 * Push an image over plain HTTP the spec's "POST then PUT" way (no auth). Returns the manifest digest the
 * registry reports.
 */
export async function pushSampleImage(baseUrl: string, name: string, tag: string, img: SampleImage): Promise<string> {
  for (const blob of [img.layer, img.config]) {
    const post = await fetch(`${baseUrl}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    if (post.status !== 202) throw new Error(`upload POST: HTTP ${post.status}: ${await post.text()}`);
    const loc = new URL(post.headers.get('location')!, baseUrl);
    loc.searchParams.set('digest', sha(blob));
    const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(blob), headers: { 'Content-Type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`upload PUT: HTTP ${put.status}: ${await put.text()}`);
  }
  const res = await fetch(`${baseUrl}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(img.manifest),
    headers: { 'Content-Type': img.mediaType },
  });
  if (res.status !== 201) throw new Error(`manifest PUT: HTTP ${res.status}: ${await res.text()}`);
  return res.headers.get('docker-content-digest')!;
}
