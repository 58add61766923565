import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { TestImage } from './images.js';

/**
 * A Docker schema2 image with gzip layers and a compact config that every tool parses (skopeo's docker-archive
 * reader and `skopeo inspect` reject prettyConfig's fractional StopTimeout).
 */
export function simpleImage(layerTars: Buffer[], extra: Record<string, unknown> = {}, arch = 'amd64'): TestImage {
  const diffIDs = layerTars.map((t) => 'sha256:' + createHash('sha256').update(t).digest('hex'));
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os: 'linux',
      created: '2024-01-02T03:04:05Z',
      config: { Env: ['PATH=/bin'], ...extra },
      rootfs: { type: 'layers', diff_ids: diffIDs },
    }),
  );
  return {
    config,
    manifestMediaType: 'docker',
    layers: layerTars.map((t) => ({ blob: gzipSync(t), mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' })),
  };
}
