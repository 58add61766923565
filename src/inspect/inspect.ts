import type { SourceImage } from '../source/types.js';
import type { Platform } from '../manifest/manifest.js';
import { parseManifest } from '../manifest/manifest.js';
import { ExitCode, NixregError } from '../errors.js';
import { repositoryTags, type OpenSourceOptions } from '../source/index.js';

/**
 * `nixreg inspect`: what `skopeo inspect` reports, from any source. The JSON uses skopeo's field names where
 * skopeo has the field (Name, Digest, RepoTags, Created, DockerVersion, Labels, Architecture, Variant, Os,
 * Layers, LayersData, Env) and adds what skopeo needs separate calls for (index and platforms, media types,
 * config digest, entrypoint/cmd).
 */
export interface InspectResult {
  Name?: string;
  /** As skopeo: the digest of what the reference names (the index when it names one). */
  Digest: string;
  RepoTags: string[];
  Created?: string;
  DockerVersion: string;
  Labels: Record<string, string> | null;
  Architecture: string;
  Variant?: string;
  Os: string;
  Layers: string[];
  LayersData: Array<{ MIMEType: string; Digest: string; Size: number; Annotations: Record<string, string> | null }>;
  Env: string[] | null;
  /** nixreg additions */
  Source: { Kind: string; Description: string };
  /** The chosen single-platform manifest's digest (= Digest unless the reference names an index). */
  ManifestDigest: string;
  MediaType: string;
  Config: { Digest: string; MediaType: string; Size: number };
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  WorkingDir?: string;
  User?: string;
  DiffIDs: string[];
  Index: null | { Digest: string; MediaType: string; Platforms: Array<{ Digest: string; MediaType: string; Size: number; Platform: string | null }> };
  /** conf with --push-digest: the manifest digest `nixreg push` gives the image (ManifestDigest is the uncompressed one). */
  PushDigest?: string;
}

interface ConfigJson {
  created?: string;
  docker_version?: string;
  architecture?: string;
  variant?: string;
  os?: string;
  config?: { Env?: string[]; Labels?: Record<string, string>; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; User?: string } | null;
}

const platformString = (p?: Platform): string | null =>
  p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') + (p['os.version'] ? ` (${p['os.version']})` : '') : null;

/** `repoTags`: the repository's tags for a registry source (skopeo lists them all; see repositoryTags). */
export function inspectImage(src: SourceImage, opts: { repoTags?: readonly string[] } = {}): InspectResult {
  const cfg = JSON.parse(src.configBytes.toString('utf8')) as ConfigJson;
  const c = cfg.config ?? {};
  // Layer descriptors as the described manifest has them (for a docker-archive: c/image's generated manifest).
  const described = parseManifest(src.describedManifest, src.manifestMediaType, `manifest of ${src.description}`);
  const layers = described.kind === 'image' ? described.layers : src.layers;
  const name = src.kind === 'registry' ? src.description.slice(0, src.description.lastIndexOf('@')) : undefined;
  return {
    ...(name ? { Name: name } : {}),
    Digest: src.index?.digest ?? src.manifestDigest,
    RepoTags: [...(opts.repoTags ?? src.repoTags)],
    ...(cfg.created !== undefined ? { Created: goTime(cfg.created) } : {}),
    DockerVersion: cfg.docker_version ?? '',
    Labels: c.Labels ?? null,
    Architecture: cfg.architecture ?? '',
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Os: cfg.os ?? '',
    Layers: layers.map((l) => l.digest),
    LayersData: layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size, Annotations: l.annotations ?? null })),
    Env: c.Env ?? null,
    Source: { Kind: src.kind, Description: src.description },
    ManifestDigest: src.manifestDigest,
    MediaType: src.manifestMediaType,
    Config: { Digest: src.config.digest, MediaType: src.config.mediaType, Size: src.config.size },
    Entrypoint: c.Entrypoint ?? null,
    Cmd: c.Cmd ?? null,
    ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
    ...(c.User ? { User: c.User } : {}),
    DiffIDs: [...src.diffIDs],
    Index: src.index
      ? {
          Digest: src.index.digest,
          MediaType: src.index.mediaType,
          Platforms: src.index.platforms.map((p) => ({ Digest: p.digest, MediaType: p.mediaType, Size: p.size, Platform: platformString(p.platform) })),
        }
      : null,
  };
}

/**
 * As skopeo: a registry that refuses the tag list (ECR without ListImages: denied; public.ecr.aws: 404) costs
 * the RepoTags, not the inspect.
 */
export async function listedTags(source: string, opts: OpenSourceOptions, warn: (w: string) => void): Promise<string[] | undefined> {
  try {
    return await repositoryTags(source, opts);
  } catch (err) {
    if (!(err instanceof NixregError) || (err.exitCode !== ExitCode.auth && err.exitCode !== ExitCode.notFound)) throw err;
    warn(`the registry disallows listing its tags (${err.message}); RepoTags left empty`);
    return [];
  }
}

/**
 * skopeo prints Created after a round trip through Go's time.Time: RFC 3339 with trailing fractional zeros
 * dropped and a zero offset written `Z` (Python's isoformat writes `+00:00`, as streamLayeredImage configs have).
 */
export function goTime(s: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(s);
  if (!m) return s;
  const frac = (m[2] ?? '').replace(/0+$/, '');
  const zone = m[3]!.toUpperCase() === 'Z' || m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3]!;
  return `${m[1]}${frac ? `.${frac}` : ''}${zone}`;
}

const human = (n: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`;
};

/** The default human-readable summary. */
export function formatInspect(r: InspectResult): string {
  const out: string[] = [];
  const row = (k: string, v: string) => out.push(`${(k + ':').padEnd(14)}${v}`);
  row('Source', r.Source.Description);
  if (r.Name) row('Name', r.Name);
  if (r.RepoTags.length) row('Tags', r.RepoTags.join(', '));
  if (r.Index) {
    row('Index', `${r.Index.Digest} (${r.Index.MediaType})`);
    for (const p of r.Index.Platforms)
      out.push(`  ${(p.Platform ?? '(no platform)').padEnd(22)} ${p.Digest}${p.Digest === r.ManifestDigest ? '  <- chosen' : ''}`);
  }
  row('Digest', `${r.ManifestDigest} (${r.MediaType})`);
  if (r.PushDigest) row('Push digest', r.PushDigest);
  row('Config', `${r.Config.Digest} (${r.Config.MediaType}, ${r.Config.Size} B)`);
  row('Platform', [r.Os, r.Architecture, r.Variant].filter(Boolean).join('/'));
  if (r.Created) row('Created', r.Created);
  const total = r.LayersData.reduce((s, l) => s + l.Size, 0);
  row('Layers', `${r.LayersData.length} (${human(total)})`);
  r.LayersData.forEach((l, i) => out.push(`  ${String(i).padStart(3)}  ${l.Digest}  ${human(l.Size).padStart(10)}  ${l.MIMEType}`));
  if (r.Entrypoint) row('Entrypoint', JSON.stringify(r.Entrypoint));
  if (r.Cmd) row('Cmd', JSON.stringify(r.Cmd));
  if (r.WorkingDir) row('WorkingDir', r.WorkingDir);
  if (r.User) row('User', r.User);
  if (r.Env?.length) {
    out.push('Env:');
    for (const e of r.Env) out.push(`  ${e}`);
  }
  const labels = Object.entries(r.Labels ?? {});
  if (labels.length) {
    out.push('Labels:');
    for (const [k, v] of labels) out.push(`  ${k}=${v}`);
  }
  return out.join('\n') + '\n';
}
