import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import type { WantedPlatform } from '../manifest/platform.js';
import type { RegistryClientOptions } from '../registry/types.js';
import type { LayerCache } from '../nix/layer-cache.js';
import { ArchiveMembers } from './archive-members.js';
import { openConf } from './conf.js';
import { keepArchiveJson, openDockerArchive } from './docker-archive.js';
import { keepLayoutFiles, layoutRawManifest, openOciArchive, openOciLayout } from './oci.js';
import { openRegistry, registryRawManifest, registryTags } from './registry.js';
import type { SourceImage, SourceKind } from './types.js';

export type { SourceImage, SourceIndex, SourceKind } from './types.js';

/** Everything a source may need; each kind uses its part (registry: the client options; conf: store/cache). */
export interface OpenSourceOptions extends Omit<RegistryClientOptions, 'registry' | 'repository'> {
  /** Platform to pick from an index (registry, OCI). */
  platform: WantedPlatform;
  /** conf: store paths are read under this root. */
  storeRoot?: string;
  /** conf: layer digest cache. */
  cache?: LayerCache;
  /** conf: `-t NAME:TAG` over the conf's repo_tag. */
  repoTag?: string;
}

export interface SourceSpec {
  kind: SourceKind;
  /** Registry reference, or file/directory path. */
  path: string;
  /** docker-archive `NAME:TAG`/`@N`; OCI ref name/`@N`. */
  ref?: string;
}

const TRANSPORTS: Array<[string, SourceKind]> = [
  ['docker://', 'registry'],
  ['docker-archive:', 'docker-archive'],
  ['oci-archive:', 'oci-archive'],
  ['oci:', 'oci-layout'],
  ['conf:', 'conf'],
];

/**
 * Parse a source spec with skopeo's transport syntax. As in c/image, the path ends at the first ':' after the
 * transport (so paths cannot hold ':'); what follows is the image reference inside the archive/layout.
 * A bare path is sniffed (see `sniffSource`).
 */
export async function parseSourceSpec(spec: string): Promise<SourceSpec> {
  for (const [prefix, kind] of TRANSPORTS) {
    if (!spec.startsWith(prefix)) continue;
    const rest = spec.slice(prefix.length);
    if (kind === 'registry') return { kind, path: rest };
    if (kind === 'conf') return { kind, path: rest };
    const colon = rest.indexOf(':');
    const path = colon < 0 ? rest : rest.slice(0, colon);
    if (!path) throw usageError(`source "${spec}" has no path`);
    return colon < 0 ? { kind, path } : { kind, path, ref: rest.slice(colon + 1) };
  }
  if (spec === '') throw usageError('empty source: give a path, docker://REF, docker-archive:PATH, oci:DIR, oci-archive:PATH or conf:PATH');
  return { kind: await sniffSource(spec), path: spec };
}

/**
 * What a bare path holds: a directory with `oci-layout` → OCI layout; a file starting with `{` → conf;
 * a tar (plain/gzip/zstd) with an `oci-layout` member → OCI archive; any other tar → docker-archive.
 */
export async function sniffSource(path: string): Promise<SourceKind> {
  const k = await sniffPath(path);
  if (k !== 'archive') return k;
  const a = await openSniffedArchive(path);
  await a.close();
  return archiveKind(a);
}

/** The cheap part of the sniff (stat + first bytes); archives need their member list. */
async function sniffPath(path: string): Promise<SourceKind | 'archive'> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw usageError(`source ${path} does not exist (for a registry image write docker://${path})`);
  if (st.isDirectory()) {
    if (
      await stat(join(path, 'oci-layout')).then(
        () => true,
        () => false,
      )
    )
      return 'oci-layout';
    throw usageError(`source ${path} is a directory without an oci-layout file (not an OCI image layout)`);
  }
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    return head.subarray(0, bytesRead).toString('latin1').trimStart().startsWith('{') ? 'conf' : 'archive';
  } finally {
    await fh.close();
  }
}

/** One header scan serves both the sniff and the chosen reader (a compressed archive is not inflated twice). */
const openSniffedArchive = (path: string) => ArchiveMembers.open(path, `source ${path}`, (m) => keepArchiveJson(m) || keepLayoutFiles(m));
const archiveKind = (a: ArchiveMembers): SourceKind => (a.archive.members.some((m) => m.name === 'oci-layout') ? 'oci-archive' : 'docker-archive');

/** Open any input nixreg reads as one verified single-platform image. */
export async function openSource(spec: string, opts: OpenSourceOptions): Promise<SourceImage> {
  if (spec !== '' && !TRANSPORTS.some(([prefix]) => spec.startsWith(prefix))) {
    const k = await sniffPath(spec);
    if (k === 'archive') {
      // a bare archive: one header scan decides the kind and serves its reader
      const a = await openSniffedArchive(spec);
      return archiveKind(a) === 'oci-archive' ? openOciArchive(spec, undefined, opts.platform, a) : openDockerArchive(spec, undefined, a);
    }
    return openSpec({ kind: k, path: spec }, opts);
  }
  return openSpec(await parseSourceSpec(spec), opts);
}

/**
 * The manifest bytes `skopeo inspect --raw` prints: what the reference names, without choosing a platform (an
 * index stays an index); for a docker-archive or conf, the manifest c/image generates for the image.
 */
export async function rawManifest(spec: string, opts: OpenSourceOptions): Promise<Buffer> {
  const s = await parseSourceSpec(spec);
  if (s.kind === 'registry') {
    const { storeRoot: _s, cache: _c, repoTag: _r, platform: _p, ...registry } = opts;
    return registryRawManifest(s.path, registry);
  }
  if (s.kind === 'oci-layout' || s.kind === 'oci-archive') return layoutRawManifest(s.kind, s.path, s.ref);
  const src = await openSpec(s, opts);
  try {
    return src.describedManifest;
  } finally {
    await src.close();
  }
}

/** All tags of the repository a `docker://` spec names (undefined for any other source: its tags are its own). */
export async function repositoryTags(spec: string, opts: OpenSourceOptions): Promise<string[] | undefined> {
  if (!spec.startsWith('docker://')) return undefined;
  const s = await parseSourceSpec(spec);
  const { storeRoot: _s, cache: _c, repoTag: _r, platform: _p, ...registry } = opts;
  return registryTags(s.path, registry);
}

async function openSpec(s: SourceSpec, opts: OpenSourceOptions): Promise<SourceImage> {
  switch (s.kind) {
    case 'registry': {
      const { storeRoot: _s, cache: _c, repoTag: _r, ...registry } = opts;
      return openRegistry(s.path, registry);
    }
    case 'docker-archive':
      return openDockerArchive(s.path, s.ref);
    case 'oci-layout':
      return openOciLayout(s.path, s.ref, opts.platform);
    case 'oci-archive':
      return openOciArchive(s.path, s.ref, opts.platform);
    case 'conf':
      return openConf(s.path, { storeRoot: opts.storeRoot, cache: opts.cache, repoTag: opts.repoTag });
  }
}
