import { usageError } from '../../errors.js';
import { MediaType } from '../../manifest/media-types.js';
import { openDestination, putTags } from './destination.js';
import { buildIndex, type IndexEntry } from './image-manifest.js';
import { checkOptions, pushConfInto, type PushConfOptions, type PushResult } from './push-conf.js';

/**
 * `nixreg push --platform-conf linux/amd64=a.json --platform-conf linux/arm64=b.json docker://reg/app:1`: each
 * image is pushed by digest (untagged), then one index over them goes under the tags — so a tag never points at
 * a half-pushed set. Blobs shared between platforms (same store paths) are HEAD-skipped like any other.
 */
export interface PlatformConf {
  platform: { os: string; architecture: string; variant?: string };
  confFile: string;
}

export function parsePlatformConf(spec: string): PlatformConf {
  const eq = spec.indexOf('=');
  const plat = eq > 0 ? spec.slice(0, eq) : '';
  const parts = plat.split('/');
  if (eq <= 0 || parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p)) || !spec.slice(eq + 1))
    throw usageError(`--platform-conf must be OS/ARCH[/VARIANT]=conf.json, got "${spec.slice(0, 200)}"`);
  const [os, architecture, variant] = parts as [string, string, string?];
  return { platform: { os, architecture, ...(variant ? { variant } : {}) }, confFile: spec.slice(eq + 1) };
}

export interface PlatformsResult extends Omit<PushResult, 'config' | 'layers'> {
  manifests: Array<{ platform: string; digest: string; size: number; stats: PushResult['stats'] }>;
}

export async function pushPlatforms(opts: Omit<PushConfOptions, 'confFile' | 'output'>, platforms: PlatformConf[]): Promise<PlatformsResult> {
  checkOptions(opts);
  if (platforms.length === 0) throw usageError('no --platform-conf given');
  const names = platforms.map((p) => [p.platform.os, p.platform.architecture, p.platform.variant].filter(Boolean).join('/'));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw usageError(`--platform-conf ${dup} given twice`);
  const dest = openDestination(opts.destination, opts.additionalTags ?? [], opts);
  try {
    const entries: IndexEntry[] = [];
    const manifests: PlatformsResult['manifests'] = [];
    for (const [i, p] of platforms.entries()) {
      const r = await pushConfInto(dest, { ...opts, confFile: p.confFile }, { tag: false, architecture: p.platform.architecture });
      entries.push({ digest: r.digest, size: r.manifestSize, mediaType: r.mediaType, platform: p.platform });
      manifests.push({ platform: names[i]!, digest: r.digest, size: r.manifestSize, stats: r.stats });
    }
    // --format auto: an OCI index once any image went up as OCI
    const format = opts.format === 'auto' ? (entries.some((e) => e.mediaType === MediaType.ociManifest) ? 'oci' : 'docker') : (opts.format ?? 'docker');
    const index = buildIndex(entries, format);
    const mediaType = format === 'oci' ? MediaType.ociIndex : MediaType.dockerManifestList;
    const digest = await putTags(dest, index, mediaType);
    const sum = (k: keyof PushResult['stats']) => manifests.reduce((n, m) => n + m.stats[k], 0);
    return {
      name: dest.repoName,
      tags: dest.tags,
      digest,
      mediaType,
      manifests,
      stats: {
        exists: sum('exists'),
        mounted: sum('mounted'),
        uploaded: sum('uploaded'),
        bytesUploaded: sum('bytesUploaded'),
        layersGenerated: sum('layersGenerated'),
      },
    };
  } finally {
    await dest.client.close().catch(() => {});
  }
}
